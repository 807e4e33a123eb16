"""Retry back-off: exponential, capped, ending three days after the first attempt.

Attempt n (1-based) that failed is followed by attempt n+1 after DELAYS[n-1]. The sum of
the delays is just under 72 hours, so the last attempt falls inside the three-day window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=20),
)
WINDOW = timedelta(days=3)
DISABLE_AFTER = timedelta(days=5)  # an endpoint failing without any success this long is off


def next_attempt(
    failed_attempts: int, first_attempt_at: datetime, now: datetime
) -> datetime | None:
    """When to try again after `failed_attempts` failures, or None to give up."""
    if failed_attempts > len(DELAYS):
        return None
    at = now + DELAYS[failed_attempts - 1]
    if at - first_attempt_at > WINDOW:
        return None
    return at
