"""Domain errors of billing runs, each with a stable code (part of the API; never renamed)."""

from __future__ import annotations

from saas.kernel.errors import NotFoundError


class BillingRunNotFoundError(NotFoundError):
    code = "billing_run_not_found"
    title = "No such billing run"
