"""Invoice and credit note input and output.

Amounts are integer minor units of the invoice currency; quantities and VAT rates are
decimal strings (``"1.5"``, ``"19"``) so that no binary float ever carries them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma

from billing.invoices.models import INVOICE_KINDS, STATUSES
from billing.sellers.models import LANGUAGES
from saas.catalog.currencies import CURRENCIES
from saas.catalog.schemas import validate_metadata
from saas.kernel.pagination import ListArgs
from saas.kernel.text import printable

MAX_UNIT_AMOUNT = 10**10  # 100 million in a 2-decimal currency: a typo guard
MAX_QUANTITY = Decimal(1_000_000)
_UNIT_CODE = r"^[A-Z0-9]{2,3}$"  # UN/ECE Recommendation 20 (C62 one, MON month, HUR hour)


def _validate_quantity(value: Decimal) -> None:
    if not value.is_finite() or value <= 0 or value > MAX_QUANTITY:
        raise ma.ValidationError(f"greater than 0 and at most {MAX_QUANTITY}")
    if value.as_tuple().exponent < -4:  # type: ignore[operator]  # finite: an int
        raise ma.ValidationError("at most 4 decimal places")


class PeriodIn(ma.Schema):
    start = ma.fields.Date(required=True)
    end = ma.fields.Date(required=True, metadata={"description": "Inclusive."})

    @ma.validates_schema
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data["end"] < data["start"]:
            raise ma.ValidationError("ends before it starts", field_name="end")


class LineIn(ma.Schema):
    description = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=500), printable]
    )
    quantity = ma.fields.Decimal(
        load_default=Decimal(1), validate=_validate_quantity, metadata={"example": "1"}
    )
    unit_amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=0, max=MAX_UNIT_AMOUNT),
        metadata={"description": "Net unit price in minor units."},
    )
    unit_code = ma.fields.String(
        load_default="C62", validate=ma.validate.Regexp(_UNIT_CODE, error="a UN/ECE Rec. 20 code")
    )
    period = ma.fields.Nested(PeriodIn, load_default=None, allow_none=True)


class InvoiceCreateIn(ma.Schema):
    customer_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    kind = ma.fields.String(
        load_default="invoice",
        validate=ma.validate.OneOf(INVOICE_KINDS),
        metadata={"description": "`small_amount`: § 33 UStDV (gross ≤ 250 EUR)."},
    )
    currency = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.OneOf(sorted(CURRENCIES)),
        metadata={"description": "One of the seller profile's accepted currencies."},
    )
    language = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.OneOf(LANGUAGES)
    )
    supplied_on = ma.fields.Date(
        load_default=None,
        allow_none=True,
        metadata={"description": "Date of supply (tax point); default: the issue date."},
    )
    buyer_reference = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=200)
    )
    lines = ma.fields.List(ma.fields.Nested(LineIn), load_default=list)
    metadata = ma.fields.Dict(validate=validate_metadata)


class EmptyIn(ma.Schema):
    """Actions without parameters take an empty JSON object (or no body)."""


class MarkPaidIn(ma.Schema):
    paid_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    note = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=500)
    )


class VoidIn(ma.Schema):
    reason = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=500)
    )


class CreditLineIn(ma.Schema):
    line_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    quantity = ma.fields.Decimal(load_default=None, allow_none=True, validate=_validate_quantity)
    amount = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_UNIT_AMOUNT),
        metadata={"description": "Net amount to credit, minor units (instead of quantity)."},
    )

    @ma.validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("quantity") is not None and data.get("amount") is not None:
            raise ma.ValidationError("quantity or amount, not both", field_name="amount")


class CreditNoteCreateIn(ma.Schema):
    invoice_id = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    lines = ma.fields.List(
        ma.fields.Nested(CreditLineIn),
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=1, max=500),
        metadata={"description": "Omit to cancel everything not yet credited."},
    )
    reason = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=500)
    )


# --- output -------------------------------------------------------------------------------


def _rate(basis_points: int | None) -> str | None:
    if basis_points is None:
        return None
    text = format((Decimal(basis_points) / 100).normalize(), "f")
    return text


class LineOut(ma.Schema):
    id = ma.fields.String()
    position = ma.fields.Integer()
    description = ma.fields.String()
    quantity = ma.fields.Decimal(as_string=True)
    unit_amount = ma.fields.Integer()
    unit_code = ma.fields.String()
    amount = ma.fields.Integer(attribute="net_minor", metadata={"description": "Net."})
    period = ma.fields.Method("_period", allow_none=True)
    corrects_line_id = ma.fields.String(allow_none=True)
    tax = ma.fields.Method("_tax", allow_none=True)

    def _period(self, obj: Any) -> dict[str, str] | None:
        if obj.period_start_on is None:
            return None
        return {"start": obj.period_start_on.isoformat(), "end": obj.period_end_on.isoformat()}

    def _tax(self, obj: Any) -> dict[str, Any] | None:
        if obj.tax_treatment is None:
            return None
        return {
            "treatment": obj.tax_treatment,
            "category": obj.tax_category,
            "rate": _rate(obj.tax_rate_bp),
            "taxing_country": obj.taxing_country,
        }


class TaxGroupOut(ma.Schema):
    category = ma.fields.String()
    rate = ma.fields.Function(lambda obj: _rate(obj.rate_bp))
    treatment = ma.fields.String()
    taxing_country = ma.fields.String(allow_none=True)
    taxable_amount = ma.fields.Integer(attribute="taxable_minor")
    vat_amount = ma.fields.Integer(attribute="vat_minor")
    vat_amount_eur = ma.fields.Integer(attribute="vat_eur_minor", allow_none=True)
    exemption_reason_code = ma.fields.String(allow_none=True)
    exemption_reason = ma.fields.String(allow_none=True)


class _DocumentOut(ma.Schema):
    id = ma.fields.String()
    livemode = ma.fields.Boolean()
    status = ma.fields.String()
    number = ma.fields.String(allow_none=True)
    customer_id = ma.fields.String()
    currency = ma.fields.String()
    language = ma.fields.String()
    issued_on = ma.fields.Date(allow_none=True)
    supplied_on = ma.fields.Date(allow_none=True)
    buyer_reference = ma.fields.String(allow_none=True)
    lines = ma.fields.List(ma.fields.Nested(LineOut))
    subtotal = ma.fields.Method("_subtotal", metadata={"description": "Sum of line nets."})
    net_amount = ma.fields.Integer(attribute="net_minor", allow_none=True)
    vat_amount = ma.fields.Integer(attribute="vat_minor", allow_none=True)
    gross_amount = ma.fields.Integer(attribute="gross_minor", allow_none=True)
    vat_amount_eur = ma.fields.Integer(attribute="vat_eur_minor", allow_none=True)
    eur_rate = ma.fields.Decimal(as_string=True, allow_none=True)
    eur_rate_on = ma.fields.Date(allow_none=True)
    tax_groups = ma.fields.List(ma.fields.Nested(TaxGroupOut))
    finalized_at = ma.fields.DateTime(allow_none=True)
    content_sha256 = ma.fields.String(allow_none=True)
    retention_ends_on = ma.fields.Date(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()

    def _subtotal(self, obj: Any) -> int:
        return sum(line.net_minor for line in obj.lines)


class InvoiceOut(_DocumentOut):
    object = ma.fields.Constant("invoice")
    kind = ma.fields.String()
    subscription_id = ma.fields.String(
        allow_none=True, metadata={"description": "Set on invoices of a billing run."}
    )
    period_start_on = ma.fields.Date(
        allow_none=True, metadata={"description": "The subscription period it bills (once)."}
    )
    billing_run_id = ma.fields.String(allow_none=True)
    due_on = ma.fields.Date(allow_none=True)
    amount_credited = ma.fields.Integer(
        attribute="credited_gross_minor", metadata={"description": "Gross of its credit notes."}
    )
    paid_at = ma.fields.DateTime(allow_none=True)
    payment_note = ma.fields.String(allow_none=True)
    uncollectible_at = ma.fields.DateTime(allow_none=True)
    voided_at = ma.fields.DateTime(allow_none=True)
    metadata = ma.fields.Dict(attribute="metadata_")


class CreditNoteOut(_DocumentOut):
    object = ma.fields.Constant("credit_note")
    invoice_id = ma.fields.String(attribute="corrects_invoice_id")
    type = ma.fields.String(attribute="credit_note_type")
    reason = ma.fields.String(attribute="credit_note_reason", allow_none=True)


class InvoiceListOut(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(InvoiceOut))
    has_more = ma.fields.Boolean()


class CreditNoteListOut(ma.Schema):
    object = ma.fields.Constant("list")
    url = ma.fields.String()
    data = ma.fields.List(ma.fields.Nested(CreditNoteOut))
    has_more = ma.fields.Boolean()


class InvoiceListArgs(ListArgs):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))
    customer_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    issued_from = ma.fields.Date(
        load_default=None, metadata={"description": "Issued on or after this day."}
    )
    issued_to = ma.fields.Date(
        load_default=None, metadata={"description": "Issued on or before this day."}
    )


class CreditNoteListArgs(ListArgs):
    invoice_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
    customer_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=40))
