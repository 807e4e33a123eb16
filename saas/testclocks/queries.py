"""Reads of test clocks that customers and subscriptions need (they sit above this module)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.kernel.pagination import paginate
from saas.testclocks.errors import TestClockNotFoundError
from saas.testclocks.models import TestClock


def get_test_clock(session: Session, test_clock_id: str) -> TestClock:
    clock = session.scalars(sa.select(TestClock).where(TestClock.id == test_clock_id)).first()
    if clock is None:
        raise TestClockNotFoundError(f"no test clock {test_clock_id}")
    return clock


def clock_now(session: Session, test_clock_id: str | None, now: datetime) -> datetime:
    """`now` for objects on a test clock: the clock's frozen time; otherwise `now` as given."""
    if test_clock_id is None:
        return now
    return get_test_clock(session, test_clock_id).frozen_time


def list_test_clocks(
    session: Session, *, limit: int, starting_after: str | None
) -> tuple[Sequence[TestClock], bool]:
    return paginate(
        session, sa.select(TestClock), TestClock.id, limit=limit, starting_after=starting_after
    )
