"""Deadlines of data subject requests (Art. 12(3) GDPR, Regulation 1182/71) and their states."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from compliance.deadlines import (
    TRANSITIONS,
    RequestAction,
    RequestState,
    add_months,
    due_at,
    extended_due_at,
    is_due_soon,
    next_state,
)
from compliance.errors import (
    ExtensionTooLateError,
    ExtensionTooLongError,
    InvalidRequestTransitionError,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 15), 1, date(2026, 2, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),  # no 31 February: the month's last day
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 31), 1, date(2027, 1, 31)),
        (date(2026, 3, 31), 2, date(2026, 5, 31)),
    ],
)
def test_add_months_keeps_the_date_or_takes_the_last_day_when_missing(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


def test_deadline_ends_with_the_same_local_date_a_month_later_when_received() -> None:
    # received 15 January 10:00 Berlin: the period ends with the expiry of 15 February
    received = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    assert due_at(received, BERLIN, 1) == datetime(2026, 2, 15, 23, 0, tzinfo=UTC)


def test_deadline_uses_the_tenants_local_day_when_received_near_midnight() -> None:
    # 31 January 23:30 UTC is already 1 February in Berlin
    received = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    assert due_at(received, BERLIN, 1) == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)


def test_deadline_crosses_daylight_saving_time_when_the_month_does() -> None:
    received = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert due_at(received, BERLIN, 1) == datetime(2026, 4, 10, 22, 0, tzinfo=UTC)  # CEST


def test_naive_receipt_time_is_refused_when_computing_a_deadline() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_at(datetime(2026, 1, 1), BERLIN, 1)  # noqa: DTZ001


RECEIVED = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("so_far", "months", "expected_end_day"),
    [(0, 1, date(2026, 3, 15)), (0, 2, date(2026, 4, 15)), (1, 1, date(2026, 4, 15))],
)
def test_extension_moves_the_deadline_by_whole_months_when_within_three(
    so_far: int, months: int, expected_end_day: date
) -> None:
    new = extended_due_at(
        RECEIVED, BERLIN, extended_so_far=so_far, months=months, now=RECEIVED + timedelta(days=3)
    )
    assert new.astimezone(BERLIN).date() == expected_end_day + timedelta(days=1)


@pytest.mark.parametrize(("so_far", "months"), [(0, 3), (1, 2), (2, 1), (0, 0)])
def test_extension_is_refused_when_it_would_exceed_two_further_months(
    so_far: int, months: int
) -> None:
    with pytest.raises(ExtensionTooLongError):
        extended_due_at(RECEIVED, BERLIN, extended_so_far=so_far, months=months, now=RECEIVED)


def test_extension_is_refused_when_the_first_month_has_passed() -> None:
    late = due_at(RECEIVED, BERLIN, 1)
    with pytest.raises(ExtensionTooLateError):
        extended_due_at(RECEIVED, BERLIN, extended_so_far=0, months=1, now=late)


def test_due_soon_is_true_only_inside_the_window_when_checked() -> None:
    due = datetime(2026, 2, 15, 23, 0, tzinfo=UTC)
    week = timedelta(days=7)
    assert is_due_soon(due, due - timedelta(days=6), within=week)
    assert not is_due_soon(due, due - timedelta(days=8), within=week)
    assert not is_due_soon(due, due, within=week)  # overdue, not due soon


ALL_PAIRS = [(s, a) for s in RequestState for a in RequestAction]


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=[f"{s}-{a}" for s, a in ALL_PAIRS])
def test_transition_follows_the_table_when_any_action_meets_any_state(
    state: RequestState, action: RequestAction
) -> None:
    if (state, action) in TRANSITIONS:
        assert next_state(state, action) == TRANSITIONS[(state, action)]
    else:
        with pytest.raises(InvalidRequestTransitionError):
            next_state(state, action)


def test_finished_requests_accept_nothing_when_completed_or_rejected() -> None:
    for state in (RequestState.COMPLETED, RequestState.REJECTED):
        assert not [a for a in RequestAction if (state, a) in TRANSITIONS]
