"""Set-based renewals: the plain case of the time step (`services._advance_one`) for a batch.

A billing run's phase A moves due subscriptions one by one through the ORM (claim, close the
period, open the next, charge it, history, event: about a dozen statements per renewal). Most
of them are *plain renewals*, and for those this module writes exactly the same rows with a few
statements per batch. A subscription is plain when, at every period end it has to pass up to
`until`:
- it is `active` or `past_due` (both renew into the same state, `lifecycle` RENEW), with
  `next_action_at` equal to `current_period_end_at` (what `_sync_next_action` keeps),
- nothing else happens at that boundary: no cancellation at period end, no scheduled price or
  quantity (trials are `trialing`, paused ones do not advance),
- it has a billing anchor and exactly one open period,
- the boundary's local day starts a period of the anchor's series, so the renewal charges a
  full period (`charge_period`), not the remaining days of one.
Everything else is left to the ORM path: `renew_plain` returns those ids.

What one plain renewal writes (`_end_period` → `_close_period`, `_start_service`, `_record`,
then `_sync_next_action`; `_claim` before the first), with `now` = `until`:
- the open `subscription_periods` row: `status` closed, `closed_at` now (`end_at` unchanged);
- a new period: seq `last_period_seq + 1`, kind `service`, local midnights of the period's
  days, `open`, `created_at` now;
- a `subscription_charges` row: `recurring`, reason `renew`, the price's full period at the
  quantity (description, amounts and days from `proration.charge_period`), pending;
- a `subscription_history` row: seq `last_history_seq + 1`, event `renew`, occurred at the
  boundary, recorded now, actor `system`, same status, price and quantity before and after
  (so `mrr_before == mrr_after`: no metrics movement), detail = the new period's instants;
- an outbox `events` row `subscription.renewed`: the subscription as the API shows it after
  the renewal, plus the `change` block of `_record`; a dispatch is requested after commit;
- the subscription: `updated_at` now, `current_period_start_at`/`_end_at`, `next_action_at`,
  `last_period_seq`, `last_history_seq`, and `version` (the optimistic lock) moved on.
A catch-up over several periods repeats this per period; here every period but the last is
inserted already closed (the ORM opens it and closes it in the next round, with the same
`closed_at`), and the subscription row is updated once. `version` goes up by one per batch
instead of once per ORM flush: it only has to change.

The rows go in with one statement per table and batch (PostgreSQL: `COPY` into a temporary
twin and one `INSERT … SELECT`, which the row-level security policy checks like any insert;
elsewhere executemany); the subscription rows with one `UPDATE … FROM unnest(…)` that also
checks their `version`. Ids come from `saas.kernel.ids`. The caller holds the subscriptions'
locks (a billing run's batch) and owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.catalog.models import Plan, Price
from saas.events.models import Event as OutboxEvent
from saas.events.services import request_dispatch
from saas.kernel.bulk import bulk_insert
from saas.kernel.db import table_of
from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_tenant
from saas.subscriptions.errors import SubscriptionConflictError
from saas.subscriptions.lifecycle import Event, State
from saas.subscriptions.models import (
    Subscription,
    SubscriptionCharge,
    SubscriptionHistory,
    SubscriptionPeriod,
)
from saas.subscriptions.mrr import monthly_amount
from saas.subscriptions.periods import Period, local_date, period_containing, start_of_day
from saas.subscriptions.proration import Item, ProrationLine, charge_period
from saas.subscriptions.services import SYSTEM_ACTOR, WEBHOOK_EVENT_BY_HISTORY, _iso, _zone

_SUBS = table_of(Subscription)
_PERIODS = table_of(SubscriptionPeriod)
_CHARGES = table_of(SubscriptionCharge)
_HISTORY = table_of(SubscriptionHistory)
_EVENTS = table_of(OutboxEvent)
_PRICES = table_of(Price)
_PLANS = table_of(Plan)

_RENEWING = (State.ACTIVE.value, State.PAST_DUE.value)
_RENEWED_EVENT = WEBHOOK_EVENT_BY_HISTORY[Event.RENEW]


@dataclass
class BulkRenewal:
    """What `renew_plain` did: `renewed` moved (in full, up to `until`), `rest` are for the
    ORM path (not plain, or not due: the ORM path skips those), `periods` renewals written."""

    renewed: list[str] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)
    periods: int = 0


@dataclass(frozen=True)
class _Terms:
    price_id: str
    unit_amount: int
    per_seat: bool
    interval: str
    label: str


@dataclass
class _Rows:
    subs: list[dict[str, Any]] = field(default_factory=list)
    close: list[str] = field(default_factory=list)
    periods: list[dict[str, Any]] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def renew_plain(session: Session, subscription_ids: Sequence[str], until: datetime) -> BulkRenewal:
    """Renew the plain renewals among `subscription_ids` (locked by the caller) period by
    period up to `until`, set-based; return the ids left for the ORM path."""
    result = BulkRenewal()
    if not subscription_ids:
        return result
    tenant_id = current_tenant(session)
    zone = _zone(session)
    conn = session.connection()
    subs = _candidates(conn, tenant_id, subscription_ids, until)
    terms = _terms(conn, tenant_id, {s["price_id"] for s in subs})
    open_periods = _open_periods(conn, tenant_id, [s["id"] for s in subs])
    schema = _schema()
    calendar = _Calendar(zone)
    rows = _Rows()
    plain: set[str] = set()
    for sub in subs:
        term = terms.get(sub["price_id"])
        periods = open_periods.get(sub["id"], [])
        if term is None or len(periods) != 1:
            continue
        steps = calendar.steps(sub, term.interval, until)
        if not steps:
            continue
        _renewal_rows(
            rows,
            sub,
            tenant_id=tenant_id,
            term=term,
            open_period_id=periods[0],
            steps=steps,
            now=until,
            schema=schema,
        )
        plain.add(sub["id"])
        result.periods += len(steps)
    result.renewed = [i for i in subscription_ids if i in plain]
    result.rest = [i for i in subscription_ids if i not in plain]
    if plain:
        _write(session, tenant_id, rows, until)
        _forget_loaded(session, plain)
    return result


# --- reads --------------------------------------------------------------------------------


def _candidates(
    conn: sa.Connection, tenant_id: str, ids: Sequence[str], until: datetime
) -> list[dict[str, Any]]:
    c = _SUBS.c
    stmt = (
        sa.select(_SUBS)
        .where(
            c.tenant_id == tenant_id,
            c.id.in_(list(ids)),
            c.status.in_(_RENEWING),
            c.next_action_at <= until,
            c.next_action_at == c.current_period_end_at,
            c.cancel_at_period_end.is_(False),
            c.scheduled_price_id.is_(None),
            c.scheduled_quantity.is_(None),
            c.billing_anchor_on.is_not(None),
        )
        .order_by(c.id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def _terms(conn: sa.Connection, tenant_id: str, price_ids: set[str]) -> dict[str, _Terms]:
    if not price_ids:
        return {}
    p, plan = _PRICES.c, _PLANS.c
    stmt = (
        sa.select(p.id, p.unit_amount, p.per_seat, p.billing_interval, p.nickname, plan.name)
        .join(_PLANS, (plan.tenant_id == p.tenant_id) & (plan.id == p.plan_id))
        .where(p.tenant_id == tenant_id, p.id.in_(sorted(price_ids)))
    )
    terms = {}
    for row in conn.execute(stmt):
        # `services._item`: the plan's name, with the price's nickname when it has one
        label = f"{row.name} ({row.nickname})" if row.nickname else row.name
        terms[row.id] = _Terms(
            row.id, int(row.unit_amount), bool(row.per_seat), row.billing_interval, label
        )
    return terms


def _open_periods(conn: sa.Connection, tenant_id: str, sub_ids: list[str]) -> dict[str, list[str]]:
    if not sub_ids:
        return {}
    c = _PERIODS.c
    stmt = sa.select(c.subscription_id, c.id).where(
        c.tenant_id == tenant_id, c.subscription_id.in_(sub_ids), c.status == "open"
    )
    found: dict[str, list[str]] = {}
    for sub_id, period_id in conn.execute(stmt):
        found.setdefault(sub_id, []).append(period_id)
    return found


def _schema() -> Any:
    from saas.subscriptions.schemas import SubscriptionSchema  # schemas import services

    return SubscriptionSchema()


# --- the calendar -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    at: datetime  # the boundary passed (the history's occurred_at)
    billing: Period
    start_at: datetime
    end_at: datetime


class _Calendar:
    """The period arithmetic of `services._start_service`, memoised per (anchor, interval,
    day): subscriptions of one run share a few anchors, so most steps are dictionary hits."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._periods: dict[tuple[date, str, date], Period] = {}
        self._midnights: dict[date, datetime] = {}
        self._days: dict[datetime, date] = {}

    def midnight(self, day: date) -> datetime:
        found = self._midnights.get(day)
        if found is None:
            found = self._midnights[day] = start_of_day(day, self.zone)
        return found

    def day(self, instant: datetime) -> date:
        found = self._days.get(instant)
        if found is None:
            found = self._days[instant] = local_date(instant, self.zone)
        return found

    def period(self, anchor: date, interval: str, on: date) -> Period:
        key = (anchor, interval, on)
        found = self._periods.get(key)
        if found is None:
            found = self._periods[key] = period_containing(anchor, interval, on)
        return found

    def steps(self, sub: dict[str, Any], interval: str, until: datetime) -> list[_Step]:
        """The renewals up to `until`, or none when one of them is not plain."""
        steps: list[_Step] = []
        at: datetime = sub["next_action_at"]
        anchor: date = sub["billing_anchor_on"]
        while at <= until:
            on = self.day(at)
            if on < anchor:
                return []
            billing = self.period(anchor, interval, on)
            if on != billing.start_on:
                return []  # the remaining days of a period: `charge_remaining`, ORM path
            end_at = self.midnight(billing.end_on)
            if end_at <= at:
                return []  # the ORM path raises on this (a bug); let it
            steps.append(_Step(at, billing, self.midnight(billing.start_on), end_at))
            at = end_at
        return steps


