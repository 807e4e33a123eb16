"""The ledger on the database: the set-based SQL equals the pure rules on random data (both
backends, and PostgreSQL's months in the tenant's zone equal Python's), the operator
commands rebuild and reconcile, and the reconciliation names what it finds."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.metrics.models import LEDGER_CURSOR, MetricsCursor, MrrMovement
from billing.metrics.months import Month
from billing.metrics.movements import Delta, movements_from_deltas
from billing.metrics.services import rescan_from, sync_ledger
from billing.metrics.sql import monthly_movements_select, movements_select
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.api.test_subscriptions import Shop, make_shop
from tests.conftest import TenantCtx

BERLIN = ZoneInfo("Europe/Berlin")
# around the DST changes of 2025 and midnights, so the month boundaries are exercised
START = datetime(2025, 2, 27, 20, tzinfo=UTC)


def _events(seed: int, count: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows = []
    levels: dict[str, int] = {}
    for n in range(count):
        customer = f"c{rnd.randrange(12)}"
        sub = f"{customer}-s{rnd.randrange(3)}"
        before = levels.get(sub, 0)
        after = rnd.choice([0, 0, 990, 1900, 4083, 4900, before])
        levels[sub] = after
        at = START + timedelta(hours=rnd.randrange(0, 24 * 70, 6))  # few instants: merges
        rows.append(
            {
                "id": f"sh_{n:026d}",
                "livemode": bool(rnd.random() < 0.2),
                "customer_id": customer,
                "currency": rnd.choice(["EUR", "EUR", "USD"]),
                "occurred_at": at,
                "mrr_before": before,
                "mrr_after": after,
            }
        )
    # deltas per subscription must chain in time order for MRR never to go negative
    rows.sort(key=lambda r: (r["occurred_at"], r["id"]))
    chained: dict[tuple[str, str, bool], int] = {}
    for r in rows:
        key = (r["customer_id"], r["currency"], r["livemode"])
        r["mrr_before"] = chained.get(key, 0)
        chained[key] = r["mrr_after"]
    return rows


def test_sql_movements_equal_the_pure_rules_when_run_on_random_history(
    owner_engine: sa.Engine,
) -> None:
    meta = sa.MetaData()
    table = sa.Table(
        "metrics_sql_check",
        meta,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("livemode", sa.Boolean()),
        sa.Column("customer_id", sa.String(40)),
        sa.Column("currency", sa.String(3)),
        sa.Column("occurred_at", MrrMovement.__table__.c.occurred_at.type),
        sa.Column("mrr_before", sa.BigInteger()),
        sa.Column("mrr_after", sa.BigInteger()),
    )
    rows = _events(seed=7, count=400)
    engine = owner_engine  # a scratch table: the app role may not create tables
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        table.create(conn)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
            select = movements_select(table, month_zone="Europe/Berlin" if postgres else None)
            got = {
                (r.livemode, r.customer_id, r.currency, r.occurred_at): r
                for r in conn.execute(select)
            }
            monthly = conn.execute(monthly_movements_select(select)).all() if postgres else []
    finally:
        with engine.begin() as conn:
            table.drop(conn)
    expected = {}
    for mode in (False, True):
        deltas = [
            Delta(r["customer_id"], r["currency"], r["occurred_at"],
                  r["mrr_after"] - r["mrr_before"], r["id"])
            for r in rows
            if r["livemode"] is mode and r["mrr_after"] != r["mrr_before"]
        ]  # fmt: skip
        for m in movements_from_deltas(deltas):
            expected[(mode, m.customer_id, m.currency, m.at)] = m
    assert len(expected) > 50
    assert set(got) == set(expected)
    for key, m in expected.items():
        r = got[key]
        assert (r.kind, r.amount, r.mrr_before, r.mrr_after, r.source_id) == (
            m.kind.value, m.amount, m.mrr_before, m.mrr_after, m.source_id,
        )  # fmt: skip
        if postgres:
            assert Month.of_date(r.month) == Month.of(m.at, BERLIN)
    if postgres:
        per_month: dict[tuple[Month, str], int] = {}
        for m in expected.values():
            key = (Month.of(m.at, BERLIN), m.kind.value)
            per_month[key] = per_month.get(key, 0) + m.amount
        assert {(Month.of_date(r.month), r.kind): r.amount for r in monthly} == per_month


def _scenario(client: FlaskClient, tenant: TenantCtx) -> Shop:
    shop = make_shop(client, tenant, frozen_time="2025-01-02T09:00:00Z")
    first = shop.subscribe("pro")
    shop.subscribe("starter")
    shop.advance("2025-03-10T09:00:00Z")
    assert shop.action(first["id"], "cancel", {}).status_code == 200
    return shop


def _reconcile(app: Flask, tenant: TenantCtx) -> tuple[int, list[dict[str, Any]]]:
    result = app.test_cli_runner().invoke(
        args=["metrics", "reconcile", "--tenant", tenant.tenant_id, "--from", "2025-01",
              "--to", "2025-04", "--mode", "test", "--check", "ledger_vs_state"]
    )  # fmt: skip
    return result.exit_code, [json.loads(line) for line in result.output.splitlines()]


def test_reconcile_names_the_cause_and_rebuild_repairs_when_ledger_is_damaged(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    _scenario(client, tenant)
    code, lines = _reconcile(app, tenant)
    assert code == 0, lines
    (summary,) = lines
    assert (summary["differences"], summary["unexplained"], summary["month_ends"]) == (0, 0, 4)

    # damage the ledger: drop the churn movement
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        db.session.execute(sa.delete(MrrMovement).where(MrrMovement.kind == "churn"))
        db.session.commit()
        db.session.remove()
    code, lines = _reconcile(app, tenant)
    assert code == 1
    *diffs, summary = lines
    assert [(d["month"], d["difference"], d["cause"], d["explained"]) for d in diffs] == [
        ("2025-03", 4900, "unexplained", False),
        ("2025-04", 4900, "unexplained", False),
        (None, 4900, "unexplained", False),
    ]
    assert summary["unexplained"] == 3

    # a ledger that has not caught up is explained as such
    with app.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        cursor = db.session.get(MetricsCursor, (tenant.tenant_id, LEDGER_CURSOR))
        assert cursor is not None
        cursor.position, cursor.recent = None, []
        db.session.commit()
        db.session.remove()
    code, lines = _reconcile(app, tenant)
    assert code == 0
    assert {d["cause"] for d in lines[:-1]} == {"ledger_behind"}

    rebuilt = app.test_cli_runner().invoke(
        args=["metrics", "rebuild", "--tenant", tenant.tenant_id]
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.output) == {"tenant_id": tenant.tenant_id, "movements": 3}
    code, lines = _reconcile(app, tenant)
    assert code == 0 and lines[-1]["differences"] == 0


def test_rebuild_without_tenant_covers_every_tenant_when_run(
    app: Flask, client: FlaskClient, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    _scenario(client, tenant)
    result = app.test_cli_runner().invoke(args=["metrics", "rebuild"])
    assert result.exit_code == 0, result.output
    counts = {r["tenant_id"]: r["movements"] for r in map(json.loads, result.output.splitlines())}
    assert counts == {tenant.tenant_id: 3, other_tenant.tenant_id: 0}
    unknown = app.test_cli_runner().invoke(args=["metrics", "rebuild", "--tenant", "ten_nope"])
    assert unknown.exit_code != 0 and "no tenant" in unknown.output


def test_movements_command_is_available_in_the_platform_cli_when_registered(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["metrics", "movements", "--from", "2025-01", "--to", "2025-01"],
        input='{"customer_id":"c","subscription_id":"s","at":"2025-01-05T00:00:00Z",'
        '"mrr":"10.00","currency":"EUR"}\n',
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["months"][0]["new"] == "10.00"


def test_sync_takes_a_row_committed_late_when_its_id_is_behind_the_cursor(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    _scenario(client, tenant).subscribe("business")  # newer history than the churn
    tid = tenant.tenant_id
    with app.app_context():
        session = db.session
        tenancy.set_tenant(session, tid)
        assert sync_ledger(session, tid, now=utcnow()).customers == 0  # nothing new
        # pretend the churn's history row committed after the cursor had moved past its id
        churn = session.scalars(sa.select(MrrMovement).where(MrrMovement.kind == "churn")).one()
        source = "sh_" + churn.id[3:]
        cursor = session.get(MetricsCursor, (tid, LEDGER_CURSOR))
        assert cursor is not None and cursor.position is not None and source < cursor.position
        cursor.recent = [i for i in cursor.recent if i != source]
        session.delete(churn)
        session.commit()
        result = sync_ledger(session, tid, now=utcnow())
        session.commit()
        assert (result.customers, result.inserted, result.deleted) == (1, 1, 0)
        restored = session.scalars(sa.select(MrrMovement).where(MrrMovement.kind == "churn"))
        assert [m.id for m in restored] == [churn.id]
        assert source in session.get(MetricsCursor, (tid, LEDGER_CURSOR)).recent  # type: ignore[union-attr]
        session.remove()  # type: ignore[attr-defined]


def test_rescan_starts_ten_minutes_before_the_cursor_when_computed() -> None:
    assert rescan_from(None) is None
    newer, older = "sh_01M7ZMV1PPJPPV67P48K04HXVJ", rescan_from("sh_01M7ZMV1PPJPPV67P48K04HXVJ")
    assert older is not None and older < newer and older.startswith("sh_01M7Z")
    assert rescan_from(older + "0" * 16) < older  # type: ignore[operator]
