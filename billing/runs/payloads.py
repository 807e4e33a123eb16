"""The ``invoice.finalized`` event payload of run-made invoices, built from the row dicts.

It is what :class:`billing.invoices.schemas.InvoiceOut` dumps for the stored invoice (a test
compares the two), without an ORM object and a marshmallow pass per invoice. When the
schema's fields are not the ones this module knows (someone added a field), the payloads
are dumped through the schema itself instead, so they never silently drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any

Row = Mapping[str, Any]

KNOWN_FIELDS = frozenset(
    {
        "id", "livemode", "status", "number", "customer_id", "currency", "language",
        "issued_on", "supplied_on", "buyer_reference", "lines", "subtotal", "net_amount",
        "vat_amount", "gross_amount", "vat_amount_eur", "eur_rate", "eur_rate_on",
        "tax_groups", "finalized_at", "content_sha256", "retention_ends_on", "created_at",
        "updated_at", "object", "kind", "subscription_id", "period_start_on",
        "billing_run_id", "due_on", "amount_credited", "paid_at", "payment_note",
        "uncollectible_at", "voided_at", "metadata",
    }
)  # fmt: skip


@cache
def _schema_matches() -> bool:
    from billing.invoices.schemas import InvoiceOut

    return set(InvoiceOut().fields) == KNOWN_FIELDS


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rate(basis_points: int | None) -> str | None:
    if basis_points is None:
        return None
    return format((Decimal(basis_points) / 100).normalize(), "f")


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _line(row: Row) -> dict[str, Any]:
    period = None
    if row["period_start_on"] is not None:
        period = {
            "start": row["period_start_on"].isoformat(),
            "end": row["period_end_on"].isoformat(),
        }
    tax = None
    if row["tax_treatment"] is not None:
        tax = {
            "treatment": row["tax_treatment"],
            "category": row["tax_category"],
            "rate": _rate(row["tax_rate_bp"]),
            "taxing_country": row["taxing_country"],
        }
    return {
        "id": row["id"],
        "position": row["position"],
        "description": row["description"],
        "quantity": _decimal(row["quantity"]),
        "unit_amount": row["unit_amount"],
        "unit_code": row["unit_code"],
        "amount": row["net_minor"],
        "period": period,
        "corrects_line_id": row["corrects_line_id"],
        "tax": tax,
    }


def _group(row: Row) -> dict[str, Any]:
    return {
        "category": row["category"],
        "rate": _rate(row["rate_bp"]),
        "treatment": row["treatment"],
        "taxing_country": row["taxing_country"],
        "taxable_amount": row["taxable_minor"],
        "vat_amount": row["vat_minor"],
        "vat_amount_eur": row["vat_eur_minor"],
        "exemption_reason_code": row["exemption_reason_code"],
        "exemption_reason": row["exemption_reason"],
    }


def invoice_payload(invoice: Row, lines: Sequence[Row], groups: Sequence[Row]) -> dict[str, Any]:
    """``InvoiceOut().dump(invoice)``, field for field and in the schema's order."""
    return {
        "id": invoice["id"],
        "livemode": invoice["livemode"],
        "status": invoice["status"],
        "number": invoice["number"],
        "customer_id": invoice["customer_id"],
        "currency": invoice["currency"],
        "language": invoice["language"],
        "issued_on": _day(invoice["issued_on"]),
        "supplied_on": _day(invoice["supplied_on"]),
        "buyer_reference": invoice["buyer_reference"],
        "lines": [_line(line) for line in lines],
        "subtotal": sum(line["net_minor"] for line in lines),
        "net_amount": invoice["net_minor"],
        "vat_amount": invoice["vat_minor"],
        "gross_amount": invoice["gross_minor"],
        "vat_amount_eur": invoice["vat_eur_minor"],
        "eur_rate": _decimal(invoice["eur_rate"]),
        "eur_rate_on": _day(invoice["eur_rate_on"]),
        "tax_groups": [_group(group) for group in groups],
        "finalized_at": _instant(invoice["finalized_at"]),
        "content_sha256": invoice["content_sha256"],
        "retention_ends_on": _day(invoice["retention_ends_on"]),
        "created_at": _instant(invoice["created_at"]),
        "updated_at": _instant(invoice["updated_at"]),
        "object": "invoice",
        "kind": invoice["kind"],
        "subscription_id": invoice["subscription_id"],
        "period_start_on": _day(invoice["period_start_on"]),
        "billing_run_id": invoice["billing_run_id"],
        "due_on": _day(invoice["due_on"]),
        "amount_credited": invoice["credited_gross_minor"],
        "paid_at": _instant(invoice["paid_at"]),
        "payment_note": invoice["payment_note"],
        "uncollectible_at": _instant(invoice["uncollectible_at"]),
        "voided_at": _instant(invoice["voided_at"]),
        "metadata": invoice["metadata"],
    }


def invoice_payloads(
    invoices: Sequence[Row],
    lines_of: Mapping[str, Sequence[Row]],
    groups_of: Mapping[str, Sequence[Row]],
) -> list[dict[str, Any]]:
    if _schema_matches():
        return [
            invoice_payload(row, lines_of.get(row["id"], ()), groups_of.get(row["id"], ()))
            for row in invoices
        ]
    from billing.invoices.schemas import InvoiceOut

    objects = []
    for row in invoices:
        fields = {k: v for k, v in row.items() if k != "metadata"}
        objects.append(
            SimpleNamespace(
                **fields,
                metadata_=row["metadata"],
                lines=[SimpleNamespace(**line) for line in lines_of.get(row["id"], ())],
                tax_groups=[SimpleNamespace(**g) for g in groups_of.get(row["id"], ())],
            )
        )
    return list(InvoiceOut(many=True).dump(objects))
