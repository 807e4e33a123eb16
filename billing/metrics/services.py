"""Keeping the MRR movement ledger: incrementally after history is written, or rebuilt whole.

- `sync_ledger(session, tenant_id, now=…)` runs after every commit that recorded events
  (the worker's `sync_metrics` task; subscriptions do not know it exists) and every few
  minutes. It finds the customers with history rows it has not consumed yet, recomputes their
  movements from all of their history with the pure rules (`movements_from_deltas`) and
  writes only the difference: rows that stay the same keep their ids. History ids are ordered
  by the wall-clock millisecond they were made in, not by commit, so a transaction that
  commits after a later one leaves a row behind the cursor: each run reads `RESCAN` back from
  the cursor and takes the ids there that it has not consumed (the cursor keeps the consumed
  ids of that window). A transaction open longer than `RESCAN` would be missed; the
  ledger-vs-state reconciliation shows it, and a rebuild repairs it.
- `rebuild_ledger(session, tenant_id, now=…)` replaces the tenant's ledger by the set-based
  SQL of `billing.metrics.sql` (on PostgreSQL a single `INSERT … SELECT`).

Both lock the tenant's cursor row first, so two builders of one tenant never interleave. They
flush and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from billing.metrics.models import LEDGER_CURSOR, MetricsCursor, MrrMovement
from billing.metrics.months import Month
from billing.metrics.movements import Delta, Movement, movements_from_deltas
from billing.metrics.sql import movements_select
from saas.catalog.models import Price
from saas.kernel.tenancy import current_tenant
from saas.subscriptions.models import Subscription, SubscriptionHistory
from saas.tenants.models import Tenant

LEDGER = cast(sa.Table, MrrMovement.__table__)
HISTORY = cast(sa.Table, SubscriptionHistory.__table__)
SUBSCRIPTIONS = cast(sa.Table, Subscription.__table__)
CURSORS = cast(sa.Table, MetricsCursor.__table__)

# how far behind its cursor the incremental builder reads again (longest transaction expected)
RESCAN = timedelta(minutes=10)
BATCH = 500
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # saas.kernel.ids' alphabet
_ID_TIME_CHARS = 10


@dataclass(frozen=True, slots=True)
class SyncResult:
    customers: int
    inserted: int
    deleted: int
    position: str | None


def tenant_zone(session: Session, tenant_id: str) -> ZoneInfo:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise RuntimeError(f"no tenant {tenant_id}")  # callers pass the session's own tenant
    return ZoneInfo(tenant.timezone)


def movement_id(source_id: str) -> str:
    """`mm_` + the id part of the newest history row merged into the movement (unique: each
    history row belongs to exactly one customer, currency and instant)."""
    return "mm_" + source_id[3:]


def rescan_from(position: str | None) -> str | None:
    """The smallest history id made `RESCAN` before the one at `position`."""
    if not position:
        return None
    prefix, _, rest = position.partition("_")
    millis = 0
    for char in rest[:_ID_TIME_CHARS]:
        millis = millis * 32 + _B32.index(char)
    millis = max(0, millis - int(RESCAN.total_seconds() * 1000))
    chars = []
    for _ in range(_ID_TIME_CHARS):
        millis, rem = divmod(millis, 32)
        chars.append(_B32[rem])
    return f"{prefix}_{''.join(reversed(chars))}"


def _check_session(session: Session, tenant_id: str) -> None:
    if current_tenant(session) != tenant_id:
        raise ValueError("the session is scoped to another tenant")


def _lock_cursor(session: Session, tenant_id: str, now: datetime) -> MetricsCursor:
    dialect = session.connection().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(CURSORS)
        .values(tenant_id=tenant_id, id=LEDGER_CURSOR, position=None, recent=[], updated_at=now)
        .on_conflict_do_nothing()
    )
    return session.scalars(
        sa.select(MetricsCursor)
        .where(MetricsCursor.tenant_id == tenant_id, MetricsCursor.id == LEDGER_CURSOR)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _row(
    tenant_id: str, livemode: bool, mv: Movement, zone: ZoneInfo, now: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "id": movement_id(mv.source_id),
        "livemode": livemode,
        "customer_id": mv.customer_id,
        "currency": mv.currency,
        "occurred_at": mv.at,
        "month": Month.of(mv.at, zone).first_day,
        "kind": mv.kind.value,
        "amount": mv.amount,
        "mrr_before": mv.mrr_before,
        "mrr_after": mv.mrr_after,
        "recorded_at": now,
    }


_CONTENT = ("livemode", "customer_id", "currency", "occurred_at", "month", "kind", "amount",
            "mrr_before", "mrr_after")  # fmt: skip


def customer_movements(
    session: Session, tenant_id: str, customer_ids: Sequence[str]
) -> dict[bool, list[Movement]]:
    """The movements of these customers from all their history, by mode (pure rules)."""
    subs = sa.select(SUBSCRIPTIONS.c.id).where(
        SUBSCRIPTIONS.c.tenant_id == tenant_id, SUBSCRIPTIONS.c.customer_id.in_(customer_ids)
    )
    rows = session.execute(
        sa.select(
            HISTORY.c.id,
            HISTORY.c.livemode,
            HISTORY.c.customer_id,
            HISTORY.c.currency,
            HISTORY.c.occurred_at,
            HISTORY.c.mrr_before,
            HISTORY.c.mrr_after,
        ).where(
            HISTORY.c.tenant_id == tenant_id,
            HISTORY.c.subscription_id.in_(subs),
            HISTORY.c.mrr_after != HISTORY.c.mrr_before,
        )
    ).all()
    deltas: dict[bool, list[Delta]] = defaultdict(list)
    for r in rows:
        deltas[bool(r.livemode)].append(
            Delta(r.customer_id, r.currency, r.occurred_at, r.mrr_after - r.mrr_before, r.id)
        )
    return {mode: movements_from_deltas(ds) for mode, ds in deltas.items()}


def _sync_customers(
    session: Session, tenant_id: str, customer_ids: Sequence[str], zone: ZoneInfo, now: datetime
) -> tuple[int, int]:
    wanted: dict[str, dict[str, Any]] = {}
    for mode, movements in customer_movements(session, tenant_id, customer_ids).items():
        for mv in movements:
            row = _row(tenant_id, mode, mv, zone, now)
            wanted[row["id"]] = row
    existing = {
        r.id: r
        for r in session.execute(
            sa.select(LEDGER.c.id, *(LEDGER.c[name] for name in _CONTENT)).where(
                LEDGER.c.tenant_id == tenant_id, LEDGER.c.customer_id.in_(customer_ids)
            )
        )
    }
    stale = [
        row_id
        for row_id, r in existing.items()
        if row_id not in wanted or any(getattr(r, k) != wanted[row_id][k] for k in _CONTENT)
    ]
    fresh = [row for row_id, row in wanted.items() if row_id not in existing or row_id in stale]
    if stale:
        session.execute(
            sa.delete(LEDGER).where(LEDGER.c.tenant_id == tenant_id, LEDGER.c.id.in_(stale))
        )
    if fresh:
        session.execute(sa.insert(LEDGER), fresh)
    return len(fresh), len(stale)


def _batches(items: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def unconsumed_history(
    session: Session, tenant_id: str, cursor: MetricsCursor
) -> tuple[list[tuple[str, str]], list[str]]:
    """History rows (id, customer_id) the ledger has not consumed: newer than the cursor, or
    within the rescan window and not in `recent`; and every id of the window (the new
    `recent`)."""
    stmt = sa.select(HISTORY.c.id, HISTORY.c.customer_id).where(HISTORY.c.tenant_id == tenant_id)
    since = rescan_from(cursor.position)
    if since is not None:
        stmt = stmt.where(HISTORY.c.id >= since)
    rows = [(str(r.id), str(r.customer_id)) for r in session.execute(stmt)]
    seen = set(cursor.recent or [])
    new = [r for r in rows if r[0] not in seen]
    return new, [r[0] for r in rows]


def sync_ledger(session: Session, tenant_id: str, *, now: datetime) -> SyncResult:
    """Bring the ledger up to the tenant's history (see the module docstring)."""
    _check_session(session, tenant_id)
    cursor = _lock_cursor(session, tenant_id, now)
    new, window = unconsumed_history(session, tenant_id, cursor)
    if not new:
        return SyncResult(0, 0, 0, cursor.position)
    customers = sorted({customer for _, customer in new})
    zone = tenant_zone(session, tenant_id)
    inserted = deleted = 0
    for batch in _batches(customers):
        i, d = _sync_customers(session, tenant_id, batch, zone, now)
        inserted += i
        deleted += d
    position = max([*window, cursor.position or ""])
    since = rescan_from(position) or ""
    cursor.position = position
    cursor.recent = sorted(i for i in window if i >= since)
    cursor.updated_at = now
    session.flush()
    return SyncResult(len(customers), inserted, deleted, cursor.position)


