"""Subscription use cases. Callers pass the session (scoped to a tenant), the actor and `now`.

Rules every use case follows:
- Time: `now` comes from the caller; for a customer on a test clock it is replaced by the
  clock's frozen time (`saas.testclocks.queries.clock_now`). Before anything else, the
  subscription is brought up to `now` (`_advance_one`): a renewal that fell due a minute ago and
  was not yet run by the worker is applied first, as `system`, so a change always starts from
  the current period.
- Locking: the first write to a subscription in a use case is an UPDATE of its row carrying the
  optimistic-lock `version` (`_claim`); a concurrent change that committed in between makes it
  match no row, and the use case fails with 409 `subscription_conflict` before anything else
  is written. After the claim, PostgreSQL holds the row lock (SQLite the database write lock)
  until commit, so the history `seq` cannot collide.
- Checks before changes: the lifecycle table (`lifecycle.next_state`) and every input check run
  before the first mutation; a refused request changes nothing.
- What is owed goes into `subscription_charges` (recurring charges in advance, proration
  lines); every change appends one `subscription_history` row. Nothing here imports billing.
- Days are the unit: periods start and end at local midnight of the tenant's zone, and the
  day of a change belongs to the new terms (see `periods` and `proration`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified, set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from saas.catalog.models import Plan, Price
from saas.catalog.services import get_plan, get_price, get_sellable_price, mark_price_subscribed
from saas.customers.services import get_customer
from saas.events.services import insert_event
from saas.kernel import tenancy
from saas.kernel.db import table_of
from saas.kernel.direct import DirectWrite
from saas.kernel.errors import TenantContextMissingError, ValidationFailedError
from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_tenant
from saas.subscriptions.errors import (
    CancellationScheduledError,
    CurrencyMismatchError,
    EmptyChangeError,
    InvalidTransitionError,
    NotScheduledToCancelError,
    QuantityNotAllowedError,
    SubscriptionConflictError,
    SubscriptionNotFoundError,
)
from saas.subscriptions.lifecycle import (
    ADVANCES_WITH_TIME,
    CREATE,
    REACTIVATION,
    Event,
    State,
    TransitionNotAllowed,
    initial_state,
    is_allowed,
    next_state,
)
from saas.subscriptions.models import (
    Subscription,
    SubscriptionCharge,
    SubscriptionHistory,
    SubscriptionPeriod,
)
from saas.subscriptions.mrr import monthly_amount
from saas.subscriptions.periods import (
    Period,
    local_date,
    period_at,
    period_containing,
    start_of_day,
    trial_end_on,
)
from saas.subscriptions.proration import (
    Item,
    ProrationLine,
    charge_period,
    charge_remaining,
    credit_unused,
    prorate_change,
    total,
)
from saas.tenants.models import Tenant
from saas.testclocks.queries import clock_now

SYSTEM_ACTOR = "system"
IMMEDIATE = "immediate"
PERIOD_END = "period_end"
PRORATION_MODES = (IMMEDIATE, PERIOD_END)
_IN_SERVICE = frozenset({State.ACTIVE, State.PAST_DUE})


@dataclass
class _Ctx:
    session: Session
    zone: ZoneInfo
    now: datetime
    actor: str
    claimed: set[str] = field(default_factory=set)
    # prices and plans by id, read once per use case (or batch): one change used to read the
    # same price four times and its plan twice. Shared with `as_system`, like `claimed`.
    catalog: dict[str, Price | Plan] = field(default_factory=dict)
    # the open period's id (None: none) by subscription id, where this use case knows it: read
    # with the subscription, then kept up to date by `_open_period` and `_close_period`, so
    # the period is not looked up again. Absent: unknown, ask the database. Shared as well.
    open_periods: dict[str, str | None] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return local_date(self.now, self.zone)

    def as_system(self) -> _Ctx:
        return dataclasses.replace(self, actor=SYSTEM_ACTOR)  # shares `claimed`


@dataclass(frozen=True)
class _Terms:
    status: str
    price: Price
    quantity: int

    @property
    def mrr(self) -> int:
        return monthly_amount(
            self.status,
            unit_amount=self.price.unit_amount,
            quantity=self.quantity,
            per_seat=self.price.per_seat,
            interval=self.price.billing_interval,
        )


@dataclass(frozen=True)
class ChangePreview:
    """What a change would do: the proration lines it would record and when it takes effect."""

    subscription_id: str
    proration: str
    currency: str
    effective_at: datetime
    old_price_id: str
    new_price_id: str
    old_quantity: int
    new_quantity: int
    lines: list[ProrationLine]

    @property
    def total(self) -> int:
        return total(self.lines)


@dataclass(frozen=True)
class _ChangePlan:
    proration: str
    old_price: Price
    new_price: Price
    new_quantity: int
    lines: list[ProrationLine]
    effective_at: datetime
    new_billing: Period | None  # set when an immediate change moves to another interval
    clears_schedule: bool  # a period-end change back to the current terms


# --- reads --------------------------------------------------------------------------------


def get_subscription(session: Session, subscription_id: str) -> Subscription:
    sub = session.scalars(sa.select(Subscription).where(Subscription.id == subscription_id)).first()
    if sub is None:
        raise SubscriptionNotFoundError(f"no subscription {subscription_id}")
    return sub


# --- use cases ----------------------------------------------------------------------------


def create_subscription(
    session: Session, data: dict[str, Any], *, actor: str, now: datetime
) -> Subscription:
    """Start a customer on a price: trialing (trial days from the plan unless overridden),
    active (with a payment method; the first period is charged) or incomplete (without)."""
    customer = get_customer(session, data["customer_id"])
    ctx = _context(session, now=now, actor=actor, test_clock_id=customer.test_clock_id)
    price, plan, _ = get_sellable_price(session, data["price_id"])
    quantity = data.get("quantity", 1)
    _check_quantity(price, quantity)
    trial_days = data.get("trial_days")
    if trial_days is None:
        trial_days = plan.trial_days
    has_payment_method = bool(data.get("has_payment_method", False))
    status = initial_state(trial=trial_days > 0, has_payment_method=has_payment_method)
    event = REACTIVATION if _returns_after_cancellation(session, customer.id) else CREATE
    today = ctx.today
    sub = Subscription(
        id=new_id("sub"),
        livemode=customer.livemode,
        customer_id=customer.id,
        price_id=price.id,
        quantity=quantity,
        currency=price.currency,
        status=status.value,
        has_payment_method=has_payment_method,
        test_clock_id=customer.test_clock_id,
        started_at=ctx.now,
        cancel_at_period_end=False,
        last_history_seq=0,
        last_period_seq=0,
        metadata_=data.get("metadata", {}),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(sub)
    session.flush()  # the row exists before its periods, charges and history point at it
    if status == State.TRIALING:
        end_on = trial_end_on(today, trial_days)
        sub.trial_start_at = start_of_day(today, ctx.zone)
        sub.trial_end_at = start_of_day(end_on, ctx.zone)
        sub.billing_anchor_on = end_on  # paid service starts when the trial ends
        _open_period(ctx, sub, "trial", today, end_on)
        _set_billing_period(ctx, sub, Period(0, today, end_on))
    elif status == State.ACTIVE:
        _start_service(ctx, sub, price, on=today, reason=event, anchor_on=today)
    mark_price_subscribed(price, now=ctx.now)
    _sync_next_action(sub)
    _record(ctx, sub, event, None, detail={"trial_days": trial_days})
    session.flush()
    return sub


def preview_change(
    session: Session, subscription_id: str, data: dict[str, Any], *, now: datetime
) -> ChangePreview:
    """The lines `change_subscription` would record, without recording them. A subscription
    that time has moved past a boundary is brought up to date first (that is not the change)."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=SYSTEM_ACTOR, claim=False)
    plan = _plan_change(ctx, sub, data)
    return ChangePreview(
        subscription_id=sub.id,
        proration=plan.proration,
        currency=sub.currency,
        effective_at=plan.effective_at,
        old_price_id=sub.price_id,
        new_price_id=plan.new_price.id,
        old_quantity=sub.quantity,
        new_quantity=plan.new_quantity,
        lines=plan.lines,
    )