# --- the rows -----------------------------------------------------------------------------


def _renewal_rows(
    rows: _Rows,
    sub: dict[str, Any],
    *,
    tenant_id: str,
    term: _Terms,
    open_period_id: str,
    steps: list[_Step],
    now: datetime,
    schema: Any,
) -> None:
    item = Item(term.price_id, term.unit_amount, sub["quantity"], term.per_seat, label=term.label)
    mrr = monthly_amount(
        sub["status"],
        unit_amount=term.unit_amount,
        quantity=sub["quantity"],
        per_seat=term.per_seat,
        interval=term.interval,
    )
    common = {"tenant_id": tenant_id, "livemode": sub["livemode"], "subscription_id": sub["id"]}
    # the object as `_record` dumps it: the claim set `updated_at`, each renewal the period
    state = SimpleNamespace(**sub)
    state.metadata_ = sub["metadata"]
    state.updated_at = now
    rows.close.append(open_period_id)
    period_seq, history_seq = sub["last_period_seq"], sub["last_history_seq"]
    for n, step in enumerate(steps, start=1):
        period_seq += 1
        history_seq += 1
        last = n == len(steps)
        period_id = new_id("sper")
        rows.periods.append(
            {
                **common,
                "id": period_id,
                "seq": period_seq,
                "kind": "service",
                "start_at": step.start_at,
                "end_at": step.end_at,
                "status": "open" if last else "closed",
                "closed_at": None if last else now,
                "created_at": now,
            }
        )
        line = charge_period(item, step.billing)
        rows.charges.append(_charge_row(common, sub, line, period_id, now))
        state.current_period_start_at = step.start_at
        state.current_period_end_at = step.end_at
        detail = {"period_start_at": _iso(step.start_at), "period_end_at": _iso(step.end_at)}
        rows.history.append(
            {
                **common,
                "id": new_id("sh"),
                "customer_id": sub["customer_id"],
                "seq": history_seq,
                "event": Event.RENEW.value,
                "occurred_at": step.at,
                "recorded_at": now,
                "actor": SYSTEM_ACTOR,
                "old_status": sub["status"],
                "new_status": sub["status"],
                "old_price_id": term.price_id,
                "new_price_id": term.price_id,
                "old_quantity": sub["quantity"],
                "new_quantity": sub["quantity"],
                "currency": sub["currency"],
                "mrr_before": mrr,
                "mrr_after": mrr,
                "detail": detail,
            }
        )
        change = {
            "event": Event.RENEW.value,
            "occurred_at": _iso(step.at),
            "old_status": sub["status"],
            "new_status": sub["status"],
            "mrr_before": mrr,
            "mrr_after": mrr,
        }
        rows.events.append(
            {
                "tenant_id": tenant_id,
                "id": new_id("evt"),
                "livemode": bool(sub["livemode"]),
                "type": _RENEWED_EVENT,
                "data": {"object": schema.dump(state), "change": change},
                "created_at": now,
                "dispatched_at": None,
            }
        )
    last_step = steps[-1]
    rows.subs.append(
        {
            "id": sub["id"],
            "version": sub["version"],
            "start_at": last_step.start_at,
            "end_at": last_step.end_at,
            "period_seq": period_seq,
            "history_seq": history_seq,
        }
    )


