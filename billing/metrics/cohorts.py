"""Monthly cohort retention. Pure.

Rules (docs/metrics.md):
- A customer's cohort is the month (tenant's zone) of their `new` movement, per currency.
- For every month from the cohort's own to the report's last: the cohort's customers with
  MRR > 0 at the month's end (`customers`), their MRR then (`mrr`, reactivations and
  expansions included), and both as a share of the cohort: customer retention =
  customers ÷ cohort size, MRR retention = mrr ÷ the cohort's MRR when new (the sum of its
  `new` movements). Shares are decimal fractions with 4 places; MRR retention above 1 is net
  expansion.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing.metrics.months import Month, month_range, ratio


@dataclass(frozen=True, slots=True)
class CohortMonthAggregate:
    """What the ledger sums for one cohort and month (`sql.cohort_select`)."""

    currency: str
    cohort: Month
    month: Month
    amount: int  # summed movement amounts of the cohort's customers in the month
    activity: int  # +1 per new or reactivation, −1 per churn
    new_customers: int = 0  # only in the cohort month
    new_mrr: int = 0


@dataclass(frozen=True, slots=True)
class CohortCell:
    month: Month
    age: int  # months since the cohort month (0 = the cohort month itself)
    customers: int
    mrr: int

    customer_retention: Decimal | None
    mrr_retention: Decimal | None


@dataclass(frozen=True, slots=True)
class Cohort:
    currency: str
    cohort: Month
    customers: int  # cohort size
    mrr: int  # the cohort's MRR when new
    cells: tuple[CohortCell, ...]


def cohort_table(
    aggregates: Iterable[CohortMonthAggregate], first: Month, last: Month
) -> list[Cohort]:
    """Cohorts from `first` to `last` (months without a new customer are left out), each with
    a cell per month from the cohort month to `last`; sorted by currency and cohort."""
    by_cohort: dict[tuple[str, Month], dict[Month, CohortMonthAggregate]] = defaultdict(dict)
    for agg in aggregates:
        if first <= agg.cohort <= last and agg.month <= last:
            by_cohort[(agg.currency, agg.cohort)][agg.month] = agg
    cohorts: list[Cohort] = []
    for (currency, cohort), months in sorted(by_cohort.items()):
        opening = months.get(cohort)
        size = opening.new_customers if opening else 0
        initial = opening.new_mrr if opening else 0
        if size == 0:
            continue
        customers = 0
        mrr = 0
        cells: list[CohortCell] = []
        for month in month_range(cohort, last):
            moved = months.get(month)
            if moved is not None:
                customers += moved.activity
                mrr += moved.amount
            cells.append(
                CohortCell(
                    month=month,
                    age=month.minus(cohort),
                    customers=customers,
                    mrr=mrr,
                    customer_retention=ratio(customers, size),
                    mrr_retention=ratio(mrr, initial),
                )
            )
        cohorts.append(Cohort(currency, cohort, size, initial, tuple(cells)))
    return cohorts