def change_subscription(
    session: Session, subscription_id: str, data: dict[str, Any], *, actor: str, now: datetime
) -> Subscription:
    """Change price and/or quantity: `immediate` (prorated to the day) or at `period_end`."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor)
    plan = _plan_change(ctx, sub, data)
    before = _terms(ctx, sub)
    if plan.proration == PERIOD_END:
        if plan.clears_schedule:
            sub.scheduled_price_id = None
            sub.scheduled_quantity = None
        else:
            sub.scheduled_price_id = plan.new_price.id
            sub.scheduled_quantity = plan.new_quantity
            mark_price_subscribed(plan.new_price, now=ctx.now)
        _record(
            ctx,
            sub,
            Event.SCHEDULE_CHANGE,
            before,
            detail={
                "scheduled_price_id": sub.scheduled_price_id,
                "scheduled_quantity": sub.scheduled_quantity,
                "effective_at": plan.effective_at.isoformat(),
            },
        )
        _flush(session)
        return sub

    old_period = _open_period_id(ctx, sub)
    sub.price_id = plan.new_price.id
    sub.quantity = plan.new_quantity
    sub.scheduled_price_id = None
    sub.scheduled_quantity = None
    mark_price_subscribed(plan.new_price, now=ctx.now)
    new_period = old_period
    if plan.new_billing is not None:  # another interval: the anchor moves to today
        _close_period(ctx, sub, end_on=ctx.today)
        sub.billing_anchor_on = ctx.today
        new_period = _open_period(ctx, sub, "service", ctx.today, plan.new_billing.end_on)
        _set_billing_period(ctx, sub, plan.new_billing)
    _charge(
        ctx,
        sub,
        [(line, old_period if line.amount < 0 else new_period) for line in plan.lines],
        reason=Event.CHANGE,
    )
    _sync_next_action(sub)
    _record(
        ctx,
        sub,
        Event.CHANGE,
        before,
        detail={"proration": IMMEDIATE, "proration_total": total(plan.lines)},
    )
    _flush(session)
    return sub


def cancel_subscription(
    session: Session, subscription_id: str, data: dict[str, Any], *, actor: str, now: datetime
) -> Subscription:
    """Cancel at the period end (trial end while trialing), or now; `prorate` credits the
    unused days of a paid period when cancelling now."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor)
    before = _terms(ctx, sub)
    if data.get("at_period_end", False):
        _check_transition(sub, Event.SCHEDULE_CANCEL)
        if sub.cancel_at_period_end:
            raise CancellationScheduledError(f"subscription {sub.id} already ends at period end")
        sub.cancel_at_period_end = True
        sub.canceled_at = ctx.now
        _record(
            ctx,
            sub,
            Event.SCHEDULE_CANCEL,
            before,
            detail={"effective_at": _iso(sub.next_action_at)},
        )
        _flush(session)
        return sub

    new_status = _check_transition(sub, Event.CANCEL)
    credit: ProrationLine | None = None
    if data.get("prorate", False) and sub.status in _IN_SERVICE:
        credit = credit_unused(_current_item(ctx, sub), _billing_period(ctx, sub), ctx.today)
    closed = _close_period(ctx, sub, end_on=ctx.today)
    if credit is not None:
        _charge(ctx, sub, [(credit, closed)], reason=Event.CANCEL)
    sub.status = new_status.value
    sub.canceled_at = ctx.now
    sub.ended_at = ctx.now
    sub.cancel_at_period_end = False
    sub.scheduled_price_id = None
    sub.scheduled_quantity = None
    _set_billing_period(ctx, sub, None)
    _sync_next_action(sub)
    _record(
        ctx,
        sub,
        Event.CANCEL,
        before,
        detail={
            "prorate": bool(data.get("prorate", False)),
            "credit": credit.amount if credit else 0,
        },
    )
    _flush(session)
    return sub


