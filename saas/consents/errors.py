"""Consent errors. Codes are public API: never rename one."""

from __future__ import annotations

from saas.kernel.errors import ConflictError


class ConsentNotGivenError(ConflictError):
    """A withdrawal for a purpose the customer has no active consent for."""

    code = "consent_not_given"
    title = "No active consent for this purpose"