def _charge_row(
    common: dict[str, Any],
    sub: dict[str, Any],
    line: ProrationLine,
    period_id: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        **common,
        "id": new_id("sch"),
        "customer_id": sub["customer_id"],
        "period_id": period_id,
        "kind": line.kind.value,
        "reason": Event.RENEW.value,
        "description": line.description[:500],
        "price_id": line.price_id,
        "quantity": line.quantity,
        "unit_amount": line.unit_amount,
        "amount": line.amount,
        "currency": sub["currency"],
        "starts_on": line.starts_on,
        "ends_on": line.ends_on,
        "period_days": line.period_days,
        "created_at": now,
        "invoiced_at": None,
        "invoice_id": None,
    }


# --- the writes ---------------------------------------------------------------------------


def _write(session: Session, tenant_id: str, rows: _Rows, now: datetime) -> None:
    conn = session.connection()
    # the subscription rows first, as `_claim` does: a lost race fails before anything else
    updated = _update_subscriptions(conn, tenant_id, rows.subs, now)
    if updated != len(rows.subs):
        raise SubscriptionConflictError(
            f"{len(rows.subs) - updated} subscription(s) of the batch changed meanwhile"
        )
    p = _PERIODS.c
    closed = conn.execute(
        sa.update(_PERIODS)
        .where(p.tenant_id == tenant_id, p.id.in_(rows.close), p.status == "open")
        .values(status="closed", closed_at=now)
    ).rowcount
    if closed != len(rows.close):
        raise SubscriptionConflictError("an open period of the batch was closed meanwhile")
    # periods before the charges that point at them
    bulk_insert(conn, _PERIODS, rows.periods)
    bulk_insert(conn, _CHARGES, rows.charges)
    bulk_insert(conn, _HISTORY, rows.history)
    bulk_insert(conn, _EVENTS, rows.events)
    request_dispatch(session, tenant_id)