def uncancel_subscription(
    session: Session, subscription_id: str, *, actor: str, now: datetime
) -> Subscription:
    """Take back a cancellation scheduled for the period end."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor)
    _check_transition(sub, Event.UNCANCEL)
    if not sub.cancel_at_period_end:
        raise NotScheduledToCancelError(f"subscription {sub.id} is not scheduled to cancel")
    before = _terms(ctx, sub)
    sub.cancel_at_period_end = False
    sub.canceled_at = None
    _record(ctx, sub, Event.UNCANCEL, before)
    _flush(session)
    return sub


def pause_subscription(
    session: Session, subscription_id: str, *, actor: str, now: datetime
) -> Subscription:
    """Stop service today: the period closes, its unused days are credited, MRR drops to 0.
    A scheduled change stays and applies on resume; a scheduled cancellation refuses the pause
    (uncancel it, or cancel now)."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor)
    new_status = _check_transition(sub, Event.PAUSE)
    if sub.cancel_at_period_end:
        raise CancellationScheduledError(
            f"subscription {sub.id} ends at period end; uncancel it before pausing"
        )
    before = _terms(ctx, sub)
    credit = credit_unused(_current_item(ctx, sub), _billing_period(ctx, sub), ctx.today)
    closed = _close_period(ctx, sub, end_on=ctx.today)
    if credit is not None:
        _charge(ctx, sub, [(credit, closed)], reason=Event.PAUSE)
    sub.status = new_status.value
    sub.paused_at = ctx.now
    _set_billing_period(ctx, sub, None)
    _sync_next_action(sub)
    _record(ctx, sub, Event.PAUSE, before, detail={"credit": credit.amount if credit else 0})
    _flush(session)
    return sub


def resume_subscription(
    session: Session, subscription_id: str, *, actor: str, now: datetime
) -> Subscription:
    """Start service again today, to the end of the anchor's current period (charged for the
    remaining days). A change scheduled before the pause applies now."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor)
    new_status = _check_transition(sub, Event.RESUME)
    before = _terms(ctx, sub)
    applied = _take_scheduled_change(ctx, sub, on=ctx.today)
    sub.status = new_status.value
    sub.paused_at = None
    anchor = sub.billing_anchor_on
    if anchor is None or anchor > ctx.today:
        anchor = ctx.today
    price = _price(ctx, sub.price_id)
    _start_service(ctx, sub, price, on=ctx.today, reason=Event.RESUME, anchor_on=anchor)
    _sync_next_action(sub)
    _record(ctx, sub, Event.RESUME, before, detail={"applied_scheduled_change": applied})
    _flush(session)
    return sub


def set_payment_method(
    session: Session, subscription_id: str, data: dict[str, Any], *, actor: str, now: datetime
) -> Subscription:
    """Record whether the subscription has a payment method (a flag until billing owns
    payment methods). An incomplete subscription that gets one is activated: its first period
    starts today and is charged."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor)
    value = bool(data["has_payment_method"])
    if sub.status == State.INCOMPLETE and value:
        new_status = _check_transition(sub, Event.ACTIVATE)
        before = _terms(ctx, sub)
        sub.has_payment_method = True
        sub.status = new_status.value
        price = _price(ctx, sub.price_id)
        _start_service(ctx, sub, price, on=ctx.today, reason=Event.ACTIVATE, anchor_on=ctx.today)
        _sync_next_action(sub)
        _record(ctx, sub, Event.ACTIVATE, before)
        _flush(session)
        return sub
    _check_transition(sub, Event.UPDATE_PAYMENT_METHOD)
    if sub.has_payment_method == value:
        return sub  # nothing changed, nothing to record
    before = _terms(ctx, sub)
    sub.has_payment_method = value
    _record(ctx, sub, Event.UPDATE_PAYMENT_METHOD, before, detail={"has_payment_method": value})
    _flush(session)
    return sub


