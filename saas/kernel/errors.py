"""Domain errors with a stable machine-readable code and a kind.

Only the HTTP layer maps kinds to status codes (RFC 9457 problem documents); domain code raises
these and never thinks about HTTP. Codes are part of the public API: never rename one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    UNAUTHENTICATED = "unauthenticated"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"


class DomainError(Exception):
    """Base of every expected failure: carries `code`, `kind`, a human `detail` and field errors."""

    code: str = "error"
    kind: ErrorKind = ErrorKind.INVALID
    title: str = "The request could not be processed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, Any] | None = None,
        kind: ErrorKind | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.errors = errors or {}


class ValidationFailedError(DomainError):
    code = "validation_failed"
    kind = ErrorKind.INVALID
    title = "The request contains invalid fields"


class NotFoundError(DomainError):
    code = "resource_not_found"
    kind = ErrorKind.NOT_FOUND
    title = "No such resource"


class ConflictError(DomainError):
    code = "conflict"
    kind = ErrorKind.CONFLICT
    title = "The request conflicts with the current state"


class ForbiddenError(DomainError):
    code = "forbidden"
    kind = ErrorKind.FORBIDDEN
    title = "Not allowed"


class UnauthenticatedError(DomainError):
    code = "authentication_required"
    kind = ErrorKind.UNAUTHENTICATED
    title = "Authentication required"


class UnavailableError(DomainError):
    code = "service_unavailable"
    kind = ErrorKind.UNAVAILABLE
    title = "A service this request depends on is unavailable"


class TenantContextMissingError(RuntimeError):
    """A query touched tenant-owned rows with no tenant set: a programming error, never user input.

    Deliberately not a DomainError: it must surface as a 500 and a failed test, not as a 4xx.
    """
