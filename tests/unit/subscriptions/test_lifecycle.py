"""The whole transition table, both ways: every (state, event) pair is either listed below
with its outcome or must be refused. The expectation is written out independently of
`lifecycle.TRANSITIONS`, so a change to the table has to be made twice, on purpose."""

from __future__ import annotations

import itertools

import pytest

from saas.subscriptions.lifecycle import (
    TRANSITIONS,
    Event,
    State,
    TransitionNotAllowed,
    initial_state,
    is_allowed,
    next_state,
)

# state -> {event: new state}; anything not listed is forbidden
EXPECTED: dict[str, dict[str, str]] = {
    "trialing": {
        "change": "trialing",
        "schedule_change": "trialing",
        "apply_scheduled_change": "trialing",
        "cancel": "canceled",
        "schedule_cancel": "trialing",
        "uncancel": "trialing",
        "update_payment_method": "trialing",
        "trial_end_convert": "active",
        "trial_end_cancel": "canceled",
        "trial_end_pause": "paused",
        "period_end_cancel": "canceled",
    },
    "active": {
        "change": "active",
        "schedule_change": "active",
        "apply_scheduled_change": "active",
        "cancel": "canceled",
        "schedule_cancel": "active",
        "uncancel": "active",
        "pause": "paused",
        "update_payment_method": "active",
        "payment_failed": "past_due",
        "renew": "active",
        "period_end_cancel": "canceled",
    },
    "past_due": {
        "change": "past_due",
        "schedule_change": "past_due",
        "apply_scheduled_change": "past_due",
        "cancel": "canceled",
        "schedule_cancel": "past_due",
        "uncancel": "past_due",
        "pause": "paused",
        "update_payment_method": "past_due",
        "payment_succeeded": "active",
        "renew": "past_due",
        "period_end_cancel": "canceled",
    },
    "paused": {"resume": "active", "cancel": "canceled", "update_payment_method": "paused"},
    "incomplete": {
        "activate": "active",
        "payment_succeeded": "active",
        "cancel": "canceled",
        "update_payment_method": "incomplete",
    },
    "canceled": {},
}

ALL_PAIRS = list(itertools.product(list(State), list(Event)))


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=[f"{s}-{e}" for s, e in ALL_PAIRS])
def test_transition_follows_table_when_pair_is_allowed_or_forbidden(
    state: State, event: Event
) -> None:
    expected = EXPECTED[state.value].get(event.value)
    if expected is None:
        assert not is_allowed(state, event)
        with pytest.raises(TransitionNotAllowed) as info:
            next_state(state, event)
        assert info.value.state == state and info.value.event == event
    else:
        assert is_allowed(state, event)
        assert next_state(state, event) == State(expected)


def test_table_has_no_pair_beyond_expectation_when_compared() -> None:
    listed = {(s.value, e.value) for s, e in TRANSITIONS}
    expected = {(s, e) for s, events in EXPECTED.items() for e in events}
    assert listed == expected


def test_canceled_is_final_when_any_event_arrives() -> None:
    assert not any(is_allowed(State.CANCELED, e) for e in Event)


def test_string_values_are_accepted_when_read_from_the_database() -> None:
    assert next_state("active", "pause") is State.PAUSED


def test_unknown_event_is_a_value_error_when_not_in_the_vocabulary() -> None:
    with pytest.raises(ValueError, match="explode"):
        next_state("active", "explode")


@pytest.mark.parametrize(
    ("trial", "has_payment_method", "expected"),
    [
        (True, True, State.TRIALING),
        (True, False, State.TRIALING),
        (False, True, State.ACTIVE),
        (False, False, State.INCOMPLETE),
    ],
)
def test_initial_state_depends_on_trial_and_payment_method_when_created(
    trial: bool, has_payment_method: bool, expected: State
) -> None:
    assert initial_state(trial=trial, has_payment_method=has_payment_method) is expected
