"""Set-based renewals (`saas.subscriptions.bulk_renewal`) write exactly what the ORM path
writes: two tenants per time zone are seeded alike, one is advanced through the ORM path
only (`advance_batch(set_based=False)`), the other through the set-based path with the ORM
path for the rest; every row the advance wrote (subscriptions, periods, charges, history,
outbox events and their payloads) must be equal once generated ids are mapped to what they
stand for, and so must the invoices a billing run then makes of them."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.runs.services import advance_batch, create_runs, execute_run
from saas.extensions import db
from saas.kernel.clock import utcnow
from saas.kernel.tasks import tenant_session
from saas.subscriptions import bulk_renewal
from saas.subscriptions import services as subscriptions
from tests.api.test_catalog import create_plan, create_price, create_product
from tests.api.test_invoices import CUSTOMERS
from tests.api.test_seller_profile import put_profile
from tests.conftest import TenantCtx

# key: (price, created on (local), quantity, what happens after the creation)
SEED: dict[str, tuple[str, str, int, str]] = {
    "month_31st": ("month", "2026-01-31", 1, ""),
    "month_15th": ("month", "2026-03-15", 1, ""),
    "month_1st": ("month", "2026-02-01", 1, ""),
    "seats_28th": ("seats", "2026-02-28", 7, ""),
    "seats_30th": ("seats", "2025-12-30", 3, ""),
    "year_31may": ("year", "2025-05-31", 1, ""),
    "year_29feb": ("year", "2024-02-29", 1, ""),
    "quarter_30nov": ("quarter", "2025-11-30", 1, ""),
    "past_due": ("month", "2026-01-31", 1, "past_due"),
    "mid_change": ("seats", "2026-03-05", 2, "change_now"),
    "to_yearly": ("month", "2025-01-20", 1, "to_yearly"),
    # not plain: the ORM path takes these
    "trial": ("trial", "2026-05-20", 1, ""),
    "scheduled": ("seats", "2026-02-10", 2, "scheduled"),
    "cancels": ("month", "2026-01-31", 1, "cancel_at_end"),
    "not_due": ("year", "2026-05-01", 1, ""),
}
PLAIN = set(SEED) - {"trial", "scheduled", "cancels", "not_due"}
ZONES = ("Europe/Berlin", "America/New_York")
ID = re.compile(r"^[a-z]+_[0-9A-Z]{26}$")


def local(day: str, zone: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00").replace(tzinfo=ZoneInfo(zone))


def seed(app: Flask, client: FlaskClient, t: TenantCtx, zone: str, owner: sa.Engine) -> None:
    with owner.begin() as conn:
        conn.execute(
            sa.text("UPDATE tenants SET timezone = :z WHERE id = :t"), {"z": zone, "t": t.tenant_id}
        )
    put_profile(client, t)
    product = create_product(client, t)["id"]
    plan = create_plan(client, t, product, name="Pro")["id"]
    trial_plan = create_plan(client, t, product, name="Trial", trial_days=14)["id"]
    prices = {
        "month": create_price(client, t, plan, unit_amount=1900)["id"],
        "year": create_price(client, t, plan, unit_amount=19900, interval="year", nickname="Jahr")[
            "id"
        ],
        "quarter": create_price(client, t, plan, unit_amount=5000, interval="quarter")["id"],
        "seats": create_price(client, t, plan, unit_amount=450, per_seat=True, nickname="Platz")[
            "id"
        ],
        "trial": create_price(client, t, trial_plan, unit_amount=900)["id"],
    }
    kinds = ("de_consumer", "de_business", "fr_consumer", "at_business")
    customers = []
    for i in range(len(SEED)):
        resp = client.post("/v1/customers", json=CUSTOMERS[kinds[i % 4]], headers=t.headers)
        assert resp.status_code == 201, resp.json
        customers.append(resp.json["id"])
    with app.app_context(), tenant_session(db.engine, t.tenant_id) as session:
        for (key, (price, day, quantity, then)), customer in zip(
            SEED.items(), customers, strict=True
        ):
            now = local(day, zone)
            data = {
                "customer_id": customer,
                "price_id": prices[price],
                "quantity": quantity,
                "has_payment_method": True,
                "metadata": {"key": key},
            }
            sub = subscriptions.create_subscription(session, data, actor="test", now=now)
            later = now + timedelta(days=9)
            if then == "past_due":
                subscriptions.mark_past_due(session, sub.id, actor="test", now=later)
            elif then == "change_now":
                change = {"quantity": 5, "proration": "immediate"}
                subscriptions.change_subscription(session, sub.id, change, actor="t", now=later)
            elif then == "to_yearly":
                change = {"price_id": prices["year"], "proration": "immediate"}
                subscriptions.change_subscription(session, sub.id, change, actor="t", now=later)
            elif then == "scheduled":
                change = {"quantity": 4, "proration": "period_end"}
                subscriptions.change_subscription(session, sub.id, change, actor="t", now=later)
            elif then == "cancel_at_end":
                cancel = {"at_period_end": True}
                subscriptions.cancel_subscription(session, sub.id, cancel, actor="t", now=later)
        session.commit()


def sub_ids(app: Flask, tenant_id: str) -> list[str]:
    with app.app_context(), tenant_session(db.engine, tenant_id) as session:
        return list(
            session.scalars(
                sa.select(subscriptions.Subscription.id).order_by(subscriptions.Subscription.id)
            )
        )


def advance(app: Flask, tenant_id: str, at: datetime, *, set_based: bool) -> int:
    """Phase A over every subscription in batches of 4, as a run's batches would."""
    ids = sub_ids(app, tenant_id)
    advanced = 0
    with app.app_context():
        for i in range(0, len(ids), 4):
            with tenant_session(db.engine, tenant_id) as session:
                result = advance_batch(session, ids[i : i + 4], at=at, set_based=set_based)
                session.commit()
            advanced += result.advanced
    return advanced