def mark_past_due(
    session: Session,
    subscription_id: str,
    *,
    actor: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Subscription:
    """Billing reports a failed payment: an active subscription becomes `past_due` (service
    and renewals go on while dunning runs, and it still counts for MRR). Already `past_due`,
    or in a state the failure does not move (paused, canceled, …: an older invoice of it
    failed): nothing to record, and no error, so that the payment itself is still recorded."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor, claim=False)
    if not is_allowed(sub.status, Event.PAYMENT_FAILED):
        return sub
    new_status = _check_transition(sub, Event.PAYMENT_FAILED)
    _claim(ctx, sub)
    before = _terms(ctx, sub)
    sub.status = new_status.value
    _record(ctx, sub, Event.PAYMENT_FAILED, before, detail=detail)
    _flush(session)
    return sub


def mark_payment_recovered(
    session: Session,
    subscription_id: str,
    *,
    actor: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> Subscription:
    """Billing reports that the overdue payment came in: `past_due` becomes `active` again.
    In any other state there is nothing to recover and nothing is recorded (a subscription
    cancelled by dunning stays cancelled: `canceled` is final)."""
    ctx, sub = _begin(session, subscription_id, now=now, actor=actor, claim=False)
    if sub.status != State.PAST_DUE:
        return sub
    new_status = _check_transition(sub, Event.PAYMENT_SUCCEEDED)
    _claim(ctx, sub)
    before = _terms(ctx, sub)
    sub.status = new_status.value
    _record(ctx, sub, Event.PAYMENT_SUCCEEDED, before, detail=detail)
    _flush(session)
    return sub


def advance_subscriptions(
    session: Session,
    tenant_id: str,
    now: datetime,
    clock_id: str | None = None,
    *,
    actor: str = SYSTEM_ACTOR,
) -> list[Subscription]:
    """Run everything that fell due up to `now` for one tenant: trial ends (convert, cancel or
    pause), period-end cancellations, scheduled changes and renewals, each at its own instant.

    `clock_id=None` is real time: subscriptions on a test clock are left to their clock. The
    test clock's advance calls this with its id; the periodic worker calls it per tenant with
    the wall clock. Returns the subscriptions that moved.
    """
    if current_tenant(session) != tenant_id:
        raise ValueError("advance_subscriptions: the session is scoped to another tenant")
    ctx = _Ctx(session, _zone(session), now, actor)
    stmt = (
        sa.select(Subscription)
        .where(
            Subscription.tenant_id == tenant_id,
            Subscription.status.in_([s.value for s in ADVANCES_WITH_TIME]),
            Subscription.next_action_at <= now,
        )
        .order_by(Subscription.next_action_at, Subscription.id)
    )
    if clock_id is None:
        stmt = stmt.where(Subscription.test_clock_id.is_(None))
    else:
        stmt = stmt.where(Subscription.test_clock_id == clock_id)
    moved = list(session.scalars(stmt))
    for sub in moved:
        _advance_one(ctx, sub)
    _flush(session)
    return moved


def advance_locked(
    session: Session,
    subscriptions: Iterable[Subscription],
    now: datetime,
    *,
    actor: str = SYSTEM_ACTOR,
) -> int:
    """Advance subscriptions the caller has loaded and locked (a billing run's batch) up to
    `now`, through the same time step as `advance_subscriptions`. Subscriptions with nothing
    due (another run got there first) are left alone. Returns how many moved."""
    ctx = _Ctx(session, _zone(session), now, actor)
    moved = 0
    for sub in subscriptions:
        if sub.next_action_at is None or sub.next_action_at > now:
            continue
        _advance_one(ctx, sub)
        moved += 1
    return moved


# --- the steps of time --------------------------------------------------------------------


def _advance_one(ctx: _Ctx, sub: Subscription) -> None:
    while (
        sub.status in ADVANCES_WITH_TIME
        and sub.next_action_at is not None
        and sub.next_action_at <= ctx.now
    ):
        at = sub.next_action_at
        _claim(ctx, sub)
        if sub.status == State.TRIALING:
            _end_trial(ctx, sub, at)
        else:
            _end_period(ctx, sub, at)
        _sync_next_action(sub)
        if sub.next_action_at is not None and sub.next_action_at <= at:
            raise RuntimeError(f"subscription {sub.id} did not move past {at}")  # a bug


def _end_trial(ctx: _Ctx, sub: Subscription, at: datetime) -> None:
    on = local_date(at, ctx.zone)
    _close_period(ctx, sub)
    _apply_scheduled_change(ctx, sub, at, on)
    before = _terms(ctx, sub)
    behavior = "convert" if sub.has_payment_method else _plan(ctx, sub.price_id).trial_end_behavior
    if sub.cancel_at_period_end:
        event = Event.PERIOD_END_CANCEL
    else:
        event = {
            "convert": Event.TRIAL_END_CONVERT,
            "cancel": Event.TRIAL_END_CANCEL,
            "pause": Event.TRIAL_END_PAUSE,
        }[behavior]
    sub.status = _check_transition(sub, event).value
    _set_billing_period(ctx, sub, None)
    if sub.status == State.CANCELED:
        sub.ended_at = at
    elif sub.status == State.PAUSED:
        sub.paused_at = at
    else:
        _start_service(ctx, sub, _price(ctx, sub.price_id), on=on, reason=event, anchor_on=on)
    _record(
        ctx.as_system(),
        sub,
        event,
        before,
        occurred_at=at,
        detail={"trial_end_behavior": behavior, "has_payment_method": sub.has_payment_method},
    )


def _end_period(ctx: _Ctx, sub: Subscription, at: datetime) -> None:
    on = local_date(at, ctx.zone)
    _close_period(ctx, sub)
    if sub.cancel_at_period_end:
        before = _terms(ctx, sub)
        sub.status = _check_transition(sub, Event.PERIOD_END_CANCEL).value
        sub.ended_at = at
        sub.scheduled_price_id = None
        sub.scheduled_quantity = None
        _set_billing_period(ctx, sub, None)
        _record(ctx.as_system(), sub, Event.PERIOD_END_CANCEL, before, occurred_at=at)
        return
    _apply_scheduled_change(ctx, sub, at, on)
    before = _terms(ctx, sub)
    sub.status = _check_transition(sub, Event.RENEW).value
    _start_service(ctx, sub, _price(ctx, sub.price_id), on=on, reason=Event.RENEW, anchor_on=None)
    _record(
        ctx.as_system(),
        sub,
        Event.RENEW,
        before,
        occurred_at=at,
        detail={
            "period_start_at": _iso(sub.current_period_start_at),
            "period_end_at": _iso(sub.current_period_end_at),
        },
    )


def _apply_scheduled_change(ctx: _Ctx, sub: Subscription, at: datetime, on: date) -> None:
    if sub.scheduled_price_id is None and sub.scheduled_quantity is None:
        return
    before = _terms(ctx, sub)
    _check_transition(sub, Event.APPLY_SCHEDULED_CHANGE)
    _take_scheduled_change(ctx, sub, on=on)
    _record(ctx.as_system(), sub, Event.APPLY_SCHEDULED_CHANGE, before, occurred_at=at)


def _take_scheduled_change(ctx: _Ctx, sub: Subscription, *, on: date) -> dict[str, Any] | None:
    """Move the scheduled terms onto the subscription; another interval re-anchors on `on`."""
    if sub.scheduled_price_id is None and sub.scheduled_quantity is None:
        return None
    old_price = _price(ctx, sub.price_id)
    new_price = _price(ctx, sub.scheduled_price_id or sub.price_id)
    sub.price_id = new_price.id
    sub.quantity = sub.scheduled_quantity or sub.quantity
    sub.scheduled_price_id = None
    sub.scheduled_quantity = None
    if new_price.billing_interval != old_price.billing_interval:
        sub.billing_anchor_on = on
    return {"price_id": sub.price_id, "quantity": sub.quantity}


# --- building blocks ----------------------------------------------------------------------


def _zone(session: Session, timezone: str | None = None) -> ZoneInfo:
    """The tenant's zone: of its loaded row, else `timezone` when the caller read the column
    along with something else, else the column read now."""
    tenant_id = current_tenant(session)
    loaded = session.identity_map.get(identity_key(Tenant, tenant_id))
    if isinstance(loaded, Tenant):
        return ZoneInfo(loaded.timezone)
    if timezone is not None:
        return ZoneInfo(timezone)
    # the one column, not the whole tenant row into the identity map: this runs in every
    # use case, and building and tracking a Tenant object cost more than the column's read
    with session.no_autoflush:
        timezone = session.scalar(sa.select(Tenant.timezone).where(Tenant.id == tenant_id))
    if timezone is None:  # the session's tenant must exist: a programming error otherwise
        raise RuntimeError("the session's tenant does not exist")
    return ZoneInfo(timezone)


def _context(session: Session, *, now: datetime, actor: str, test_clock_id: str | None) -> _Ctx:
    return _Ctx(session, _zone(session), clock_now(session, test_clock_id, now), actor)


def _begin(
    session: Session, subscription_id: str, *, now: datetime, actor: str, claim: bool = True
) -> tuple[_Ctx, Subscription]:
    loaded = _load_subscription(session, subscription_id)
    sub = loaded.subscription
    ctx = _Ctx(
        session,
        _zone(session, loaded.timezone),
        clock_now(session, sub.test_clock_id, now),
        actor,
    )
    if loaded.price is not None:
        ctx.catalog[loaded.price.id] = loaded.price
    if loaded.plan is not None:
        ctx.catalog[loaded.plan.id] = loaded.plan
    ctx.open_periods[sub.id] = loaded.open_period_id
    _advance_one(ctx.as_system(), sub)
    if claim:
        _claim(ctx, sub)
    return ctx, sub


class _Loaded(NamedTuple):
    subscription: Subscription
    price: Price | None  # the subscription's price and its plan, None if not visible
    plan: Plan | None
    timezone: str | None  # the session's tenant's
    open_period_id: str | None


# What every use case reads before it starts, in one statement: the subscription, its price
# and plan, the tenant's zone and the open period (five round trips before). The joins are
# outer so that a price the scoping hides still loads the subscription, as a read of the
# subscription alone would; `_price` then reports the price missing as before.
_OPEN_PERIOD_ID = (
    sa.select(SubscriptionPeriod.id)
    .where(
        SubscriptionPeriod.tenant_id == Subscription.tenant_id,
        SubscriptionPeriod.subscription_id == Subscription.id,
        SubscriptionPeriod.status == "open",
    )
    .limit(1)
    .scalar_subquery()
)
_LOAD = (
    sa.select(
        Subscription,
        Price,
        Plan,
        sa.select(Tenant.timezone).where(Tenant.id == sa.bindparam("tenant_id")).scalar_subquery(),
        _OPEN_PERIOD_ID,
    )
    .outerjoin(
        Price,
        sa.and_(Price.tenant_id == Subscription.tenant_id, Price.id == Subscription.price_id),
    )
    .outerjoin(Plan, sa.and_(Plan.tenant_id == Price.tenant_id, Plan.id == Price.plan_id))
    .where(Subscription.id == sa.bindparam("subscription_id"))
)


def _load_subscription(session: Session, subscription_id: str) -> _Loaded:
    """The one read every use case starts from (a seam for the concurrency tests)."""
    params = {"tenant_id": current_tenant(session), "subscription_id": subscription_id}
    row = session.execute(_LOAD, params).first()
    if row is None:
        raise SubscriptionNotFoundError(f"no subscription {subscription_id}")
    return _Loaded(*row)


_SUBSCRIPTIONS = table_of(Subscription)
# the UPDATE the unit of work would send for the claim, with the same optimistic-lock check;
# `updated_at` and `version` come with the execution
_CLAIM = DirectWrite(
    sa.update(_SUBSCRIPTIONS).where(
        _SUBSCRIPTIONS.c.tenant_id == sa.bindparam("claim_tenant_id"),
        _SUBSCRIPTIONS.c.id == sa.bindparam("claim_id"),
        _SUBSCRIPTIONS.c.version == sa.bindparam("claim_version"),
    )
)


def _claim(ctx: _Ctx, sub: Subscription) -> None:
    """Write the subscription's row first, so a lost race fails before anything else is
    written (see the module docstring). The row always gets an UPDATE, even when
    `updated_at` does not change (two operations at one frozen test-clock time).

    An unchanged subscription (the usual case) is claimed with one Core UPDATE, and the
    object is told its new `updated_at` and `version`, which a flush would have cost far
    more CPU for; one with changes pending goes through the flush, which writes them too."""
    if sub.id in ctx.claimed:
        return
    if sa.inspect(sub).modified:
        sub.updated_at = ctx.now
        flag_modified(sub, "updated_at")
        _flush(ctx.session)
    else:
        version = (sub.version or 0) + 1  # the mapper's default version generator
        claimed = _CLAIM.execute(
            ctx.session,
            {
                "updated_at": ctx.now,
                "version": version,
                "claim_tenant_id": _owner(ctx.session, sub),
                "claim_id": sub.id,
                "claim_version": sub.version,
            },
        )
        if claimed.rowcount != 1:
            raise SubscriptionConflictError(_CONFLICT)
        set_committed_value(sub, "updated_at", ctx.now)
        set_committed_value(sub, "version", version)
    ctx.claimed.add(sub.id)


_CONFLICT = "the subscription was changed by another request; fetch it and retry"


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise SubscriptionConflictError(_CONFLICT) from exc


def _check_transition(sub: Subscription, event: Event) -> State:
    try:
        return next_state(sub.status, event)
    except TransitionNotAllowed as exc:
        raise InvalidTransitionError(
            f"subscription {sub.id} is {sub.status}: cannot {event}",
            errors={"status": [f"{sub.status} does not allow {event}"]},
        ) from exc


def _check_quantity(price: Price, quantity: int) -> None:
    if quantity < 1:
        raise ValidationFailedError("quantity must be at least 1", errors={"quantity": [">= 1"]})
    if not price.per_seat and quantity != 1:
        raise QuantityNotAllowedError(
            f"price {price.id} is not per seat: quantity must be 1",
            errors={"quantity": ["must be 1 for a price that is not per seat"]},
        )


def _returns_after_cancellation(session: Session, customer_id: str) -> bool:
    """A customer whose every earlier subscription is canceled comes back: a reactivation."""
    statuses = set(
        session.scalars(
            sa.select(Subscription.status).where(Subscription.customer_id == customer_id)
        )
    )
    return statuses == {State.CANCELED.value}


def _price(ctx: _Ctx, price_id: str) -> Price:
    # the session's identity map would hand back the same object, but only after a query
    price = ctx.catalog.get(price_id)
    if isinstance(price, Price):
        return price
    # with its plan in the same statement: nearly every use case that reads a price reads its
    # plan next (tax kind, trial behaviour), and that was a round trip of its own
    row = ctx.session.execute(
        sa.select(Price, Plan).outerjoin(Plan, Plan.id == Price.plan_id).where(Price.id == price_id)
    ).first()
    if row is None:
        return get_price(ctx.session, price_id)  # raises the catalog's not-found error
    price, plan = row
    ctx.catalog[price_id] = price
    if plan is not None:  # otherwise _plan_by_id reports it missing as before
        ctx.catalog[plan.id] = plan
    return price


def _plan_by_id(ctx: _Ctx, plan_id: str) -> Plan:
    plan = ctx.catalog.get(plan_id)
    if not isinstance(plan, Plan):
        plan = ctx.catalog[plan_id] = get_plan(ctx.session, plan_id)
    return plan


def _plan(ctx: _Ctx, price_id: str) -> Plan:
    return _plan_by_id(ctx, _price(ctx, price_id).plan_id)


def _item(ctx: _Ctx, price: Price, quantity: int) -> Item:
    plan = _plan_by_id(ctx, price.plan_id)
    label = f"{plan.name} ({price.nickname})" if price.nickname else plan.name
    return Item(price.id, price.unit_amount, quantity, price.per_seat, label=label)


def _current_item(ctx: _Ctx, sub: Subscription) -> Item:
    return _item(ctx, _price(ctx, sub.price_id), sub.quantity)


def _terms(ctx: _Ctx, sub: Subscription) -> _Terms:
    return _Terms(sub.status, _price(ctx, sub.price_id), sub.quantity)


def _billing_period(ctx: _Ctx, sub: Subscription) -> Period:
    if sub.current_period_start_at is None or sub.current_period_end_at is None:
        raise RuntimeError(f"subscription {sub.id} has no current period")  # a bug
    return Period(
        0,
        local_date(sub.current_period_start_at, ctx.zone),
        local_date(sub.current_period_end_at, ctx.zone),
    )


def _set_billing_period(ctx: _Ctx, sub: Subscription, period: Period | None) -> None:
    sub.current_period_start_at = start_of_day(period.start_on, ctx.zone) if period else None
    sub.current_period_end_at = start_of_day(period.end_on, ctx.zone) if period else None


def _sync_next_action(sub: Subscription) -> None:
    if sub.status == State.TRIALING:
        sub.next_action_at = sub.trial_end_at
    elif sub.status in _IN_SERVICE:
        sub.next_action_at = sub.current_period_end_at
    else:
        sub.next_action_at = None


def _start_service(
    ctx: _Ctx,
    sub: Subscription,
    price: Price,
    *,
    on: date,
    reason: str,
    anchor_on: date | None,
) -> None:
    """Open a service period from `on` to the end of the anchor's period containing `on` and
    charge it: in full from the period's first day, else the remaining days."""
    if anchor_on is not None:
        sub.billing_anchor_on = anchor_on
    if sub.billing_anchor_on is None:
        raise RuntimeError(f"subscription {sub.id} has no billing anchor")  # a bug
    billing = period_containing(sub.billing_anchor_on, price.billing_interval, on)
    period_id = _open_period(ctx, sub, "service", on, billing.end_on)
    _set_billing_period(ctx, sub, billing)
    item = _item(ctx, price, sub.quantity)
    line = (
        charge_period(item, billing)
        if on == billing.start_on
        else charge_remaining(item, billing, on)
    )
    if line is not None:
        _charge(ctx, sub, [(line, period_id)], reason=reason)


# Periods (their INSERT), charges and history are written as Core INSERTs the moment they
# are decided, not as ORM objects through the flush: nothing reads them back as objects in
# the use case, and the unit of work cost more CPU than the rest of a change. Each row names
# its tenant (`_owner`) as the flush's tenant stamp would.
_PERIODS = table_of(SubscriptionPeriod)
_CHARGES = table_of(SubscriptionCharge)
_HISTORY = table_of(SubscriptionHistory)
# through the driver (saas.kernel.direct): a change writes three of these
_INSERT_PERIOD = DirectWrite(sa.insert(_PERIODS))
_INSERT_CHARGE = DirectWrite(sa.insert(_CHARGES))
_INSERT_HISTORY = DirectWrite(sa.insert(_HISTORY))


def _owner(session: Session, sub: Subscription) -> str:
    """The tenant of a row written for `sub` as a Core INSERT, checked as the flush checks a
    new object (saas.kernel.tenancy.owner_for): the subscription's own tenant must be set."""
    if not sub.tenant_id:
        raise TenantContextMissingError(f"subscription {sub.id} has no tenant_id")
    return tenancy.owner_for(session, sub.tenant_id, f"a row of subscription {sub.id}")


def _open_period(ctx: _Ctx, sub: Subscription, kind: str, start_on: date, end_on: date) -> str:
    """Open a period and return its id."""
    sub.last_period_seq += 1
    # what is pending (the period just closed, the subscription's sequence) is written first,
    # as when this row went through the flush
    _flush(ctx.session)
    period_id = new_id("sper")
    _INSERT_PERIOD.execute(
        ctx.session,
        {
            "id": period_id,
            "tenant_id": _owner(ctx.session, sub),
            "livemode": sub.livemode,
            "subscription_id": sub.id,
            "seq": sub.last_period_seq,
            "kind": kind,
            "start_at": start_of_day(start_on, ctx.zone),
            "end_at": start_of_day(end_on, ctx.zone),
            "status": "open",
            "created_at": ctx.now,
        },
    )
    ctx.open_periods[sub.id] = period_id
    return period_id


def _open_period_row(ctx: _Ctx, sub: Subscription) -> SubscriptionPeriod | None:
    return ctx.session.scalars(
        sa.select(SubscriptionPeriod).where(
            SubscriptionPeriod.subscription_id == sub.id, SubscriptionPeriod.status == "open"
        )
    ).first()


def _open_period_id(ctx: _Ctx, sub: Subscription) -> str | None:
    if sub.id in ctx.open_periods:
        return ctx.open_periods[sub.id]
    row = _open_period_row(ctx, sub)
    ctx.open_periods[sub.id] = row.id if row is not None else None
    return ctx.open_periods[sub.id]


def _close_period(ctx: _Ctx, sub: Subscription, *, end_on: date | None = None) -> str | None:
    """Close the open period: at its planned end, or cut short to the start of `end_on`.
    Returns its id (None when there was none)."""
    if sub.id in ctx.open_periods and ctx.open_periods[sub.id] is None:
        return None  # known: no period is open
    row = _open_period_row(ctx, sub)
    ctx.open_periods[sub.id] = None
    if row is None:
        return None
    row.status = "closed"
    row.closed_at = ctx.now
    if end_on is not None:
        row.end_at = max(row.start_at, min(row.end_at, start_of_day(end_on, ctx.zone)))
    return row.id


def _charge(
    ctx: _Ctx,
    sub: Subscription,
    lines: list[tuple[ProrationLine, str | None]],
    *,
    reason: str,
) -> None:
    """Record what `sub` owes: each line with the id of the period it belongs to."""
    if not lines:
        return
    tenant_id = _owner(ctx.session, sub)
    rows = [
        {
            "id": new_id("sch"),
            "tenant_id": tenant_id,
            "livemode": sub.livemode,
            "subscription_id": sub.id,
            "customer_id": sub.customer_id,
            "period_id": period_id,
            "kind": line.kind.value,
            "reason": str(reason),
            "description": line.description[:500],
            "price_id": line.price_id,
            "quantity": line.quantity,
            "unit_amount": line.unit_amount,
            "amount": line.amount,
            "currency": sub.currency,
            "starts_on": line.starts_on,
            "ends_on": line.ends_on,
            "period_days": line.period_days,
            "created_at": ctx.now,
        }
        for line, period_id in lines
    ]
    _INSERT_CHARGE.execute(ctx.session, rows if len(rows) > 1 else rows[0])


def _record(
    ctx: _Ctx,
    sub: Subscription,
    event: str,
    before: _Terms | None,
    *,
    occurred_at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    after = _terms(ctx, sub)
    mrr_before = before.mrr if before else 0
    mrr_after = after.mrr
    occurred = occurred_at or ctx.now
    sub.last_history_seq += 1
    _INSERT_HISTORY.execute(
        ctx.session,
        {
            "id": new_id("sh"),
            "tenant_id": _owner(ctx.session, sub),
            "livemode": sub.livemode,
            "subscription_id": sub.id,
            "customer_id": sub.customer_id,
            "seq": sub.last_history_seq,
            "event": str(event),
            "occurred_at": occurred,
            "recorded_at": ctx.now,
            "actor": ctx.actor,
            "old_status": before.status if before else None,
            "new_status": after.status,
            "old_price_id": before.price.id if before else None,
            "new_price_id": after.price.id,
            "old_quantity": before.quantity if before else None,
            "new_quantity": after.quantity,
            "currency": sub.currency,
            "mrr_before": mrr_before,
            "mrr_after": mrr_after,
            "detail": detail or {},
        },
    )
    insert_event(
        ctx.session,
        WEBHOOK_EVENT_BY_HISTORY.get(str(event), "subscription.updated"),
        {
            "object": _subscription_schema().dump(sub),
            "change": {
                "event": str(event),
                "occurred_at": _iso(occurred),
                "old_status": before.status if before else None,
                "new_status": after.status,
                "mrr_before": mrr_before,
                "mrr_after": mrr_after,
            },
        },
        now=ctx.now,
        livemode=sub.livemode,
    )


_SCHEMA: list[Any] = []  # building a marshmallow schema costs more than dumping with it


def _subscription_schema() -> Any:
    if not _SCHEMA:
        from saas.subscriptions.schemas import SubscriptionSchema  # schemas import this module

        _SCHEMA.append(SubscriptionSchema())
    return _SCHEMA[0]


# Webhook event type for each history event; everything else is `subscription.updated`.
WEBHOOK_EVENT_BY_HISTORY = {
    CREATE: "subscription.created",
    REACTIVATION: "subscription.created",
    Event.CANCEL: "subscription.canceled",
    Event.PERIOD_END_CANCEL: "subscription.canceled",
    Event.TRIAL_END_CANCEL: "subscription.canceled",
    Event.PAUSE: "subscription.paused",
    Event.TRIAL_END_PAUSE: "subscription.paused",
    Event.RESUME: "subscription.resumed",
    Event.RENEW: "subscription.renewed",
    Event.PAYMENT_FAILED: "subscription.past_due",
}


def _plan_change(ctx: _Ctx, sub: Subscription, data: dict[str, Any]) -> _ChangePlan:
    proration = data.get("proration", IMMEDIATE)
    event = Event.CHANGE if proration == IMMEDIATE else Event.SCHEDULE_CHANGE
    _check_transition(sub, event)
    if proration == PERIOD_END and sub.cancel_at_period_end:
        raise CancellationScheduledError(
            f"subscription {sub.id} ends at period end; a change then would never apply"
        )
    old_price = _price(ctx, sub.price_id)
    new_price = old_price
    if data.get("price_id") and data["price_id"] != sub.price_id:
        new_price, new_plan, _ = get_sellable_price(ctx.session, data["price_id"])
        ctx.catalog[new_price.id] = new_price
        ctx.catalog[new_plan.id] = new_plan
        if new_price.currency != sub.currency:
            raise CurrencyMismatchError(
                f"price {new_price.id} is in {new_price.currency}, the subscription in "
                f"{sub.currency}",
                errors={"price_id": [f"must be a {sub.currency} price"]},
            )
    new_quantity = data.get("quantity", sub.quantity)
    _check_quantity(new_price, new_quantity)
    unchanged = new_price.id == sub.price_id and new_quantity == sub.quantity
    scheduled = sub.scheduled_price_id is not None or sub.scheduled_quantity is not None
    if unchanged and not (proration == PERIOD_END and scheduled):
        raise EmptyChangeError(f"subscription {sub.id} is already on these terms")

    lines: list[ProrationLine] = []
    new_billing: Period | None = None
    effective_at = ctx.now
    if proration == PERIOD_END:
        effective_at = sub.next_action_at or ctx.now
    elif sub.status in _IN_SERVICE:
        current = _billing_period(ctx, sub)
        old_item = _current_item(ctx, sub)
        new_item = _item(ctx, new_price, new_quantity)
        if new_price.billing_interval == old_price.billing_interval:
            lines = prorate_change(old_item, new_item, current, ctx.today)
        else:
            new_billing = period_at(ctx.today, new_price.billing_interval, 0)
            credit = credit_unused(old_item, current, ctx.today)
            lines = [line for line in (credit, charge_period(new_item, new_billing)) if line]
    return _ChangePlan(
        proration=proration,
        old_price=old_price,
        new_price=new_price,
        new_quantity=new_quantity,
        lines=lines,
        effective_at=effective_at,
        new_billing=new_billing,
        clears_schedule=unchanged,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
