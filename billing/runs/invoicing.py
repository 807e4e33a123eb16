"""From pending subscription charges to finalized invoice rows (pure: no database, no clock).

Grouping (one invoice per subscription period):

* the recurring charge of a period opens a group; its key is the period's first day
  (``invoices.period_start_on``), so a period is invoiced at most once;
* proration lines (credits and charges of an immediate change) go on the invoice of the
  next period that is pending (starting the same day or later), where they are netted with
  it; with none pending they make an invoice of their own without a period key (their
  charges, claimed under lock, are what keeps them single);
* credits (the unused time an immediate change gives back) are never invoice lines: each
  becomes a credit note correcting the invoice(s) that billed that time, with their tax
  treatment (:func:`billing.runs.services.credit_charges`).

Every invoice is built exactly as :func:`billing.invoices.services.finalize_invoice`
builds one from a draft with the same lines and supply date: the same tax decision per
line, snapshot, validation, number format, SHA-256, totals and tax groups. A test compares
the two byte for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from billing.documents.model import (
    DocumentKind,
    EurConversion,
    InvoiceSnapshot,
    Period,
    SellerParty,
    canonical_json,
    to_decimal,
    with_number,
)
from billing.documents.rules import validate_invoice
from billing.invoices.models import INVOICE, OPEN, PAID
from billing.invoices.retention import retention_ends_on
from billing.invoices.snapshots import (
    EUR,
    CustomerData,
    LineData,
    build_invoice_snapshot,
    line_net_minor,
    to_eur,
)
from tax import decide
from tax.model import Counters, Supply, TaxDecision, TaxPolicy
from tax.model import SellerProfile as TaxSellerProfile

RECURRING = "recurring"
PLACEHOLDER_NUMBER = "DRAFT"


@dataclass(frozen=True, slots=True)
class Charge:
    """A pending ``subscription_charges`` row, as the run reads it."""

    id: str
    subscription_id: str
    customer_id: str
    period_id: str | None
    price_id: str
    livemode: bool
    kind: str
    description: str
    quantity: int
    unit_amount: int
    amount: int
    currency: str
    starts_on: date
    ends_on: date  # exclusive


@dataclass(frozen=True, slots=True)
class Group:
    """The charges that become one invoice; ``period_start_on`` is its exactly-once key."""

    subscription_id: str
    customer_id: str
    livemode: bool
    currency: str
    period_start_on: date | None
    supplied_on: date
    charges: tuple[Charge, ...]

    @property
    def total(self) -> int:
        return sum(c.amount for c in self.charges)


def group_charges(charges: Sequence[Charge]) -> tuple[list[Group], list[Charge]]:
    """Group the pending charges of ONE subscription; returns the groups to invoice and the
    credits, which are not invoice lines (an invoice line is never negative, EN 16931
    BR-27 and § 14 UStG: a credit corrects the invoice that billed the time it gives
    back, :func:`billing.runs.services.credit_charges`)."""
    # a period's recurring charge after the prorations of the same day: they join its invoice
    ordered = sorted(
        (c for c in charges if c.amount >= 0),
        key=lambda c: (c.starts_on, c.kind == RECURRING, c.id),
    )
    groups: list[Group] = []
    carry: list[Charge] = []
    for charge in ordered:
        carry.append(charge)
        if charge.kind == RECURRING:
            groups.append(_group(carry, period_start_on=charge.starts_on))
            carry = []
    if carry:  # prorations after the last pending period: an invoice of their own
        groups.append(_group(carry, period_start_on=None))
    return groups, [c for c in charges if c.amount < 0]


def _group(charges: list[Charge], *, period_start_on: date | None) -> Group:
    first = charges[0]
    return Group(
        subscription_id=first.subscription_id,
        customer_id=first.customer_id,
        livemode=first.livemode,
        currency=first.currency,
        period_start_on=period_start_on,
        supplied_on=period_start_on or min(c.starts_on for c in charges),
        charges=tuple(charges),
    )


def charge_line(charge: Charge) -> LineData:
    """The invoice line of a charge: quantity × unit price where that is exact (a full
    period per seat), else one unit of the (prorated) amount."""
    if charge.amount < 0:
        raise ValueError(f"charge {charge.id} is a credit, not an invoice line")
    if charge.quantity * charge.unit_amount == charge.amount and charge.quantity > 0:
        quantity, unit_amount = Decimal(charge.quantity), charge.unit_amount
    else:
        quantity, unit_amount = Decimal(1), charge.amount
    last_day = max(charge.starts_on, charge.ends_on - timedelta(days=1))
    return LineData(
        description=charge.description[:500],
        quantity=quantity,
        unit_amount=unit_amount,
        net_minor=line_net_minor(quantity, unit_amount),
        period=Period(charge.starts_on, last_day),
    )


def decide_and_advance(
    seller: TaxSellerProfile,
    counters: Counters,
    customer: CustomerData,
    lines: Sequence[LineData],
    *,
    supplied_on: date,
    currency: str,
    eur_rate: Decimal | None,
    policy: TaxPolicy,
) -> tuple[list[TaxDecision], Counters]:
    """:func:`billing.invoices.snapshots.decide_lines`, also returning the counters after
    the invoice, so that the next invoice of the batch sees this one (a threshold crossed
    in the middle of a batch taxes the crossing invoice and every later one)."""
    facts = customer.facts()
    decisions = []
    for line in lines:
        net = to_decimal(line.net_minor, currency)
        net_eur = net if currency == EUR else (to_eur(net, eur_rate) if eur_rate else None)
        supply = Supply(
            supplied_on, net, currency=currency, net_eur=None if currency == EUR else net_eur
        )
        decision = decide(seller, counters, facts, supply, policy)
        decisions.append(decision)
        if net_eur is not None:
            counters = dataclasses.replace(
                counters,
                turnover_current_year=counters.turnover_current_year
                + (net_eur if decision.counts_toward_turnover else 0),
                eu_b2c_current_year=counters.eu_b2c_current_year
                + (net_eur if decision.counts_toward_eu_b2c else 0),
                union_turnover_current_year=counters.union_turnover_current_year
                + (net_eur if decision.counts_toward_union_turnover else 0),
            )
    return decisions, counters


@dataclass(frozen=True, slots=True)
class Terms:
    """What finalization takes from the seller profile."""

    seller: SellerParty
    language: str
    payment_terms_days: int


def build_snapshot(
    terms: Terms,
    customer: CustomerData,
    lines: Sequence[LineData],
    decisions: Sequence[TaxDecision],
    *,
    issued_on: date,
    supplied_on: date,
    currency: str,
    conversion: EurConversion | None,
) -> InvoiceSnapshot:
    """The validated snapshot with a placeholder number (raises the documents' errors)."""
    snapshot = build_invoice_snapshot(
        kind=DocumentKind.INVOICE,
        number=PLACEHOLDER_NUMBER,
        issued_on=issued_on,
        supplied_on=supplied_on,
        seller=terms.seller,
        buyer=customer.party(),
        lines=lines,
        decisions=decisions,
        currency=currency,
        language=terms.language,
        due_on=issued_on + timedelta(days=terms.payment_terms_days),
        payment_terms_days=terms.payment_terms_days,
        eur_conversion=conversion,
        buyer_reference=None,
    )
    validate_invoice(snapshot)
    return snapshot


def numbered(snapshot: InvoiceSnapshot, number: str) -> InvoiceSnapshot:
    """As finalization does after taking the number."""
    due_date = None if snapshot.totals.due_minor == 0 else snapshot.due_date
    return with_number(snapshot, number, payment_reference=number, due_date=due_date)


def rate_bp(rate: Decimal) -> int:
    basis_points = rate * 100
    if basis_points != basis_points.to_integral_value():
        raise ValueError(f"VAT rate {rate} has more than two decimals")
    return int(basis_points)


def invoice_rows(
    snapshot: InvoiceSnapshot,
    decisions: Sequence[TaxDecision],
    lines: Sequence[LineData],
    *,
    ids: tuple[str, list[str], list[str]],
    tenant_id: str,
    group: Group,
    run_id: str | None,
    series: str,
    at: datetime,
    now: datetime,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``invoices``, ``invoice_lines`` and ``invoice_tax_groups`` rows of a numbered
    snapshot, column for column as :func:`billing.invoices.services._freeze` writes them."""
    invoice_id, line_ids, group_ids = ids
    data = canonical_json(snapshot)
    totals = snapshot.totals
    oss = any(d.oss_reportable for d in decisions)
    paid = totals.gross_minor == 0
    conversion = snapshot.eur_conversion
    base = {"tenant_id": tenant_id, "livemode": group.livemode}
    invoice = {
        **base,
        "id": invoice_id,
        "kind": INVOICE,
        "status": PAID if paid else OPEN,
        "customer_id": group.customer_id,
        "currency": group.currency,
        "language": snapshot.language.value,
        "supplied_on": snapshot.supply_date,
        "buyer_reference": None,
        "metadata": {},
        "corrects_invoice_id": None,
        "credit_note_type": None,
        "credit_note_reason": None,
        "subscription_id": group.subscription_id,
        "period_start_on": group.period_start_on,
        "billing_run_id": run_id,
        "number": snapshot.number,
        "number_series": series,
        "issued_on": snapshot.issue_date,
        "due_on": snapshot.due_date,
        "finalized_at": at,
        "snapshot_json": data,
        "content_sha256": hashlib.sha256(data).hexdigest(),
        "net_minor": totals.net_minor,
        "vat_minor": totals.vat_minor,
        "gross_minor": totals.gross_minor,
        "vat_eur_minor": totals.vat_eur_minor,
        "eur_rate": conversion.rate if conversion is not None else None,
        "eur_rate_on": conversion.rate_date if conversion is not None else None,
        "oss_reportable": oss,
        "retention_ends_on": retention_ends_on(snapshot.issue_date, oss=oss),
        "paid_at": at if paid else None,
        "payment_note": None,
        "voided_at": None,
        "uncollectible_at": None,
        "credited_net_minor": 0,
        "credited_gross_minor": 0,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    line_rows = [
        {
            **base,
            "id": line_id,
            "invoice_id": invoice_id,
            "position": position,
            "description": line.description,
            "quantity": line.quantity,
            "unit_amount": line.unit_amount,
            "unit_code": line.unit_code,
            "net_minor": line.net_minor,
            "period_start_on": line.period.start if line.period else None,
            "period_end_on": line.period.end if line.period else None,
            "corrects_line_id": None,
            "tax_treatment": decision.treatment.value,
            "tax_category": decision.category.value,
            "tax_rate_bp": rate_bp(decision.rate),
            "taxing_country": decision.taxing_country,
            "created_at": now,
        }
        for position, (line_id, line, decision) in enumerate(
            zip(line_ids, lines, decisions, strict=True), start=1
        )
    ]
    group_rows = []
    for position, (group_id, tax_group) in enumerate(
        zip(group_ids, totals.groups, strict=True), start=1
    ):
        members = [
            line.tax
            for line in snapshot.lines
            if line.tax.category is tax_group.category and line.tax.rate == tax_group.rate
        ]
        countries = {tax.taxing_country for tax in members}
        group_rows.append(
            {
                **base,
                "id": group_id,
                "invoice_id": invoice_id,
                "position": position,
                "category": tax_group.category.value,
                "rate_bp": rate_bp(tax_group.rate),
                "treatment": members[0].treatment.value,
                "taxing_country": countries.pop() if len(countries) == 1 else None,
                "taxable_minor": tax_group.taxable_minor,
                "vat_minor": tax_group.vat_minor,
                "vat_eur_minor": tax_group.vat_eur_minor,
                "exemption_reason_code": tax_group.exemption_reason_code,
                "exemption_reason": tax_group.exemption_reason,
            }
        )
    return invoice, line_rows, group_rows