def fetch(owner: sa.Engine, sql: str, tenant_id: str) -> list[dict[str, Any]]:
    with owner.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), {"t": tenant_id})]


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


class Canon:
    """A tenant's rows with generated ids replaced by what they stand for."""

    def __init__(self, owner: sa.Engine, tenant_id: str) -> None:
        self.owner, self.tenant_id = owner, tenant_id
        self.names: dict[str, str] = {tenant_id: "tenant"}
        for row in fetch(owner, "SELECT * FROM subscriptions WHERE tenant_id = :t", tenant_id):
            key = as_json(row["metadata"])["key"]
            self.names[row["id"]] = f"sub:{key}"
            self.names[row["customer_id"]] = f"customer:{key}"
        for row in fetch(owner, "SELECT * FROM prices WHERE tenant_id = :t", tenant_id):
            self.names[row["id"]] = f"price:{row['unit_amount']}:{row['billing_interval']}"
        for row in fetch(owner, "SELECT * FROM plans WHERE tenant_id = :t", tenant_id):
            self.names[row["id"]] = f"plan:{row['name']}"
        for row in fetch(owner, "SELECT * FROM products WHERE tenant_id = :t", tenant_id):
            self.names[row["id"]] = "product"
        for row in fetch(
            owner, "SELECT * FROM subscription_periods WHERE tenant_id = :t", tenant_id
        ):
            self.names[row["id"]] = f"{self.names[row['subscription_id']]}/period:{row['seq']}"

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            if value in self.names:
                return self.names[value]
            assert not ID.match(value), f"an id nobody stands for: {value}"
        return value

    def rows(self, sql: str, *, drop: tuple[str, ...] = ("id",)) -> list[str]:
        out = []
        for row in fetch(self.owner, sql, self.tenant_id):
            clean = {}
            for column, raw in row.items():
                if column in drop:
                    continue
                value = as_json(raw) if column in {"detail", "data", "metadata"} else raw
                if column == "dispatched_at":  # the delivery worker's wall clock: only whether
                    value = value is not None
                clean[column] = self.value(value)
            out.append(json.dumps(clean, sort_keys=True, default=str))
        return sorted(out)

    def advanced(self) -> dict[str, list[str]]:
        t = "WHERE tenant_id = :t"
        return {
            # `version` counts ORM flushes there and batches here: it only has to move
            "subscriptions": self.rows(f"SELECT * FROM subscriptions {t}", drop=("version",)),
            "periods": self.rows(f"SELECT * FROM subscription_periods {t}"),
            "charges": self.rows(f"SELECT * FROM subscription_charges {t}"),
            "history": self.rows(f"SELECT * FROM subscription_history {t}"),
            "events": self.rows(f"SELECT * FROM events {t} AND type LIKE 'subscription.%'"),
        }

    def invoices(self) -> dict[str, list[str]]:
        t = "WHERE tenant_id = :t"
        # numbers follow the subscription ids' order, which differs between the two tenants;
        # the snapshot and its hash carry the number, and run ids and times are the run's own
        made = ("number", "snapshot_json", "content_sha256", "billing_run_id")
        times = ("created_at", "updated_at", "finalized_at")
        for row in fetch(self.owner, f"SELECT * FROM invoices {t}", self.tenant_id):
            self.names[row["id"]] = (
                f"invoice:{self.names.get(row['subscription_id'])}:{row['period_start_on']}"
            )
        for row in fetch(self.owner, f"SELECT * FROM invoice_lines {t}", self.tenant_id):
            self.names[row["id"]] = f"{self.names[row['invoice_id']]}/line:{row['position']}"
        return {
            "invoices": self.rows(f"SELECT * FROM invoices {t}", drop=("id", *made, *times)),
            "lines": self.rows(f"SELECT * FROM invoice_lines {t}", drop=("id", "created_at")),
            "charges": self.rows(f"SELECT * FROM subscription_charges {t}", drop=("id",)),
        }


