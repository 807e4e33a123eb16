"""Errors of the tax reports (the builders' :class:`tax.errors.TaxError` mapped to a domain
error, so the HTTP layer answers with a problem document)."""

from __future__ import annotations

from saas.kernel.errors import DomainError, ErrorKind
from tax.errors import ErrorKind as TaxErrorKind
from tax.errors import TaxError

_KINDS = {
    TaxErrorKind.NOT_FOUND: ErrorKind.NOT_FOUND,
    TaxErrorKind.INVALID: ErrorKind.INVALID,
    TaxErrorKind.CONFLICT: ErrorKind.CONFLICT,
    TaxErrorKind.FORBIDDEN: ErrorKind.FORBIDDEN,
    TaxErrorKind.UNAVAILABLE: ErrorKind.UNAVAILABLE,
}


class TaxReportFailedError(DomainError):
    code = "tax_report_failed"
    title = "The tax report could not be built"


def tax_report_failed(exc: TaxError) -> TaxReportFailedError:
    field = exc.field or "quarter"
    return TaxReportFailedError(
        exc.message, kind=_KINDS[exc.kind], errors={field: [f"{exc.code}: {exc.message}"]}
    )
