"""Months in the tenant's time zone, and the monthly summary of movements. Pure.

Rules (docs/metrics.md):
- A month runs from local midnight of its first day to local midnight of the next month's
  first day, in the tenant's zone; a movement belongs to the month its instant falls in there.
- Per month and currency: starting MRR + new + expansion + contraction + churn + reactivation
  = ending MRR, exactly. `summarize_months` checks it against an ending MRR computed
  independently (the customers' net change of MRR) and raises `MrrIdentityError` otherwise.
- Customers at start: customers with MRR > 0 at the month's start. Logo churn rate = distinct
  customers with a churn movement in the month ÷ customers at start. Gross MRR churn rate =
  −(churn + contraction) ÷ starting MRR. Net MRR churn rate = −(churn + contraction +
  expansion + reactivation) ÷ starting MRR. Net revenue retention = 1 − net MRR churn rate.
  Rates are decimal fractions with 4 places (`ROUND_HALF_UP`), None when the denominator is 0.
- ARR = ending MRR × 12. ARPA = ending MRR ÷ customers at end, rounded to the minor unit.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from billing.metrics.movements import ACTIVATING, KINDS, Kind, Movement

RATE_PLACES = Decimal("0.0001")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class MrrIdentityError(AssertionError):
    """Starting MRR + movements ≠ ending MRR: the ledger contradicts itself (a bug or a
    corrupted ledger, never user input). `abowerk metrics rebuild` rebuilds it."""


@dataclass(frozen=True, order=True, slots=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9998:
            raise ValueError(f"no such month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`."""
        match = _MONTH.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a month (YYYY-MM)")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of_date(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def of(cls, at: datetime, zone: ZoneInfo) -> Month:
        """The month `at` falls in, in `zone`."""
        if at.tzinfo is None:
            raise ValueError("a naive datetime has no month in a zone")
        local = at.astimezone(zone)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def next(self) -> Month:
        return self.shift(1)

    def previous(self) -> Month:
        return self.shift(-1)

    def minus(self, other: Month) -> int:
        """Whole months from `other` to this month."""
        return (self.year - other.year) * 12 + self.month - other.month

    def start_at(self, zone: ZoneInfo) -> datetime:
        """Local midnight of the first day, as a UTC instant."""
        return datetime.combine(self.first_day, time(0), tzinfo=zone).astimezone(UTC)

    def end_at(self, zone: ZoneInfo) -> datetime:
        """Local midnight of the next month's first day (exclusive end), UTC."""
        return self.next().start_at(zone)


def month_range(first: Month, last: Month) -> list[Month]:
    """`first` to `last`, both included."""
    if last < first:
        raise ValueError(f"{last} is before {first}")
    return [first.shift(i) for i in range(last.minus(first) + 1)]


def ratio(numerator: int, denominator: int) -> Decimal | None:
    """`numerator ÷ denominator` with 4 places, ROUND_HALF_UP; None when dividing by 0."""
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class MonthAggregate:
    """One month of one currency's movements, summed (what `GROUP BY month, kind` gives).

    `net_change` is the customers' MRR at the month's end minus at its start, summed, worked
    out independently of `amounts` (from the customers' MRR, not from the movement amounts):
    it is what the identity is checked against."""

    month: Month
    amounts: Mapping[Kind, int] = field(default_factory=dict)
    counts: Mapping[Kind, int] = field(default_factory=dict)
    churned_customers: int = 0
    net_change: int = 0


@dataclass(frozen=True, slots=True)
class MonthSummary:
    """The monthly report line of one currency. Amounts in minor units of `currency` per
    month; churn and contraction are negative."""

    currency: str
    month: Month
    starting_mrr: int
    new: int
    expansion: int
    contraction: int
    churn: int
    reactivation: int
    ending_mrr: int
    customers_start: int
    customers_end: int
    churned_customers: int
    new_customers: int = 0
    reactivated_customers: int = 0

    @property
    def movements(self) -> dict[Kind, int]:
        return {
            Kind.NEW: self.new,
            Kind.EXPANSION: self.expansion,
            Kind.CONTRACTION: self.contraction,
            Kind.CHURN: self.churn,
            Kind.REACTIVATION: self.reactivation,
        }

    @property
    def net_new_mrr(self) -> int:
        return sum(self.movements.values())

    @property
    def logo_churn_rate(self) -> Decimal | None:
        return ratio(self.churned_customers, self.customers_start)

    @property
    def gross_mrr_churn_rate(self) -> Decimal | None:
        return ratio(-(self.churn + self.contraction), self.starting_mrr)

    @property
    def net_mrr_churn_rate(self) -> Decimal | None:
        return ratio(
            -(self.churn + self.contraction + self.expansion + self.reactivation),
            self.starting_mrr,
        )

    @property
    def net_revenue_retention(self) -> Decimal | None:
        rate = self.net_mrr_churn_rate
        return None if rate is None else Decimal(1) - rate

    @property
    def arr(self) -> int:
        return self.ending_mrr * 12

    @property
    def arpa(self) -> int | None:
        """Average MRR per customer at the month's end, rounded to the minor unit."""
        if self.customers_end == 0:
            return None
        return int(
            (Decimal(self.ending_mrr) / self.customers_end).quantize(Decimal(1), ROUND_HALF_UP)
        )