def test_set_based_renewals_write_what_the_orm_path_writes(
    app: Flask, client: FlaskClient, make_tenant: Any, owner_engine: sa.Engine
) -> None:
    at = datetime.fromisoformat("2026-06-15T12:00:00+00:00")
    for zone in ZONES:
        orm, bulk = make_tenant(f"ORM {zone}"), make_tenant(f"Bulk {zone}")
        for t in (orm, bulk):
            seed(app, client, t, zone, owner_engine)
        before = Canon(owner_engine, orm.tenant_id).advanced()
        assert before == Canon(owner_engine, bulk.tenant_id).advanced()

        # which ones the set-based path takes (in a transaction that is rolled back)
        with app.app_context(), tenant_session(db.engine, bulk.tenant_id) as session:
            ids = sub_ids(app, bulk.tenant_id)
            taken = bulk_renewal.renew_plain(session, ids, at)
            session.rollback()
        names = Canon(owner_engine, bulk.tenant_id).names
        assert {names[i] for i in taken.renewed} == {f"sub:{k}" for k in PLAIN}
        assert taken.periods > len(PLAIN)  # catch-up over several periods

        moved_orm = advance(app, orm.tenant_id, at, set_based=False)
        moved_bulk = advance(app, bulk.tenant_id, at, set_based=True)
        assert moved_orm == moved_bulk == len(SEED) - 1  # all but `not_due`
        got_orm = Canon(owner_engine, orm.tenant_id).advanced()
        got_bulk = Canon(owner_engine, bulk.tenant_id).advanced()
        assert got_orm != before
        for table in got_orm:
            assert got_bulk[table] == got_orm[table], table

        # a second advance finds nothing due on either side
        assert advance(app, bulk.tenant_id, at, set_based=True) == 0

        # phase B makes the same invoices of both
        with app.app_context():
            for t in (orm, bulk):
                _, created = create_runs(
                    db.engine, [t.tenant_id], at=at, trigger="cli", now=utcnow()
                )
                (run,) = [
                    execute_run(db.engine, tid, rid, batch_size=3, clock_now=utcnow)
                    for tid, rid in created
                ]
                assert run.status == "succeeded" and run.failed == 0
                assert run.invoices_finalized > len(SEED)
        inv_orm = Canon(owner_engine, orm.tenant_id).invoices()
        inv_bulk = Canon(owner_engine, bulk.tenant_id).invoices()
        for table in inv_orm:
            assert inv_bulk[table] == inv_orm[table], table


@pytest.mark.parametrize("set_based", [True, False])
def test_a_renewed_subscription_keeps_its_optimistic_lock_moving(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine, set_based: bool
) -> None:
    seed(app, client, tenant, "Europe/Berlin", owner_engine)
    sql = "SELECT id, version FROM subscriptions WHERE tenant_id = :t"
    versions = {r["id"]: r["version"] for r in fetch(owner_engine, sql, tenant.tenant_id)}
    advance(
        app,
        tenant.tenant_id,
        datetime.fromisoformat("2026-06-15T12:00:00+00:00"),
        set_based=set_based,
    )
    after = {r["id"]: r["version"] for r in fetch(owner_engine, sql, tenant.tenant_id)}
    names = Canon(owner_engine, tenant.tenant_id).names
    moved = {i for i in versions if after[i] > versions[i]}
    assert {names[i] for i in moved} == {f"sub:{k}" for k in SEED if k != "not_due"}
