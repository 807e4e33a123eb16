"""Months in the tenant's zone, the monthly identity, the rates and ARR/ARPA."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.metrics.months import (
    Month,
    MonthAggregate,
    MonthSummary,
    MrrIdentityError,
    aggregate_movements,
    month_range,
    ratio,
    summarize_months,
)
from billing.metrics.movements import Kind, SubscriptionChange, movements_from_levels

BERLIN = ZoneInfo("Europe/Berlin")


def test_month_boundaries_are_local_midnights_when_zone_changes_offset() -> None:
    assert Month(2025, 1).start_at(BERLIN) == datetime(2024, 12, 31, 23, tzinfo=UTC)
    assert Month(2025, 3).end_at(BERLIN) == datetime(2025, 3, 31, 22, tzinfo=UTC)  # CEST
    assert Month.of(datetime(2025, 2, 28, 23, 30, tzinfo=UTC), BERLIN) == Month(2025, 3)
    assert Month.of(datetime(2025, 2, 28, 22, 59, tzinfo=UTC), BERLIN) == Month(2025, 2)
    assert Month.of(datetime(2025, 2, 28, 23, 30, tzinfo=UTC), ZoneInfo("UTC")) == Month(2025, 2)


def test_month_parses_and_steps_when_crossing_years() -> None:
    assert Month.parse("2025-12").next() == Month(2026, 1)
    assert Month(2025, 1).shift(-1) == Month(2024, 12)
    assert Month(2026, 3).minus(Month(2025, 12)) == 3
    assert [str(m) for m in month_range(Month(2025, 11), Month(2026, 2))] == [
        "2025-11", "2025-12", "2026-01", "2026-02",
    ]  # fmt: skip
    for bad in ("2025-13", "2025-1", "25-01", "2025-00"):
        with pytest.raises(ValueError, match="month"):
            Month.parse(bad)
    with pytest.raises(ValueError, match="before"):
        month_range(Month(2025, 2), Month(2025, 1))


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (1, 3, Decimal("0.3333")),
        (2, 3, Decimal("0.6667")),
        (1, 8, Decimal("0.1250")),
        (1, 20000, Decimal("0.0001")),  # 0.00005 rounds half up
        (-1, 20000, Decimal("-0.0001")),
        (5, 0, None),
        (0, 7, Decimal("0.0000")),
    ],
)
def test_ratio_has_four_places_half_up_and_none_when_denominator_is_zero(
    numerator: int, denominator: int, expected: Decimal | None
) -> None:
    assert ratio(numerator, denominator) == expected
    if expected is not None:
        assert ratio(numerator, denominator).as_tuple().exponent == -4  # type: ignore[union-attr]


def _summary(**fields: int) -> MonthSummary:
    base = dict.fromkeys(
        ("starting_mrr", "new", "expansion", "contraction", "churn", "reactivation",
         "ending_mrr", "customers_start", "customers_end", "churned_customers"),
        0,
    )  # fmt: skip
    base.update(fields)
    return MonthSummary(currency="EUR", month=Month(2025, 3), **base)


def test_rates_follow_their_definitions_when_month_has_every_movement() -> None:
    s = _summary(
        starting_mrr=100000, new=5000, expansion=3000, contraction=-2000, churn=-4000,
        reactivation=1000, ending_mrr=103000, customers_start=40, customers_end=41,
        churned_customers=2,
    )  # fmt: skip
    assert s.logo_churn_rate == Decimal("0.0500")
    assert s.gross_mrr_churn_rate == Decimal("0.0600")  # −(−4000 − 2000) / 100000
    assert s.net_mrr_churn_rate == Decimal("0.0200")  # −(−4000 − 2000 + 3000 + 1000) / 100000
    assert s.net_revenue_retention == Decimal("0.9800")
    assert s.arr == 1236000
    assert s.arpa == 2512  # 103000 / 41 = 2512.19…


def test_rates_are_none_when_nothing_to_divide_by() -> None:
    s = _summary(new=1900, ending_mrr=1900, customers_end=1)
    assert (s.logo_churn_rate, s.gross_mrr_churn_rate, s.net_mrr_churn_rate) == (None,) * 3
    assert s.net_revenue_retention is None
    assert _summary().arpa is None


def test_summaries_chain_months_and_check_identity_when_aggregates_given() -> None:
    months = month_range(Month(2025, 1), Month(2025, 3))
    aggregates = {
        Month(2025, 1): MonthAggregate(
            Month(2025, 1), {Kind.NEW: 6800}, {Kind.NEW: 2}, net_change=6800
        ),
        Month(2025, 3): MonthAggregate(
            Month(2025, 3), {Kind.CHURN: -1900}, {Kind.CHURN: 1}, 1, net_change=-1900
        ),
    }
    lines = summarize_months(
        "EUR", months, opening_mrr=0, opening_customers=0, aggregates=aggregates
    )
    assert [(str(s.month), s.starting_mrr, s.ending_mrr, s.customers_end) for s in lines] == [
        ("2025-01", 0, 6800, 2),
        ("2025-02", 6800, 6800, 2),
        ("2025-03", 6800, 4900, 1),
    ]
    broken = {Month(2025, 1): MonthAggregate(Month(2025, 1), {Kind.NEW: 6800}, net_change=6700)}
    with pytest.raises(MrrIdentityError, match="2025-01"):
        summarize_months("EUR", months, opening_mrr=0, opening_customers=0, aggregates=broken)


def test_aggregation_counts_state_before_first_month_as_opening_when_reporting_later() -> None:
    t = [datetime(2025, m, 10, tzinfo=UTC) for m in range(1, 5)]
    changes = [
        SubscriptionChange("c1", "s1", t[0], 1900, "EUR"),
        SubscriptionChange("c2", "s2", t[0], 4900, "EUR"),
        SubscriptionChange("c2", "s2", t[1], 0, "EUR"),
        SubscriptionChange("c2", "s3", t[2], 990, "EUR"),
        SubscriptionChange("c1", "s1", t[3], 2900, "EUR"),
    ]
    data = aggregate_movements(movements_from_levels(changes), BERLIN, Month(2025, 3))["EUR"]
    assert (data.opening_mrr, data.opening_customers) == (1900, 1)
    lines = summarize_months(
        "EUR",
        month_range(Month(2025, 3), Month(2025, 4)),
        opening_mrr=data.opening_mrr,
        opening_customers=data.opening_customers,
        aggregates=data.aggregates,
    )
    assert [(s.reactivation, s.expansion, s.ending_mrr, s.customers_end) for s in lines] == [
        (990, 0, 2890, 2),
        (0, 1000, 3890, 2),
    ]
