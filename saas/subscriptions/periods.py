"""Billing periods: calendar arithmetic in the tenant's time zone. Pure: no database, no clock.

Rules:
- A subscription has an anchor date (`billing_anchor_on`): the day its paid service started
  (the trial's end day for a trial). Period n runs from `anchor + n × interval` (inclusive) to
  `anchor + (n + 1) × interval` (exclusive), with intervals of 1, 3 or 12 months.
- Every boundary is computed from the anchor, never from the previous boundary: a month
  without the anchor's day ends on its last day, and the next month returns to the anchor day
  (31 Jan → 28/29 Feb → 31 Mar → 30 Apr → 31 May). Stepping from the previous end would drift
  to the 28th for good.
- Periods are cut at local midnight in the tenant's zone (`start_of_day`), so a Berlin
  subscription renews at 00:00 Berlin time whether that is 23:00 or 22:00 UTC. Days are the
  unit of proration; a period's length in days is what its calendar says (28 to 366).
- A local midnight that does not exist (a zone that moves clocks at 00:00) resolves as
  `zoneinfo` does (PEP 495, fold=0), to the first instant of that day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Interval(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


MONTHS_PER_INTERVAL: dict[str, int] = {
    Interval.MONTH: 1,
    Interval.QUARTER: 3,
    Interval.YEAR: 12,
}


@dataclass(frozen=True)
class Period:
    """Days `start_on` (inclusive) to `end_on` (exclusive); `index` counts from the anchor."""

    index: int
    start_on: date
    end_on: date

    @property
    def days(self) -> int:
        return (self.end_on - self.start_on).days

    def contains(self, day: date) -> bool:
        return self.start_on <= day < self.end_on


def add_months(anchor: date, months: int) -> date:
    """`anchor` moved by whole months, the day clamped to the target month's length."""
    total = anchor.year * 12 + (anchor.month - 1) + months
    year, month0 = divmod(total, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(anchor.day, last_day))


def boundary(anchor_on: date, interval: str, index: int) -> date:
    """The start of period `index` (and end of period `index - 1`)."""
    return add_months(anchor_on, index * MONTHS_PER_INTERVAL[interval])


def period_at(anchor_on: date, interval: str, index: int) -> Period:
    if index < 0:
        raise ValueError("periods start at the anchor: index must be >= 0")
    return Period(
        index, boundary(anchor_on, interval, index), boundary(anchor_on, interval, index + 1)
    )


def period_containing(anchor_on: date, interval: str, day: date) -> Period:
    """The period of the anchor's series that contains `day` (not before the anchor)."""
    if day < anchor_on:
        raise ValueError(f"{day} is before the anchor {anchor_on}")
    step = MONTHS_PER_INTERVAL[interval]
    months = (day.year - anchor_on.year) * 12 + (day.month - anchor_on.month)
    index = max(months // step, 0)
    # the estimate is off by at most one in either direction (clamped month ends)
    while index > 0 and boundary(anchor_on, interval, index) > day:
        index -= 1
    while boundary(anchor_on, interval, index + 1) <= day:
        index += 1
    return period_at(anchor_on, interval, index)


def trial_end_on(start_on: date, trial_days: int) -> date:
    """A trial of n days starting on day 0 ends at the start of day n (n full days of trial)."""
    return start_on + timedelta(days=trial_days)


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar day of `instant` in `zone`."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no calendar day in a zone")
    return instant.astimezone(zone).date()


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight of `day` in `zone`, as an aware UTC instant."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
