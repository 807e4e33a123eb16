from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from saas.subscriptions.periods import (
    Period,
    add_months,
    boundary,
    local_date,
    period_at,
    period_containing,
    start_of_day,
    trial_end_on,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2026, 1, 31), 2, date(2026, 3, 31)),  # back to the anchor day
        (date(2026, 1, 31), 3, date(2026, 4, 30)),
        (date(2026, 1, 30), 1, date(2026, 2, 28)),
        (date(2026, 1, 29), 1, date(2026, 2, 28)),
        (date(2026, 1, 28), 1, date(2026, 2, 28)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2028, 2, 29), 48, date(2032, 2, 29)),
        (date(2026, 5, 31), 0, date(2026, 5, 31)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
    ],
)
def test_add_months_clamps_to_month_end_when_day_is_missing(
    anchor: date, months: int, expected: date
) -> None:
    assert add_months(anchor, months) == expected


@pytest.mark.parametrize(
    ("anchor", "interval", "boundaries"),
    [
        (
            "2026-01-31",
            "month",
            "2026-01-31 2026-02-28 2026-03-31 2026-04-30 2026-05-31 2026-06-30",
        ),
        ("2026-11-30", "quarter", "2026-11-30 2027-02-28 2027-05-30 2027-08-30"),
        ("2028-02-29", "year", "2028-02-29 2029-02-28 2030-02-28 2031-02-28 2032-02-29"),
    ],
)
def test_boundaries_are_computed_from_the_anchor_when_months_are_short(
    anchor: str, interval: str, boundaries: str
) -> None:
    expected = [date.fromisoformat(day) for day in boundaries.split()]
    got = [boundary(date.fromisoformat(anchor), interval, i) for i in range(len(expected))]
    assert got == expected


def _p(index: int, start: str, end: str) -> Period:
    return Period(index, date.fromisoformat(start), date.fromisoformat(end))


@pytest.mark.parametrize(
    ("anchor", "interval", "day", "expected"),
    [
        ("2026-01-31", "month", "2026-01-31", _p(0, "2026-01-31", "2026-02-28")),
        ("2026-01-31", "month", "2026-02-27", _p(0, "2026-01-31", "2026-02-28")),
        ("2026-01-31", "month", "2026-02-28", _p(1, "2026-02-28", "2026-03-31")),
        ("2026-01-31", "month", "2026-03-30", _p(1, "2026-02-28", "2026-03-31")),
        ("2026-01-31", "month", "2026-03-31", _p(2, "2026-03-31", "2026-04-30")),
        ("2026-01-15", "month", "2026-01-15", _p(0, "2026-01-15", "2026-02-15")),
        ("2026-01-15", "month", "2026-02-14", _p(0, "2026-01-15", "2026-02-15")),
        ("2026-01-15", "quarter", "2026-07-14", _p(1, "2026-04-15", "2026-07-15")),
        ("2026-01-15", "year", "2029-01-15", _p(3, "2029-01-15", "2030-01-15")),
        ("2026-08-31", "quarter", "2026-11-30", _p(1, "2026-11-30", "2027-02-28")),
        ("2026-08-31", "quarter", "2027-02-27", _p(1, "2026-11-30", "2027-02-28")),
        ("2026-08-31", "quarter", "2027-02-28", _p(2, "2027-02-28", "2027-05-31")),
    ],
)
def test_period_containing_finds_the_anchor_period_when_given_a_day(
    anchor: str, interval: str, day: str, expected: Period
) -> None:
    found = period_containing(date.fromisoformat(anchor), interval, date.fromisoformat(day))
    assert found == expected
    assert found.contains(date.fromisoformat(day))
    assert found == period_at(date.fromisoformat(anchor), interval, found.index)


@pytest.mark.parametrize(
    ("anchor", "interval", "index", "days"),
    [
        (date(2026, 1, 1), "month", 0, 31),
        (date(2026, 1, 31), "month", 1, 31),  # 28 Feb → 31 Mar
        (date(2026, 1, 31), "month", 0, 28),
        (date(2028, 1, 31), "month", 0, 29),
        (date(2026, 1, 1), "quarter", 0, 90),
        (date(2026, 1, 1), "year", 0, 365),
        (date(2028, 1, 1), "year", 0, 366),
    ],
)
def test_period_has_calendar_length_when_counted_in_days(
    anchor: date, interval: str, index: int, days: int
) -> None:
    assert period_at(anchor, interval, index).days == days


def test_period_containing_refuses_day_when_before_anchor() -> None:
    with pytest.raises(ValueError, match="before the anchor"):
        period_containing(date(2026, 1, 10), "month", date(2026, 1, 9))


def test_period_at_refuses_index_when_negative() -> None:
    with pytest.raises(ValueError, match="index"):
        period_at(date(2026, 1, 10), "month", -1)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 1, 1), 14, date(2026, 1, 15)),
        (date(2026, 2, 20), 14, date(2026, 3, 6)),
        (date(2028, 2, 20), 14, date(2028, 3, 5)),
        (date(2026, 1, 1), 0, date(2026, 1, 1)),
    ],
)
def test_trial_ends_after_n_full_days_when_started(start: date, days: int, expected: date) -> None:
    assert trial_end_on(start, days) == expected


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2026, 1, 31), datetime(2026, 1, 30, 23, 0, tzinfo=UTC)),  # CET
        (date(2026, 2, 28), datetime(2026, 2, 27, 23, 0, tzinfo=UTC)),
        (date(2026, 3, 29), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),  # DST starts at 02:00
        (date(2026, 3, 31), datetime(2026, 3, 30, 22, 0, tzinfo=UTC)),  # CEST
        (date(2026, 10, 25), datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),  # DST ends at 03:00
        (date(2026, 10, 26), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
    ],
)
def test_start_of_day_is_local_midnight_when_zone_is_berlin(
    day: date, expected_utc: datetime
) -> None:
    assert start_of_day(day, BERLIN) == expected_utc
    assert local_date(expected_utc, BERLIN) == day


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        (datetime(2026, 1, 30, 23, 30, tzinfo=UTC), "Europe/Berlin", date(2026, 1, 31)),
        (datetime(2026, 1, 30, 22, 59, tzinfo=UTC), "Europe/Berlin", date(2026, 1, 30)),
        (datetime(2026, 1, 31, 4, 0, tzinfo=UTC), "America/New_York", date(2026, 1, 30)),
        (datetime(2026, 1, 31, 11, 0, tzinfo=UTC), "Pacific/Auckland", date(2026, 2, 1)),
    ],
)
def test_local_date_is_the_zones_calendar_day_when_utc_differs(
    instant: datetime, zone: str, expected: date
) -> None:
    assert local_date(instant, ZoneInfo(zone)) == expected


def test_local_date_refuses_naive_datetime_when_given_one() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2026, 1, 1), BERLIN)  # noqa: DTZ001  (naive on purpose)
