"""Domain errors of invoicing, each with a stable code (part of the API; never renamed)."""

from __future__ import annotations

from saas.kernel.errors import (
    ConflictError,
    DomainError,
    ErrorKind,
    NotFoundError,
    UnavailableError,
    ValidationFailedError,
)
from tax.errors import ErrorKind as TaxErrorKind
from tax.errors import TaxError


class InvoiceNotFoundError(NotFoundError):
    code = "invoice_not_found"
    title = "No such invoice"


class CreditNoteNotFoundError(NotFoundError):
    code = "credit_note_not_found"
    title = "No such credit note"


class InvoiceLineNotFoundError(NotFoundError):
    code = "invoice_line_not_found"
    title = "No such invoice line"


class InvoiceNotDraftError(ConflictError):
    """The invoice is finalized: its content can no longer change (GoBD); correct it with a
    credit note."""

    code = "invoice_not_draft"
    title = "The invoice is finalized and cannot be changed"


class InvoiceImmutableError(ConflictError):
    """Code tried to write frozen content of a finalized invoice (the ORM guard)."""

    code = "invoice_immutable"
    title = "A finalized invoice cannot be changed"


class InvoiceNotFinalizedError(ConflictError):
    code = "invoice_not_finalized"
    title = "The invoice is still a draft"


class InvalidInvoiceTransitionError(ConflictError):
    code = "invalid_invoice_transition"
    title = "The invoice's status does not allow this"


class InvoiceConflictError(ConflictError):
    code = "invoice_conflict"
    title = "The invoice was changed concurrently"


class CurrencyNotAcceptedError(ValidationFailedError):
    code = "currency_not_accepted"
    title = "The seller does not invoice in this currency"


class CreditNoteExceedsInvoiceError(ValidationFailedError):
    code = "credit_note_exceeds_invoice"
    title = "The credit note is larger than what is left to correct"


class ExchangeRateUnavailableError(UnavailableError):
    code = "exchange_rate_unavailable"
    title = "No ECB exchange rate for the supply date"


_KINDS = {
    TaxErrorKind.INVALID: ErrorKind.INVALID,
    TaxErrorKind.NOT_FOUND: ErrorKind.INVALID,  # no rate or rule for the date: bad input here
    TaxErrorKind.CONFLICT: ErrorKind.INVALID,  # contradicting location evidence
    TaxErrorKind.FORBIDDEN: ErrorKind.FORBIDDEN,
    TaxErrorKind.UNAVAILABLE: ErrorKind.UNAVAILABLE,
}


class TaxDecisionFailedError(DomainError):
    """The tax engine could not decide a line (``errors`` names the field and the tax code)."""

    code = "tax_decision_failed"
    kind = ErrorKind.INVALID
    title = "The VAT treatment could not be decided"


def tax_decision_failed(exc: TaxError) -> TaxDecisionFailedError:
    field = exc.field or "lines"
    return TaxDecisionFailedError(
        exc.message,
        kind=_KINDS[exc.kind],
        errors={field: [f"{exc.code}: {exc.message}"]},
    )
