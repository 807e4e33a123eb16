"""Test clock use cases. Advancing a clock drives the subscriptions of its customers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_livemode, current_tenant
from saas.subscriptions.services import advance_subscriptions
from saas.testclocks.errors import TestClockLivemodeError, TestClockTimeError
from saas.testclocks.models import TestClock
from saas.testclocks.queries import get_test_clock


def create_test_clock(session: Session, data: dict[str, Any], *, now: datetime) -> TestClock:
    if current_livemode(session):
        raise TestClockLivemodeError("use a test-mode key to create test clocks")
    clock = TestClock(
        id=new_id("clock"),
        livemode=False,
        name=data.get("name"),
        frozen_time=data["frozen_time"].astimezone(UTC),
        status="ready",
        created_at=now,
        updated_at=now,
    )
    session.add(clock)
    session.flush()
    return clock


def advance_test_clock(
    session: Session, test_clock_id: str, data: dict[str, Any], *, actor: str, now: datetime
) -> TestClock:
    """Move the clock forward and run, synchronously, everything that fell due for the
    subscriptions of its customers (each transition at its own instant, in order)."""
    clock = get_test_clock(session, test_clock_id)
    frozen_time: datetime = data["frozen_time"].astimezone(UTC)
    if frozen_time <= clock.frozen_time:
        raise TestClockTimeError(
            f"frozen_time must be after {clock.frozen_time.isoformat()}",
            errors={"frozen_time": ["must be later than the clock's current time"]},
        )
    clock.frozen_time = frozen_time
    clock.updated_at = now
    session.flush()
    advance_subscriptions(
        session, current_tenant(session), frozen_time, clock_id=clock.id, actor=actor
    )
    for hook in _ADVANCED_HOOKS:
        hook(session, current_tenant(session), clock.id, frozen_time, now)
    return clock


# Called in the advance's transaction after the subscriptions moved: billing registers the
# invoicing of what fell due here (billing.runs), so this layer imports nothing above it.
ClockAdvancedHook = Callable[[Session, str, str, datetime, datetime], None]
_ADVANCED_HOOKS: list[ClockAdvancedHook] = []


def on_clock_advanced(hook: ClockAdvancedHook) -> None:
    """Register ``hook(session, tenant_id, clock_id, frozen_time, now)`` (idempotent)."""
    if hook not in _ADVANCED_HOOKS:
        _ADVANCED_HOOKS.append(hook)
