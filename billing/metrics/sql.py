"""The movement rules and the monthly aggregates as set-based SQL (SQLAlchemy Core).

Vetted raw-SQL module: every function takes `tenant_id` (and the mode) and filters on it,
since Core statements bypass the ORM's tenant scoping; on PostgreSQL row-level security is
the second wall.

`movements_select` is `billing.metrics.movements.movements_from_deltas` in SQL, over any table
shaped like `subscription_history` (`customer_id`, `currency`, `occurred_at`, `mrr_before`,
`mrr_after`, `id`, optionally `livemode`):

1. keep the rows that change a subscription's MRR and merge them per customer, currency and
   instant (`GROUP BY … HAVING sum(delta) <> 0`: a net-zero switch is no movement);
2. per customer and currency, in time order, the running sum of the deltas is the customer's
   MRR after each change (a), a − delta the MRR before (b), and the row number tells the
   first change: since MRR starts at 0 and never goes below it, the first change is the first
   time the customer had MRR, so b = 0 is `new` there and `reactivation` anywhere later;
3. classify with CASE, as in the table of `movements`.

The same statement rebuilds the ledger (`services.rebuild_ledger`) and is what
`bench/bench_metrics.py` times on 10M events. On PostgreSQL it also computes the month in the
tenant's zone; SQLite has no time zones, so there the caller derives the month from the
instant (`Month.of`). Tests check that this SQL and the Python rules give identical rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from billing.metrics.movements import ACTIVATING, Kind

BIGINT = sa.BigInteger()


def month_expression(instant: Any, zone: str) -> Any:
    """PostgreSQL: the first day of the month of `instant` in `zone`."""
    return sa.cast(sa.func.date_trunc("month", sa.func.timezone(zone, instant)), sa.Date)


def movements_select(
    source: sa.FromClause,
    *,
    where: list[Any] | None = None,
    month_zone: str | None = None,
) -> sa.Select[Any]:
    """One row per movement: [livemode,] customer_id, currency, occurred_at, kind, amount,
    mrr_before, mrr_after, source_id[, month]. `month_zone` (PostgreSQL only) adds `month`."""
    c = source.c
    mode = [c.livemode] if "livemode" in c else []
    delta = c.mrr_after - c.mrr_before
    changes = (
        sa.select(
            *mode,
            c.customer_id,
            c.currency,
            c.occurred_at,
            sa.cast(sa.func.sum(delta), BIGINT).label("delta"),
            sa.func.max(c.id).label("source_id"),
        )
        .where(c.mrr_after != c.mrr_before, *(where or []))
        .group_by(*mode, c.customer_id, c.currency, c.occurred_at)
        .having(sa.func.sum(delta) != 0)
        .subquery("changes")
    )
    ch = changes.c
    partition = [*([ch.livemode] if mode else []), ch.customer_id, ch.currency]
    window: dict[str, Any] = {
        "partition_by": partition,
        "order_by": ch.occurred_at,
        "rows": (None, 0),
    }
    series = sa.select(
        *partition,
        ch.occurred_at,
        ch.delta,
        ch.source_id,
        sa.cast(sa.func.sum(ch.delta).over(**window), BIGINT).label("mrr_after"),
        sa.func.row_number().over(**window).label("n"),
    ).subquery("series")
    s = series.c
    before = s.mrr_after - s.delta
    kind = sa.case(
        (sa.and_(before == 0, s.n == 1), Kind.NEW.value),
        (before == 0, Kind.REACTIVATION.value),
        (s.mrr_after == 0, Kind.CHURN.value),
        (s.delta > 0, Kind.EXPANSION.value),
        else_=Kind.CONTRACTION.value,
    )
    columns: list[Any] = [
        *([s.livemode] if mode else []),
        s.customer_id,
        s.currency,
        s.occurred_at,
        kind.label("kind"),
        s.delta.label("amount"),
        sa.cast(before, BIGINT).label("mrr_before"),
        s.mrr_after,
        s.source_id,
    ]
    if month_zone is not None:
        columns.append(month_expression(s.occurred_at, month_zone).label("month"))
    return sa.select(*columns)


def monthly_movements_select(movements: sa.Select[Any]) -> sa.Select[Any]:
    """`GROUP BY month, kind` over `movements_select(…, month_zone=…)` (the benchmark's
    result): month, kind, movements, amount."""
    m = movements.subquery("movements")
    return (
        sa.select(
            m.c.month,
            m.c.kind,
            sa.func.count().label("movements"),
            sa.cast(sa.func.sum(m.c.amount), BIGINT).label("amount"),
        )
        .group_by(m.c.month, m.c.kind)
        .order_by(m.c.month, m.c.kind)
    )


# --- reports on the ledger ----------------------------------------------------------------


def _ledger_scope(ledger: sa.Table, tenant_id: str, livemode: bool) -> list[Any]:
    return [ledger.c.tenant_id == tenant_id, ledger.c.livemode == livemode]


def _activity(kind: Any) -> Any:
    """+1 when a movement makes the customer count, −1 when it stops counting."""
    return sa.case(
        (kind.in_([k.value for k in ACTIVATING]), 1),
        (kind == Kind.CHURN.value, -1),
        else_=0,
    )


def opening_select(ledger: sa.Table, tenant_id: str, livemode: bool, first: date) -> Any:
    """Per currency, from each customer's last movement before `first`: the MRR at `first`'s
    start (summed `mrr_after`, the customers' state, not the amounts) and the customers with
    MRR > 0."""
    ranked = (
        sa.select(
            ledger.c.currency,
            ledger.c.mrr_after,
            sa.func.row_number()
            .over(
                partition_by=[ledger.c.currency, ledger.c.customer_id],
                order_by=ledger.c.occurred_at.desc(),
            )
            .label("r"),
        )
        .where(*_ledger_scope(ledger, tenant_id, livemode), ledger.c.month < first)
        .subquery("ranked")
    )
    return (
        sa.select(
            ranked.c.currency,
            sa.cast(sa.func.sum(ranked.c.mrr_after), BIGINT).label("mrr"),
            sa.func.count().filter(ranked.c.mrr_after > 0).label("customers"),
        )
        .where(ranked.c.r == 1)
        .group_by(ranked.c.currency)
    )


def month_kind_select(
    ledger: sa.Table, tenant_id: str, livemode: bool, first: date, last: date
) -> Any:
    """Per currency, month and kind: movements, distinct customers and the amount."""
    return (
        sa.select(
            ledger.c.currency,
            ledger.c.month,
            ledger.c.kind,
            sa.func.count().label("movements"),
            sa.func.count(sa.distinct(ledger.c.customer_id)).label("customers"),
            sa.cast(sa.func.sum(ledger.c.amount), BIGINT).label("amount"),
        )
        .where(
            *_ledger_scope(ledger, tenant_id, livemode),
            ledger.c.month >= first,
            ledger.c.month <= last,
        )
        .group_by(ledger.c.currency, ledger.c.month, ledger.c.kind)
    )


def net_change_select(
    ledger: sa.Table, tenant_id: str, livemode: bool, first: date, last: date
) -> Any:
    """Per currency and month: Σ over customers of (MRR after their last movement of the
    month − MRR before their first), the check the identity is held against."""
    part = [ledger.c.currency, ledger.c.month, ledger.c.customer_id]
    ranked = (
        sa.select(
            ledger.c.currency,
            ledger.c.month,
            ledger.c.mrr_before,
            ledger.c.mrr_after,
            sa.func.row_number()
            .over(partition_by=part, order_by=ledger.c.occurred_at)
            .label("first"),
            sa.func.row_number()
            .over(partition_by=part, order_by=ledger.c.occurred_at.desc())
            .label("last"),
        )
        .where(
            *_ledger_scope(ledger, tenant_id, livemode),
            ledger.c.month >= first,
            ledger.c.month <= last,
        )
        .subquery("ranked")
    )
    r = ranked.c
    change = sa.case((r.last == 1, r.mrr_after), else_=0) - sa.case(
        (r.first == 1, r.mrr_before), else_=0
    )
    return sa.select(
        r.currency, r.month, sa.cast(sa.func.sum(change), BIGINT).label("net_change")
    ).group_by(r.currency, r.month)


def cohort_select(ledger: sa.Table, tenant_id: str, livemode: bool, first: date, last: date) -> Any:
    """Per currency, cohort (the month of the customer's `new` movement) and month up to
    `last`: the cohort's summed amounts and activity (+1 back, −1 churned), and in the cohort
    month the number and MRR of its new customers."""
    scope = _ledger_scope(ledger, tenant_id, livemode)
    cohorts = (
        sa.select(
            ledger.c.currency,
            ledger.c.customer_id,
            sa.func.min(ledger.c.month).label("cohort"),
        )
        .where(*scope, ledger.c.kind == Kind.NEW.value)
        .group_by(ledger.c.currency, ledger.c.customer_id)
        .subquery("cohorts")
    )
    is_new = ledger.c.kind == Kind.NEW.value
    return (
        sa.select(
            ledger.c.currency,
            cohorts.c.cohort,
            ledger.c.month,
            sa.cast(sa.func.sum(ledger.c.amount), BIGINT).label("amount"),
            sa.cast(sa.func.sum(_activity(ledger.c.kind)), BIGINT).label("activity"),
            sa.func.count().filter(is_new).label("new_customers"),
            sa.cast(
                sa.func.coalesce(sa.func.sum(sa.case((is_new, ledger.c.amount))), 0), BIGINT
            ).label("new_mrr"),
        )
        .join(
            cohorts,
            sa.and_(
                cohorts.c.currency == ledger.c.currency,
                cohorts.c.customer_id == ledger.c.customer_id,
            ),
        )
        .where(*scope, cohorts.c.cohort >= first, cohorts.c.cohort <= last, ledger.c.month <= last)
        .group_by(ledger.c.currency, cohorts.c.cohort, ledger.c.month)
    )