def rebuild_ledger(session: Session, tenant_id: str, *, now: datetime) -> int:
    """Replace the tenant's ledger (both modes) by the movements of its whole history,
    computed set-based in SQL. Returns the number of movements."""
    _check_session(session, tenant_id)
    cursor = _lock_cursor(session, tenant_id, now)
    zone = tenant_zone(session, tenant_id)
    newest = session.scalar(
        sa.select(sa.func.max(HISTORY.c.id)).where(HISTORY.c.tenant_id == tenant_id)
    )
    session.execute(sa.delete(LEDGER).where(LEDGER.c.tenant_id == tenant_id))
    postgres = session.connection().dialect.name == "postgresql"
    select = movements_select(
        HISTORY, where=[HISTORY.c.tenant_id == tenant_id], month_zone=zone.key if postgres else None
    )
    if postgres:
        m = select.subquery("m")
        columns = [
            "tenant_id", "id", "livemode", "customer_id", "currency", "occurred_at", "month",
            "kind", "amount", "mrr_before", "mrr_after", "recorded_at",
        ]  # fmt: skip
        source = sa.select(
            sa.literal(tenant_id, sa.String()),
            sa.literal("mm_") + sa.func.substr(m.c.source_id, 4),
            m.c.livemode,
            m.c.customer_id,
            m.c.currency,
            m.c.occurred_at,
            m.c.month,
            m.c.kind,
            m.c.amount,
            m.c.mrr_before,
            m.c.mrr_after,
            sa.literal(now, LEDGER.c.recorded_at.type),
        )
        session.execute(sa.insert(LEDGER).from_select(columns, source))
        count = session.scalar(
            sa.select(sa.func.count()).select_from(LEDGER).where(LEDGER.c.tenant_id == tenant_id)
        )
    else:
        rows = [
            {
                "tenant_id": tenant_id,
                "id": movement_id(r.source_id),
                "livemode": bool(r.livemode),
                "customer_id": r.customer_id,
                "currency": r.currency,
                "occurred_at": r.occurred_at,
                "month": Month.of(r.occurred_at, zone).first_day,
                "kind": r.kind,
                "amount": r.amount,
                "mrr_before": r.mrr_before,
                "mrr_after": r.mrr_after,
                "recorded_at": now,
            }
            for r in session.execute(select)
        ]
        if rows:
            session.execute(sa.insert(LEDGER), rows)
        count = len(rows)
    cursor.position = newest
    since = rescan_from(newest)
    cursor.recent = (
        list(
            session.scalars(
                sa.select(HISTORY.c.id)
                .where(HISTORY.c.tenant_id == tenant_id, HISTORY.c.id >= since)
                .order_by(HISTORY.c.id)
            )
        )
        if since is not None
        else []
    )
    cursor.updated_at = now
    session.flush()
    return int(count or 0)


_PRICES = Price.__table__


def price_terms(session: Session, tenant_id: str) -> dict[str, tuple[int, bool, str]]:
    """Per price id of the tenant: (unit amount, per seat, billing interval)."""
    return {
        r.id: (int(r.unit_amount), bool(r.per_seat), str(r.billing_interval))
        for r in session.execute(
            sa.select(
                _PRICES.c.id, _PRICES.c.unit_amount, _PRICES.c.per_seat, _PRICES.c.billing_interval
            ).where(_PRICES.c.tenant_id == tenant_id)
        )
    }
