"""The retry schedule of a dunning case, as pure arithmetic (no database, no clock).

Retries fall a whole number of days after the *first* failure (Stripe's "smart retries" count
the same way), at the same local wall-clock time in the tenant's zone: "3 days later" stays
10:00 across a daylight-saving change instead of drifting to 09:00 or 11:00. A local time that
does not exist on the retry day (the spring-forward gap) moves forward by the gap, as
`zoneinfo` resolves it with `fold=0`.

Rules for a tenant's schedule (`validate_retry_days`): 1 to 10 retries, each 1 to 60 days after
the first failure, strictly increasing, so every retry has its own day and a case ends within
two months.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

DEFAULT_RETRY_DAYS: tuple[int, ...] = (1, 3, 5, 7)
MAX_RETRIES = 10
MAX_DAY = 60

CANCEL = "cancel"
MARK_UNCOLLECTIBLE = "mark_uncollectible"
FINAL_ACTIONS = (CANCEL, MARK_UNCOLLECTIBLE)
DEFAULT_FINAL_ACTION = CANCEL


def validate_retry_days(days: Sequence[int]) -> list[str]:
    """The problems with a schedule, as messages; an empty list means it is valid."""
    problems: list[str] = []
    if not 1 <= len(days) <= MAX_RETRIES:
        problems.append(f"between 1 and {MAX_RETRIES} retries")
    if any(isinstance(d, bool) or not isinstance(d, int) for d in days):
        return [*problems, "whole numbers of days"]
    if any(not 1 <= d <= MAX_DAY for d in days):
        problems.append(f"each between 1 and {MAX_DAY} days after the first failure")
    if any(b <= a for a, b in pairwise(days)):
        problems.append("strictly increasing")
    return problems


def retry_at(first_failure_at: datetime, day: int, zone: ZoneInfo) -> datetime:
    """The instant `day` days after `first_failure_at` at the same local time in `zone`."""
    if first_failure_at.tzinfo is None:
        raise ValueError("first_failure_at must be timezone-aware")
    local = first_failure_at.astimezone(zone)
    wall = local.replace(tzinfo=None) + timedelta(days=day)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def retry_times(first_failure_at: datetime, days: Sequence[int], zone: ZoneInfo) -> list[datetime]:
    """Every retry of a case, in order (the schedule must be valid)."""
    problems = validate_retry_days(days)
    if problems:
        raise ValueError(f"invalid retry schedule {list(days)}: {'; '.join(problems)}")
    return [retry_at(first_failure_at, d, zone) for d in days]


def is_due(scheduled_at: datetime, now: datetime) -> bool:
    return scheduled_at <= now


def unavailable_backoff(deferrals: int) -> timedelta:
    """How long to wait before trying a retry again whose payment provider was unreachable:
    15 minutes, doubling, at most 6 hours (the retry itself stays the same retry)."""
    return min(timedelta(minutes=15) * (1 << min(max(deferrals, 0), 16)), timedelta(hours=6))
