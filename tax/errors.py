"""Domain errors of the tax package.

Every error carries a stable ``code`` (part of the API contract, never reworded) and a
``kind`` among ``not_found``, ``invalid``, ``conflict``, ``forbidden`` and ``unavailable``.
Only the HTTP layer maps kinds to status codes (RFC 9457 problem+json); this package never
imports Flask. An external check that is down is ``unavailable``, never ``invalid``
(house style).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """The five kinds of domain failure that the HTTP layer knows how to map."""

    NOT_FOUND = "not_found"
    INVALID = "invalid"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    UNAVAILABLE = "unavailable"


class TaxError(Exception):
    """Base class: a tax rule could not be applied to the given facts."""

    code: ClassVar[str] = "tax.error"
    kind: ClassVar[ErrorKind] = ErrorKind.INVALID

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        """The error as a JSON-ready mapping (``code``, ``kind``, ``message`` and ``field``)."""
        out = {"code": self.code, "kind": str(self.kind), "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class UnknownCountryError(TaxError):
    """A country code is not an ISO 3166-1 alpha-2 code (or a known VAT alias such as EL)."""

    code = "tax.unknown_country"


class InvalidCurrencyError(TaxError):
    """A currency code is not three upper-case letters (ISO 4217)."""

    code = "tax.invalid_currency"


class RateNotFoundError(TaxError):
    """No VAT rate is recorded for the country on the date (before the table starts)."""

    code = "tax.rate_not_found"
    kind = ErrorKind.NOT_FOUND


class RuleNotFoundError(TaxError):
    """No dated rule (threshold, small-business regime) covers the date."""

    code = "tax.rule_not_found"
    kind = ErrorKind.NOT_FOUND


class UnsupportedSellerError(TaxError):
    """The seller's profile is outside what the rules cover (e.g. a non-EU seller)."""

    code = "tax.unsupported_seller"


class MissingEurAmountError(TaxError):
    """A threshold test needs the supply's net in EUR, but only a foreign amount was given."""

    code = "tax.missing_eur_amount"


class LocationConflictError(TaxError):
    """The customer-location evidence contradicts itself (Art. 24b/24f Reg. 282/2011)."""

    code = "tax.location_conflict"
    kind = ErrorKind.CONFLICT


class LocationUnprovenError(TaxError):
    """Too little location evidence: two items are needed, one only under the simplification."""

    code = "tax.location_unproven"


class VatIdSyntaxError(TaxError):
    """A VAT ID fails the syntax or checksum test; ``reason`` says which."""

    code = "tax.vat_id_syntax"

    def __init__(self, message: str, *, reason: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.reason = reason


class NoteNotFoundError(TaxError):
    """No invoice note exists for the key or language."""

    code = "tax.note_not_found"
    kind = ErrorKind.NOT_FOUND


class ExchangeRateNotFoundError(TaxError):
    """No ECB reference rate exists for the currency on or shortly after the date."""

    code = "tax.exchange_rate_not_found"
    kind = ErrorKind.NOT_FOUND


class OssRecordError(TaxError):
    """An OSS or EC sales list record does not belong in the return it was given to."""

    code = "tax.oss_record_invalid"


class OssCorrectionTooLateError(TaxError):
    """A correction of an OSS return more than three years after its due date (Art. 61 Reg.

    282/2011): it must be settled with the member state of consumption directly.
    """

    code = "tax.oss_correction_too_late"
    kind = ErrorKind.FORBIDDEN


class CaseFormatError(TaxError):
    """A case given to the CLI is malformed."""

    code = "tax.case_format"
