from __future__ import annotations

from datetime import date

import pytest

from saas.catalog.currencies import format_minor, to_minor
from saas.subscriptions.mrr import monthly_amount
from saas.subscriptions.periods import Period
from saas.subscriptions.proration import (
    Item,
    LineKind,
    charge_period,
    charge_remaining,
    credit_unused,
    prorate_change,
    prorated,
    total,
)

JANUARY = Period(0, date(2026, 1, 1), date(2026, 2, 1))  # 31 days
FEBRUARY = Period(1, date(2026, 2, 1), date(2026, 3, 1))  # 28 days
STARTER = Item("price_starter", 1900, 1, per_seat=False, label="Starter")
PRO = Item("price_pro", 4900, 1, per_seat=False, label="Pro")


@pytest.mark.parametrize(
    ("amount", "days", "period_days", "expected"),
    [
        (1900, 21, 31, 1287),  # 1287.096…
        (4900, 21, 31, 3319),  # 3319.354…
        (1000, 1, 8, 125),  # 125 exactly
        (100, 1, 8, 13),  # 12.5 → 13 (half up)
        (100, 3, 8, 38),  # 37.5 → 38
        (300, 1, 200, 2),  # 1.5 → 2
        (100, 1, 200, 1),  # 0.5 → 1
        (99, 1, 200, 0),  # 0.495 → 0
        (4900, 31, 31, 4900),  # full period
        (4900, 0, 31, 0),
        (1_000_000_000_000, 1, 3, 333_333_333_333),
        (12000, 10, 365, 329),  # 328.767…
        (12000, 10, 366, 328),  # 327.868…
    ],
)
def test_prorated_rounds_half_up_to_minor_unit_when_fraction_is_inexact(
    amount: int, days: int, period_days: int, expected: int
) -> None:
    assert prorated(amount, days, period_days) == expected


@pytest.mark.parametrize(("days", "period_days"), [(-1, 31), (32, 31), (1, 0)])
def test_prorated_refuses_days_when_outside_the_period(days: int, period_days: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (the message names the numbers)
        prorated(100, days, period_days)


@pytest.mark.parametrize(
    ("old", "new", "period", "change_on", "expected"),
    [
        # upgrade on day 11 of January: 21 of 31 days remain
        (STARTER, PRO, JANUARY, date(2026, 1, 11), [-1287, 3319]),
        # downgrade: the credit is bigger than the charge
        (PRO, STARTER, JANUARY, date(2026, 1, 11), [-3319, 1287]),
        # on the first day: full credit, full charge
        (STARTER, PRO, JANUARY, date(2026, 1, 1), [-1900, 4900]),
        # on the last day: one day
        (STARTER, PRO, JANUARY, date(2026, 1, 31), [-61, 158]),  # 61.29…, 158.06…
        # February has 28 days: 14 remain = exactly half
        (STARTER, PRO, FEBRUARY, date(2026, 2, 15), [-950, 2450]),
        # seats: 2 → 5 at 10.00 per seat, 10 of 28 days
        (
            Item("price_seat", 1000, 2, per_seat=True),
            Item("price_seat", 1000, 5, per_seat=True),
            FEBRUARY,
            date(2026, 2, 19),
            [-714, 1786],  # 714.28…, 1785.71…
        ),
        # at the period end nothing remains
        (STARTER, PRO, JANUARY, date(2026, 2, 1), []),
        # from a free price only the charge is left
        (Item("price_free", 0, 1, per_seat=False), PRO, JANUARY, date(2026, 1, 11), [3319]),
    ],
    ids=["upgrade", "downgrade", "first-day", "last-day", "half", "seats", "at-end", "from-free"],
)
def test_prorate_change_credits_old_and_charges_new_when_changed_mid_period(
    old: Item, new: Item, period: Period, change_on: date, expected: list[int]
) -> None:
    lines = prorate_change(old, new, period, change_on)
    assert [line.amount for line in lines] == expected
    assert total(lines) == sum(expected)
    for line in lines:
        assert line.starts_on == change_on and line.ends_on == period.end_on
        assert line.kind is (LineKind.CREDIT if line.amount < 0 else LineKind.CHARGE)


def test_credit_refuses_day_when_outside_the_period() -> None:
    with pytest.raises(ValueError, match="outside"):
        credit_unused(STARTER, JANUARY, date(2026, 2, 2))


def test_lines_name_the_days_when_described() -> None:
    credit = credit_unused(STARTER, JANUARY, date(2026, 1, 11))
    charge = charge_remaining(PRO, JANUARY, date(2026, 1, 11))
    assert credit is not None and charge is not None
    assert credit.description == "Unused time on Starter × 1 (21/31 days)"
    assert charge.description == "Remaining time on Pro × 1 (21/31 days)"


def test_charge_period_keeps_a_zero_line_when_price_is_free() -> None:
    line = charge_period(Item("price_free", 0, 1, per_seat=False), JANUARY)
    assert line.kind is LineKind.RECURRING and line.amount == 0 and line.period_days == 31


def test_flat_price_ignores_quantity_when_amount_is_computed() -> None:
    assert Item("p", 1900, 3, per_seat=False).amount == 1900
    assert Item("p", 1900, 3, per_seat=True).amount == 5700


@pytest.mark.parametrize(
    ("status", "unit_amount", "quantity", "per_seat", "interval", "expected"),
    [
        ("active", 4900, 1, False, "month", 4900),
        ("past_due", 4900, 1, False, "month", 4900),
        ("active", 1000, 3, True, "month", 3000),
        ("active", 1000, 3, False, "month", 1000),
        ("active", 12000, 1, False, "quarter", 4000),
        ("active", 10000, 1, False, "quarter", 3333),  # 3333.33…
        ("active", 10001, 2, True, "quarter", 6667),  # 6667.33…
        ("active", 10000, 1, False, "year", 833),  # 833.33…
        ("active", 1000, 1, False, "year", 83),  # 83.33…
        ("active", 1002, 1, False, "year", 84),  # 83.5 → 84
        ("trialing", 4900, 1, False, "month", 0),
        ("paused", 4900, 1, False, "month", 0),
        ("canceled", 4900, 1, False, "month", 0),
        ("incomplete", 4900, 1, False, "month", 0),
    ],
)
def test_monthly_amount_normalises_interval_when_state_pays(
    status: str, unit_amount: int, quantity: int, per_seat: bool, interval: str, expected: int
) -> None:
    assert (
        monthly_amount(
            status,
            unit_amount=unit_amount,
            quantity=quantity,
            per_seat=per_seat,
            interval=interval,
        )
        == expected
    )


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [(1900, "EUR", "19.00 EUR"), (5, "EUR", "0.05 EUR"), (1900, "JPY", "1900 JPY")],
)
def test_format_minor_uses_currency_exponent_when_rendering(
    amount: int, currency: str, expected: str
) -> None:
    assert format_minor(amount, currency) == expected


def test_to_minor_rounds_ties_away_from_zero_when_negative() -> None:
    from decimal import Decimal

    assert to_minor(Decimal("-0.5")) == -1
    assert to_minor(Decimal("-1.49")) == -1
    assert to_minor(Decimal("2.5")) == 3
