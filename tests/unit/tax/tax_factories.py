"""Factories for tax unit tests: the seller profiles of TAX_RULES.md §8 and short builders."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from tax.model import (
    Counters,
    CustomerFacts,
    EvidenceKind,
    LocationEvidence,
    SellerProfile,
    Supply,
    VatIdStatus,
)

D = Decimal

SELLER_VAT_ID = "DE811907980"
AT_VAT_ID = "ATU13585627"
DE_CUSTOMER_VAT_ID = "DE136695976"


def day(text: str) -> date:
    """An ISO date."""
    return date.fromisoformat(text)


def seller_a(**changes: Any) -> SellerProfile:
    """Profile A: German GmbH, regular taxation, OSS-registered."""
    return replace(SellerProfile("DE", vat_id=SELLER_VAT_ID, oss_registered=True), **changes)


def counters_a(**changes: Any) -> Counters:
    """Counters of profile A: EU B2C well above 10,000 EUR."""
    base = Counters(eu_b2c_previous_year=D("25000.00"), eu_b2c_current_year=D("18000.00"))
    return replace(base, **changes)


def seller_b(**changes: Any) -> SellerProfile:
    """Profile B: German regular taxpayer, not OSS-registered."""
    return replace(SellerProfile("DE", vat_id=SELLER_VAT_ID), **changes)


def counters_b(current: str = "0.00", previous: str = "3000.00") -> Counters:
    """Counters of profile B: previous-year EU B2C 3,000 EUR."""
    return Counters(eu_b2c_previous_year=D(previous), eu_b2c_current_year=D(current))


def seller_k(**changes: Any) -> SellerProfile:
    """Profile K: German Kleinunternehmer."""
    base = SellerProfile("DE", tax_number="21/815/08150", kleinunternehmer=True)
    return replace(base, **changes)


def counters_k(
    current: str = "0.00",
    previous: str | None = "20000.00",
    forecast: str | None = None,
    **changes: Any,
) -> Counters:
    """Kleinunternehmer counters: received turnover before the supply."""
    base = Counters(
        turnover_previous_year=None if previous is None else D(previous),
        turnover_current_year=D(current),
        forecast_current_year=None if forecast is None else D(forecast),
    )
    return replace(base, **changes)


def consumer(country: str | None, **changes: Any) -> CustomerFacts:
    """A consumer in ``country``."""
    return replace(CustomerFacts(country), **changes)


def business(
    country: str, vat_id: str = AT_VAT_ID, status: VatIdStatus | None = VatIdStatus.VALID
) -> CustomerFacts:
    """A business customer with a checked VAT ID."""
    return CustomerFacts(country, is_business=True, vat_id=vat_id, vat_id_status=status)


def evidence(*items: tuple[EvidenceKind, str, bool]) -> tuple[LocationEvidence, ...]:
    """Location evidence items (kind, country, third_party)."""
    return tuple(LocationEvidence(kind, country, third) for kind, country, third in items)


def supply(
    on: str = "2026-03-10",
    net: str = "100.00",
    currency: str = "EUR",
    net_eur: str | None = None,
) -> Supply:
    """A supply of ``net`` on ``on``."""
    return Supply(day(on), D(net), currency, net_eur=None if net_eur is None else D(net_eur))
