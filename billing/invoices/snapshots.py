"""Building the frozen snapshot of an invoice (pure: no database, no clock).

* **Tax per line** (:func:`decide_lines`): every line is one supply to the customer on the
  supply date, decided by :func:`tax.decide` with the seller's profile and counters. Lines
  are decided in order and each decided line advances the counters it feeds (its
  ``counts_toward_*`` flags), so a line that crosses a threshold (Kleinunternehmer
  100,000 EUR, Art. 59c 10,000 EUR) is decided as the crossing supply and the following
  lines as later supplies.
* **Foreign currency**: the EUR amount a threshold test needs, and the VAT in EUR the
  document states, use the ECB rate of the supply date (:mod:`billing.invoices.exchange`).
* **Parties** are copied as they are at finalization; the documents layer validates the
  result (:func:`billing.documents.validate_invoice`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from billing.documents.model import (
    Address,
    BuyerParty,
    DocumentKind,
    EurConversion,
    InvoiceLine,
    InvoiceSnapshot,
    Language,
    LineTax,
    Period,
    SellerParty,
    to_decimal,
)
from tax import decide
from tax.model import Counters, CustomerFacts, Supply, TaxDecision, TaxPolicy, VatIdStatus
from tax.model import SellerProfile as TaxSellerProfile

EUR = "EUR"
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CustomerData:
    """What the snapshot and the tax decision need of a customer."""

    name: str
    country: str
    line1: str | None
    line2: str | None
    postal_code: str | None
    city: str | None
    is_business: bool
    vat_id: str | None
    vat_id_status: str | None

    def facts(self) -> CustomerFacts:
        status = VatIdStatus(self.vat_id_status) if self.vat_id_status else None
        return CustomerFacts(
            country=self.country,
            postal_code=self.postal_code,
            is_business=self.is_business,
            vat_id=self.vat_id,
            vat_id_status=status,
        )

    def party(self) -> BuyerParty:
        return BuyerParty(
            name=self.name,
            address=Address(self.country, self.line1, self.line2, self.postal_code, self.city),
            vat_id=self.vat_id,
            is_business=self.is_business,
        )


@dataclass(frozen=True, slots=True)
class LineData:
    """One line as the draft holds it; ``period`` days inclusive."""

    description: str
    quantity: Decimal
    unit_amount: int
    net_minor: int
    unit_code: str = "C62"
    period: Period | None = None


def line_net_minor(quantity: Decimal, unit_amount: int) -> int:
    """Line net in minor units: round half-up(quantity × unit price) (BR-DEC-23)."""
    return int((quantity * unit_amount).quantize(Decimal(1), ROUND_HALF_UP))


def to_eur(amount: Decimal, rate: Decimal) -> Decimal:
    """``amount`` of a currency quoted at ``rate`` units per 1 EUR, in EUR (half-up cents)."""
    return (amount / rate).quantize(_CENT, ROUND_HALF_UP)


def decide_lines(
    seller: TaxSellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    lines: Sequence[LineData],
    *,
    supplied_on: date,
    currency: str,
    eur_rate: Decimal | None,
    policy: TaxPolicy,
) -> list[TaxDecision]:
    """The tax decision of every line, in order (raises :class:`tax.errors.TaxError`)."""
    decisions = []
    for line in lines:
        net = to_decimal(line.net_minor, currency)
        net_eur = None
        if currency == EUR:
            net_eur = net
        elif eur_rate is not None:
            net_eur = to_eur(net, eur_rate)
        supply = Supply(
            supplied_on, net, currency=currency, net_eur=None if currency == EUR else net_eur
        )
        decision = decide(seller, counters, customer, supply, policy)
        decisions.append(decision)
        if net_eur is not None:
            counters = _advanced(counters, decision, net_eur)
    return decisions


def _advanced(counters: Counters, decision: TaxDecision, net_eur: Decimal) -> Counters:
    return dataclasses.replace(
        counters,
        turnover_current_year=counters.turnover_current_year
        + (net_eur if decision.counts_toward_turnover else 0),
        eu_b2c_current_year=counters.eu_b2c_current_year
        + (net_eur if decision.counts_toward_eu_b2c else 0),
        union_turnover_current_year=counters.union_turnover_current_year
        + (net_eur if decision.counts_toward_union_turnover else 0),
    )


_TERMS = {
    "de": ("Zahlbar sofort ohne Abzug.", "Zahlbar innerhalb von {days} Tagen ohne Abzug."),
    "en": (
        "Payable immediately without deduction.",
        "Payable within {days} days without deduction.",
    ),
}
_CREDIT_TERMS = {
    "de": "Der Betrag wird erstattet oder mit offenen Forderungen verrechnet.",
    "en": "The amount will be refunded or offset against open amounts.",
}


def payment_terms(language: str, days: int) -> str:
    """The printed payment terms for ``days`` days."""
    immediately, within = _TERMS[language]
    return immediately if days == 0 else within.format(days=days)


def credit_terms(language: str) -> str:
    """The printed terms of a credit note (nothing is due from the buyer)."""
    return _CREDIT_TERMS[language]


def service_period(lines: Sequence[LineData]) -> Period | None:
    """The billed period of the document: spans the lines' periods when all have one."""
    periods = [line.period for line in lines]
    if not periods or any(p is None for p in periods):
        return None
    return Period(
        min(p.start for p in periods if p is not None), max(p.end for p in periods if p is not None)
    )


def build_invoice_snapshot(
    *,
    kind: DocumentKind,
    number: str,
    issued_on: date,
    supplied_on: date,
    seller: SellerParty,
    buyer: BuyerParty,
    lines: Sequence[LineData],
    decisions: Sequence[TaxDecision],
    currency: str,
    language: str,
    due_on: date | None,
    payment_terms_days: int,
    eur_conversion: EurConversion | None,
    buyer_reference: str | None,
) -> InvoiceSnapshot:
    """The snapshot of an invoice (or § 33 small-amount invoice) at finalization."""
    return InvoiceSnapshot(
        kind=kind,
        number=number,
        issue_date=issued_on,
        supply_date=supplied_on,
        seller=seller,
        buyer=buyer,
        lines=tuple(
            InvoiceLine(
                description=line.description,
                quantity=line.quantity,
                unit_price_minor=line.unit_amount,
                currency=currency,
                tax=LineTax.from_decision(decision),
                period=line.period,
                unit_code=line.unit_code,
            )
            for line, decision in zip(lines, decisions, strict=True)
        ),
        currency=currency,
        language=Language(language),
        service_period=service_period(lines),
        due_date=due_on,
        payment_reference=number,
        payment_terms=payment_terms(language, payment_terms_days),
        eur_conversion=eur_conversion,
        buyer_reference=buyer_reference,
    )


def build_credit_note_snapshot(
    original: InvoiceSnapshot,
    *,
    number: str,
    issued_on: date,
    lines: Sequence[InvoiceLine],
) -> InvoiceSnapshot:
    """A credit note correcting ``original``: the same parties, currency, supply date,
    exchange rate and tax treatment (the lines carry the corrected lines' ``LineTax``),
    positive amounts with document type 381 and a reference to the original's number and
    date (§ 31 Abs. 5 UStDV, EN 16931 BG-3)."""
    from billing.documents.model import DocumentReference

    return dataclasses.replace(
        original,
        kind=DocumentKind.CREDIT_NOTE,
        number=number,
        issue_date=issued_on,
        lines=tuple(lines),
        due_date=None,
        payment_reference=None,
        payment_terms=credit_terms(original.language.value),
        paid_minor=0,
        credit_note_of=DocumentReference(original.number, original.issue_date),
    )
