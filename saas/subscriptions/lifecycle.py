"""The subscription state machine as data: `TRANSITIONS[(state, event)] -> new state`.

A pair missing from the table is forbidden, and the service refuses it with 409
`invalid_subscription_transition` before changing anything. Conditions that are not about the
state (an uncancel needs a scheduled cancellation, a change needs an active price) are checked
by the service; this module knows states and events only. Pure: no database, no clock.

States (as Stripe's, minus `incomplete_expired` and `unpaid`, which billing may add):
- `trialing`: free until the trial ends; then converts, cancels or pauses (plan setting).
- `active`: paying; periods renew.
- `past_due`: a payment failed (billing reports it); periods still renew while dunning runs.
- `paused`: no service and nothing owed; no open period. `resume` starts a period again.
- `canceled`: final. A new subscription of the same customer is a `reactivation`.
- `incomplete`: created without a trial and without a payment method; nothing started yet.
  Attaching a payment method (or billing reporting the first payment) activates it.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    PAUSED = "paused"
    CANCELED = "canceled"
    INCOMPLETE = "incomplete"


class Event(StrEnum):
    # started by the API (or a later billing step)
    CHANGE = "change"  # price and/or quantity now, with proration
    SCHEDULE_CHANGE = "schedule_change"  # price and/or quantity at the period end
    CANCEL = "cancel"  # now
    SCHEDULE_CANCEL = "schedule_cancel"  # at the period end
    UNCANCEL = "uncancel"  # take a scheduled cancellation back
    PAUSE = "pause"
    RESUME = "resume"
    UPDATE_PAYMENT_METHOD = "update_payment_method"
    ACTIVATE = "activate"  # an incomplete subscription got its payment method
    PAYMENT_FAILED = "payment_failed"  # billing
    PAYMENT_SUCCEEDED = "payment_succeeded"  # billing
    # brought by time (`services.advance_subscriptions`)
    TRIAL_END_CONVERT = "trial_end_convert"
    TRIAL_END_CANCEL = "trial_end_cancel"
    TRIAL_END_PAUSE = "trial_end_pause"
    APPLY_SCHEDULED_CHANGE = "apply_scheduled_change"
    PERIOD_END_CANCEL = "period_end_cancel"
    RENEW = "renew"


# History rows of a subscription's first moment use these events (no previous state).
CREATE = "create"
REACTIVATION = "reactivation"

T, A, PD, P, C, I = (  # noqa: E741  (short names keep the table readable)
    State.TRIALING,
    State.ACTIVE,
    State.PAST_DUE,
    State.PAUSED,
    State.CANCELED,
    State.INCOMPLETE,
)
E = Event

TRANSITIONS: dict[tuple[State, Event], State] = {
    # trialing
    (T, E.CHANGE): T,
    (T, E.SCHEDULE_CHANGE): T,
    (T, E.APPLY_SCHEDULED_CHANGE): T,
    (T, E.CANCEL): C,
    (T, E.SCHEDULE_CANCEL): T,
    (T, E.UNCANCEL): T,
    (T, E.UPDATE_PAYMENT_METHOD): T,
    (T, E.TRIAL_END_CONVERT): A,
    (T, E.TRIAL_END_CANCEL): C,
    (T, E.TRIAL_END_PAUSE): P,
    (T, E.PERIOD_END_CANCEL): C,
    # active
    (A, E.CHANGE): A,
    (A, E.SCHEDULE_CHANGE): A,
    (A, E.APPLY_SCHEDULED_CHANGE): A,
    (A, E.CANCEL): C,
    (A, E.SCHEDULE_CANCEL): A,
    (A, E.UNCANCEL): A,
    (A, E.PAUSE): P,
    (A, E.UPDATE_PAYMENT_METHOD): A,
    (A, E.PAYMENT_FAILED): PD,
    (A, E.RENEW): A,
    (A, E.PERIOD_END_CANCEL): C,
    # past_due
    (PD, E.CHANGE): PD,
    (PD, E.SCHEDULE_CHANGE): PD,
    (PD, E.APPLY_SCHEDULED_CHANGE): PD,
    (PD, E.CANCEL): C,
    (PD, E.SCHEDULE_CANCEL): PD,
    (PD, E.UNCANCEL): PD,
    (PD, E.PAUSE): P,
    (PD, E.UPDATE_PAYMENT_METHOD): PD,
    (PD, E.PAYMENT_SUCCEEDED): A,
    (PD, E.RENEW): PD,
    (PD, E.PERIOD_END_CANCEL): C,
    # paused
    (P, E.RESUME): A,
    (P, E.CANCEL): C,
    (P, E.UPDATE_PAYMENT_METHOD): P,
    # incomplete
    (I, E.ACTIVATE): A,
    (I, E.PAYMENT_SUCCEEDED): A,
    (I, E.CANCEL): C,
    (I, E.UPDATE_PAYMENT_METHOD): I,
    # canceled: final, nothing leaves it
}

# States in which the subscription has exactly one open period (and none in the others).
HAS_OPEN_PERIOD = frozenset({T, A, PD})
# States whose price counts towards monthly recurring revenue.
COUNTS_FOR_MRR = frozenset({A, PD})
# States in which time moves the subscription (trial ends, renewals, period-end actions).
ADVANCES_WITH_TIME = frozenset({T, A, PD})


class TransitionNotAllowed(ValueError):  # noqa: N818  (reads as what it is: a refusal)
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"a {state} subscription cannot {event}")
        self.state = state
        self.event = event


def next_state(state: State | str, event: Event | str) -> State:
    """The state after `event`, or `TransitionNotAllowed` when the table has no such pair."""
    key = (State(state), Event(event))
    try:
        return TRANSITIONS[key]
    except KeyError:
        raise TransitionNotAllowed(*key) from None


def is_allowed(state: State | str, event: Event | str) -> bool:
    return (State(state), Event(event)) in TRANSITIONS


def initial_state(*, trial: bool, has_payment_method: bool) -> State:
    """A new subscription: trialing with a trial, else active when it can be paid for."""
    if trial:
        return State.TRIALING
    return State.ACTIVE if has_payment_method else State.INCOMPLETE
