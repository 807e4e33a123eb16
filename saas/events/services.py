"""Recording events. Callers pass the session of the change itself (same transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from saas.events.models import Event
from saas.kernel.db import table_of
from saas.kernel.direct import DirectWrite
from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_livemode, current_tenant

# Event types by family; webhook endpoints subscribe to types or to `family.*`.
EVENT_TYPES = frozenset(
    {
        "customer.created",
        "customer.updated",
        "subscription.created",
        "subscription.updated",
        "subscription.trial_will_end",
        "subscription.canceled",
        "subscription.paused",
        "subscription.resumed",
        "subscription.renewed",
        "subscription.past_due",
        "dunning.retry_scheduled",
        "dunning.recovered",
        "dunning.exhausted",
        "gdpr.request.created",
        "gdpr.request.identity_pending",
        "gdpr.request.in_progress",
        "gdpr.request.extended",
        "gdpr.request.completed",
        "gdpr.request.rejected",
        "gdpr.request.due_soon",
        "gdpr.request.overdue",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.marked_uncollectible",
        "invoice.voided",
        "credit_note.created",
        "tax.threshold.approaching",
        "tax.threshold.crossed",
        "payment.succeeded",
        "payment.failed",
        "payment.refunded",
    }
)

COMMITTED_EVENTS_KEY = "abowerk.committed_events"
_PENDING_KEY = "abowerk.pending_events"


def emit_event(
    session: Session,
    type_: str,
    data: dict[str, Any],
    *,
    now: datetime,
    livemode: bool | None = None,
) -> Event:
    """Add an event to the session (no flush: it goes in with the change it describes).

    `livemode` defaults to the credential's mode; background work passes the object's mode.
    """
    event = Event(**_row(session, type_, data, now=now, livemode=livemode))
    session.add(event)
    session.info.setdefault(_PENDING_KEY, []).append((event.tenant_id, event.id))
    return event


def insert_event(
    session: Session,
    type_: str,
    data: dict[str, Any],
    *,
    now: datetime,
    livemode: bool | None = None,
) -> str:
    """Write an event at once, as a Core INSERT in the session's transaction, and return its
    id. The same row and dispatch as `emit_event`, without an ORM object and its flush: for
    hot paths that write their other rows the same way (a subscription change)."""
    row = _row(session, type_, data, now=now, livemode=livemode)
    _INSERT.execute(session, row)
    session.info.setdefault(_PENDING_KEY, []).append((row["tenant_id"], row["id"]))
    return str(row["id"])


_EVENTS = table_of(Event)
_INSERT = DirectWrite(sa.insert(_EVENTS))  # through the driver: saas.kernel.direct


def _row(
    session: Session, type_: str, data: dict[str, Any], *, now: datetime, livemode: bool | None
) -> dict[str, Any]:
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}: add it to EVENT_TYPES")
    mode = current_livemode(session) if livemode is None else livemode
    return {
        "id": new_id("evt"),
        "tenant_id": current_tenant(session),
        "livemode": bool(mode),
        "type": type_,
        "data": data,
        "created_at": now,
    }


def request_dispatch(session: Session, tenant_id: str) -> None:
    """Ask for a delivery run after this transaction commits, without a new event (e.g. a
    manual redelivery)."""
    session.info.setdefault(_PENDING_KEY, []).append((tenant_id, None))


def register_type(type_: str) -> None:
    """For packages that add event families (invoices, payments, GDPR)."""
    global EVENT_TYPES  # noqa: PLW0603  (an extension point, filled at import time)
    EVENT_TYPES = EVENT_TYPES | {type_}


def _after_commit(session: Session) -> None:
    # SQLAlchemy fires this for a released SAVEPOINT too: the outer transaction still holds
    # the events (and, on SQLite, the write lock), so only the outermost commit dispatches
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        for hook in _COMMIT_HOOKS:
            hook({tenant for tenant, _ in pending})


def _after_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT rolled back: events emitted before it are still to commit
    session.info.pop(_PENDING_KEY, None)


_COMMIT_HOOKS: list[Any] = []


def on_events_committed(hook: Any) -> None:
    """Register a callable receiving the set of tenant ids that committed new events.

    The webhook layer registers its delivery trigger here, so this package imports nothing
    above it. Registering the same hook twice has no effect (modules may be imported again).
    """
    if hook not in _COMMIT_HOOKS:
        _COMMIT_HOOKS.append(hook)


def install(session_class: type[Session]) -> None:
    if sa_event.contains(session_class, "after_commit", _after_commit):
        return
    sa_event.listen(session_class, "after_commit", _after_commit)
    sa_event.listen(session_class, "after_rollback", _after_rollback)