def check_identity(summary: MonthSummary) -> None:
    """Raise `MrrIdentityError` unless starting + movements = ending."""
    if summary.starting_mrr + summary.net_new_mrr != summary.ending_mrr:
        raise MrrIdentityError(
            f"{summary.currency} {summary.month}: starting {summary.starting_mrr} + movements "
            f"{summary.net_new_mrr} != ending {summary.ending_mrr}"
        )


def summarize_months(
    currency: str,
    months: Sequence[Month],
    *,
    opening_mrr: int,
    opening_customers: int,
    aggregates: Mapping[Month, MonthAggregate],
) -> list[MonthSummary]:
    """The report lines of consecutive `months`, from the MRR and customer count at the first
    month's start and each month's aggregate (a month without one had no movement)."""
    summaries: list[MonthSummary] = []
    mrr = opening_mrr
    customers = opening_customers
    for month in months:
        agg = aggregates.get(month, MonthAggregate(month))
        amounts = {kind: agg.amounts.get(kind, 0) for kind in KINDS}
        activated = sum(agg.counts.get(kind, 0) for kind in ACTIVATING)
        customers_end = customers + activated - agg.counts.get(Kind.CHURN, 0)
        summary = MonthSummary(
            currency=currency,
            month=month,
            starting_mrr=mrr,
            new=amounts[Kind.NEW],
            expansion=amounts[Kind.EXPANSION],
            contraction=amounts[Kind.CONTRACTION],
            churn=amounts[Kind.CHURN],
            reactivation=amounts[Kind.REACTIVATION],
            # independent of the amounts: the customers' own MRR at the month's end
            ending_mrr=mrr + agg.net_change,
            customers_start=customers,
            customers_end=customers_end,
            churned_customers=agg.churned_customers,
            new_customers=agg.counts.get(Kind.NEW, 0),
            reactivated_customers=agg.counts.get(Kind.REACTIVATION, 0),
        )
        check_identity(summary)
        if customers_end < 0:
            raise MrrIdentityError(f"{currency} {month}: {customers_end} customers at the end")
        summaries.append(summary)
        mrr = summary.ending_mrr
        customers = customers_end
    return summaries


@dataclass(frozen=True, slots=True)
class CurrencyMonths:
    """Everything `summarize_months` needs for one currency."""

    currency: str
    opening_mrr: int
    opening_customers: int
    aggregates: dict[Month, MonthAggregate]


def aggregate_movements(
    movements: Iterable[Movement], zone: ZoneInfo, first: Month
) -> dict[str, CurrencyMonths]:
    """The Python path of what `billing.metrics.sql` aggregates in the database: per currency,
    the MRR and customers before `first`, and per month from `first` on the sums by kind.
    `net_change` is computed from each customer's MRR at the months' ends (not from the
    amounts), so `summarize_months` really checks the identity."""
    opening_mrr: dict[str, int] = defaultdict(int)
    opening: dict[str, set[str]] = defaultdict(set)
    amounts: dict[tuple[str, Month], dict[Kind, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[tuple[str, Month], dict[Kind, int]] = defaultdict(lambda: defaultdict(int))
    churned: dict[tuple[str, Month], set[str]] = defaultdict(set)
    # each customer's MRR at the start and the end of every month it moved in
    start_of: dict[tuple[str, Month, str], int] = {}
    end_of: dict[tuple[str, Month, str], int] = {}
    currencies: set[str] = set()
    for mv in sorted(movements, key=lambda m: (m.currency, m.customer_id, m.at)):
        currencies.add(mv.currency)
        month = Month.of(mv.at, zone)
        if month < first:
            opening_mrr[mv.currency] += mv.amount
            if mv.mrr_after > 0:
                opening[mv.currency].add(mv.customer_id)
            else:
                opening[mv.currency].discard(mv.customer_id)
            continue
        key = (mv.currency, month)
        amounts[key][mv.kind] += mv.amount
        counts[key][mv.kind] += 1
        if mv.kind is Kind.CHURN:
            churned[key].add(mv.customer_id)
        start_of.setdefault((mv.currency, month, mv.customer_id), mv.mrr_before)
        end_of[(mv.currency, month, mv.customer_id)] = mv.mrr_after
    net: dict[tuple[str, Month], int] = defaultdict(int)
    for (currency, month, customer_id), end in end_of.items():
        net[(currency, month)] += end - start_of[(currency, month, customer_id)]
    result: dict[str, CurrencyMonths] = {}
    for currency in sorted(currencies):
        aggregates = {
            month: MonthAggregate(
                month=month,
                amounts=dict(amounts[(ccy, month)]),
                counts=dict(counts[(ccy, month)]),
                churned_customers=len(churned[(ccy, month)]),
                net_change=net[(ccy, month)],
            )
            for (ccy, month) in amounts
            if ccy == currency
        }
        result[currency] = CurrencyMonths(
            currency=currency,
            opening_mrr=opening_mrr[currency],
            opening_customers=len(opening[currency]),
            aggregates=aggregates,
        )
    return result
