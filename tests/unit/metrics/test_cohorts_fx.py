"""Cohort retention and the ECB month-end rates of the reporting-currency total."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.metrics.cohorts import CohortMonthAggregate, cohort_table
from billing.metrics.fx import EcbMonthEndRates, FixedMonthEndRates, convert_minor
from billing.metrics.months import Month

JAN, FEB, MAR, APR = (Month(2025, m) for m in range(1, 5))


def test_cohort_retention_follows_customers_and_mrr_when_they_churn_and_return() -> None:
    rows = [
        # January cohort: 2 new customers, 68.00
        CohortMonthAggregate("EUR", JAN, JAN, 6800, 2, new_customers=2, new_mrr=6800),
        CohortMonthAggregate("EUR", JAN, FEB, 5000, 0),  # an expansion
        CohortMonthAggregate("EUR", JAN, MAR, -1900, -1),  # a churn
        CohortMonthAggregate("EUR", JAN, APR, 1900, 1),  # back again
        # February cohort: one customer who churns in the same month
        CohortMonthAggregate("EUR", FEB, FEB, 0, 0, new_customers=1, new_mrr=990),
    ]
    jan, feb = cohort_table(rows, JAN, APR)
    assert (jan.cohort, jan.customers, jan.mrr) == (JAN, 2, 6800)
    assert [(c.age, c.customers, c.mrr, str(c.customer_retention), str(c.mrr_retention))
            for c in jan.cells] == [
        (0, 2, 6800, "1.0000", "1.0000"),
        (1, 2, 11800, "1.0000", "1.7353"),
        (2, 1, 9900, "0.5000", "1.4559"),
        (3, 2, 11800, "1.0000", "1.7353"),
    ]  # fmt: skip
    assert [(c.customers, c.mrr) for c in feb.cells] == [(0, 0), (0, 0), (0, 0)]
    assert cohort_table(rows, FEB, MAR)[0].cohort == FEB  # cohorts outside the range are left out


@pytest.mark.parametrize(
    ("month", "published_on"),
    [
        (Month(2025, 1), date(2025, 1, 31)),  # a Friday
        (Month(2025, 5), date(2025, 5, 30)),  # 31 May is a Saturday
        (Month(2024, 3), date(2024, 3, 28)),  # Good Friday 29 March, no fixing
    ],
)
def test_ecb_rate_is_last_publication_of_the_month_when_month_ends_on_a_holiday(
    month: Month, published_on: date
) -> None:
    rate = EcbMonthEndRates().rate("USD", month)
    assert rate is not None
    assert rate.published_on == published_on and not rate.provisional
    assert Decimal("0.9") < rate.rate < Decimal("1.3")


def test_ecb_rate_is_provisional_when_month_ends_after_the_offline_data() -> None:
    rate = EcbMonthEndRates().rate("USD", Month(2099, 1))
    assert rate is not None and rate.provisional
    assert EcbMonthEndRates().rate("XXX", JAN) is None
    euro = EcbMonthEndRates().rate("EUR", JAN)
    assert euro is not None and euro.rate == 1


def test_conversion_goes_through_euro_and_keeps_minor_units_when_exponents_differ() -> None:
    rates = FixedMonthEndRates({"USD": Decimal("1.25"), "JPY": Decimal("160")})
    usd, jpy, eur = (rates.rate(c, JAN) for c in ("USD", "JPY", "EUR"))
    assert usd and jpy and eur
    assert convert_minor(12500, usd, eur) == Decimal(10000)  # 125.00 USD = 100.00 EUR
    assert convert_minor(10000, eur, jpy) == Decimal(16000)  # 100.00 EUR = 16000 JPY
    assert convert_minor(125, usd, jpy) == Decimal(160)
