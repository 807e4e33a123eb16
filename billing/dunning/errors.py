"""Dunning errors. Codes are public API: never rename one."""

from __future__ import annotations

from saas.kernel.errors import ValidationFailedError


class InvalidRetryScheduleError(ValidationFailedError):
    code = "invalid_retry_schedule"
    title = "The retry schedule is not valid"
