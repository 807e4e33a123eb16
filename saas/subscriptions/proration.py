"""Proration: what a mid-period change owes, day-exact in the tenant's time zone. Pure.

Rules:
- The unit is the local calendar day. The day of the change belongs to the new terms: a change
  on 11 Jan in a 1 Jan–1 Feb period credits 21 of 31 days of the old price and charges 21 of 31
  days of the new one.
- Each line is `amount × days ÷ period days`, computed in `Decimal` and rounded once,
  `ROUND_HALF_UP` to the currency's minor unit (`saas.catalog.currencies.to_minor`). Lines are
  rounded separately (a credit and a charge are separate invoice lines); their sum is not
  rounded again.
- A credit is negative, a charge positive. Lines of zero amount are left out.
- Credits assume the period was charged in advance in full (recurring charges are), so the
  unused part is what goes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from saas.catalog.currencies import to_minor
from saas.subscriptions.mrr import amount_per_interval
from saas.subscriptions.periods import Period


class LineKind(StrEnum):
    RECURRING = "recurring"  # a full period, in advance
    CREDIT = "proration_credit"
    CHARGE = "proration_charge"


@dataclass(frozen=True)
class Item:
    """A price at a quantity: what a subscription is on before or after a change."""

    price_id: str
    unit_amount: int
    quantity: int
    per_seat: bool
    label: str = ""

    @property
    def amount(self) -> int:
        return amount_per_interval(self.unit_amount, self.quantity, per_seat=self.per_seat)


@dataclass(frozen=True)
class ProrationLine:
    kind: LineKind
    price_id: str
    quantity: int
    unit_amount: int
    amount: int  # signed minor units: credits < 0 < charges
    starts_on: date  # first day covered
    ends_on: date  # exclusive
    period_days: int
    description: str


def prorated(amount: int, days: int, period_days: int) -> int:
    """`amount × days ÷ period_days`, rounded half up to a whole minor unit."""
    if period_days <= 0:
        raise ValueError("a period has at least one day")
    if not 0 <= days <= period_days:
        raise ValueError(f"{days} days do not fit a period of {period_days}")
    return to_minor(Decimal(amount) * days / period_days)


def _remaining(period: Period, from_on: date) -> int:
    if not period.start_on <= from_on <= period.end_on:
        raise ValueError(f"{from_on} is outside the period {period.start_on}–{period.end_on}")
    return (period.end_on - from_on).days


def credit_unused(item: Item, period: Period, from_on: date) -> ProrationLine | None:
    """Give back the days of `period` from `from_on` on (inclusive) at the old terms."""
    days = _remaining(period, from_on)
    amount = prorated(item.amount, days, period.days)
    if amount == 0:
        return None
    return ProrationLine(
        kind=LineKind.CREDIT,
        price_id=item.price_id,
        quantity=item.quantity,
        unit_amount=item.unit_amount,
        amount=-amount,
        starts_on=from_on,
        ends_on=period.end_on,
        period_days=period.days,
        description=f"Unused time on {item.label or item.price_id} × {item.quantity}"
        f" ({days}/{period.days} days)",
    )


def charge_remaining(item: Item, period: Period, from_on: date) -> ProrationLine | None:
    """Charge the days of `period` from `from_on` on (inclusive) at the new terms."""
    days = _remaining(period, from_on)
    amount = prorated(item.amount, days, period.days)
    if amount == 0:
        return None
    return ProrationLine(
        kind=LineKind.CHARGE,
        price_id=item.price_id,
        quantity=item.quantity,
        unit_amount=item.unit_amount,
        amount=amount,
        starts_on=from_on,
        ends_on=period.end_on,
        period_days=period.days,
        description=f"Remaining time on {item.label or item.price_id} × {item.quantity}"
        f" ({days}/{period.days} days)",
    )


def charge_period(item: Item, period: Period) -> ProrationLine:
    """A full period in advance: the recurring charge of a renewal or a start. Kept even at
    zero (a free plan), so every period a subscription was in service has its charge row."""
    return ProrationLine(
        kind=LineKind.RECURRING,
        price_id=item.price_id,
        quantity=item.quantity,
        unit_amount=item.unit_amount,
        amount=item.amount,
        starts_on=period.start_on,
        ends_on=period.end_on,
        period_days=period.days,
        description=f"{item.label or item.price_id} × {item.quantity}",
    )


def prorate_change(old: Item, new: Item, period: Period, change_on: date) -> list[ProrationLine]:
    """A change within one period (same interval): credit the old terms, charge the new."""
    lines = [credit_unused(old, period, change_on), charge_remaining(new, period, change_on)]
    return [line for line in lines if line is not None]


def total(lines: list[ProrationLine]) -> int:
    return sum(line.amount for line in lines)