def _update_subscriptions(
    conn: sa.Connection, tenant_id: str, subs: list[dict[str, Any]], now: datetime
) -> int:
    if conn.dialect.name == "postgresql":
        statement = sa.text(
            "UPDATE subscriptions AS s SET updated_at = :now, "
            "current_period_start_at = v.start_at, current_period_end_at = v.end_at, "
            "next_action_at = v.end_at, last_period_seq = v.period_seq, "
            "last_history_seq = v.history_seq, version = s.version + 1 "
            "FROM unnest(CAST(:ids AS text[]), CAST(:versions AS integer[]), "
            "CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]), "
            "CAST(:period_seqs AS integer[]), CAST(:history_seqs AS integer[])) "
            "AS v(id, version, start_at, end_at, period_seq, history_seq) "
            "WHERE s.tenant_id = :tenant AND s.id = v.id AND s.version = v.version"
        )
        params = {
            "now": now,
            "tenant": tenant_id,
            "ids": [s["id"] for s in subs],
            "versions": [s["version"] for s in subs],
            "starts": [s["start_at"] for s in subs],
            "ends": [s["end_at"] for s in subs],
            "period_seqs": [s["period_seq"] for s in subs],
            "history_seqs": [s["history_seq"] for s in subs],
        }
        return int(conn.execute(statement, params).rowcount)
    c = _SUBS.c
    statement_many = (
        sa.update(_SUBS)
        .where(
            c.tenant_id == tenant_id,
            c.id == sa.bindparam("b_id"),
            c.version == sa.bindparam("b_version"),
        )
        .values(
            updated_at=now,
            current_period_start_at=sa.bindparam(
                "b_start_at", type_=c.current_period_start_at.type
            ),
            current_period_end_at=sa.bindparam("b_end_at", type_=c.current_period_end_at.type),
            next_action_at=sa.bindparam("b_next_at", type_=c.next_action_at.type),
            last_period_seq=sa.bindparam("b_period_seq"),
            last_history_seq=sa.bindparam("b_history_seq"),
            version=c.version + 1,
        )
    )
    params_many = [
        {
            "b_id": s["id"],
            "b_version": s["version"],
            "b_start_at": s["start_at"],
            "b_end_at": s["end_at"],
            "b_next_at": s["end_at"],
            "b_period_seq": s["period_seq"],
            "b_history_seq": s["history_seq"],
        }
        for s in subs
    ]
    return int(conn.execute(statement_many, params_many).rowcount)


def _forget_loaded(session: Session, ids: set[str]) -> None:
    """Subscriptions of this session's identity map that were renewed here are stale now."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Subscription) and obj.id in ids:
            session.expire(obj)
