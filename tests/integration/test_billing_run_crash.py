"""Billing runs under faults, on PostgreSQL: a run killed with SIGKILL in the middle and
started again ends with exactly the invoices of an uninterrupted run on an identical seed,
and two runs at once invoice every subscription period exactly once.

The runs are real `abowerk billing run` processes against the test database, with small
batches (`--batch-size`) so that a run commits many batches before it is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.kernel.clock import utcnow
from tests.api.test_catalog import create_price
from tests.api.test_invoices import CUSTOMERS
from tests.api.test_seller_profile import put_profile
from tests.conftest import POSTGRES_ONLY, TenantCtx, make_environ

SUBSCRIPTIONS = 60
KINDS = ("de_consumer", "de_business", "at_business", "fr_consumer")


def seed(client: FlaskClient, t: TenantCtx) -> None:
    """The same subscriptions for every tenant it is called for, in the same order."""
    put_profile(client, t)
    prices = [create_price(client, t, unit_amount=amount)["id"] for amount in (1900, 4900)]
    for i in range(SUBSCRIPTIONS):
        customer = client.post("/v1/customers", json=CUSTOMERS[KINDS[i % 4]], headers=t.headers)
        assert customer.status_code == 201, customer.json
        body = {
            "customer_id": customer.json["id"],
            "price_id": prices[i % 2],
            "has_payment_method": True,
        }
        sub = client.post("/v1/subscriptions", json=body, headers=t.headers)
        assert sub.status_code == 201, sub.json


def billing_run(
    database_url: str, var_dir: Path, tenant_id: str, at: str, *, batch_size: int = 4
) -> subprocess.Popen[bytes]:
    environ = make_environ(database_url, var_dir)
    environ.pop("ABOWERK_TASKS_IMMEDIATE")  # documents are queued, as in production
    abowerk = str(Path(sys.executable).parent / "abowerk")
    return subprocess.Popen(
        [abowerk, "billing", "run", "--tenant", tenant_id, "--at", at],
        env={**os.environ, **environ, "ABOWERK_BILLING_BATCH_SIZE": str(batch_size)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[bytes]) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


def invoices(engine: sa.Engine, tenant_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(
                    "SELECT i.number, i.period_start_on, i.net_minor, i.vat_minor, i.gross_minor, "
                    "i.subscription_id, c.email FROM invoices i JOIN customers c "
                    "ON c.tenant_id = i.tenant_id AND c.id = i.customer_id "
                    "WHERE i.tenant_id = :t AND i.kind = 'invoice' ORDER BY i.number"
                ),
                {"t": tenant_id},
            )
        ]


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def check_exactly_once(engine: sa.Engine, tenant_id: str) -> list[dict[str, Any]]:
    got = invoices(engine, tenant_id)
    keys = Counter((i["subscription_id"], i["period_start_on"]) for i in got)
    assert all(n == 1 for n in keys.values())
    # one year, one series: 1 … n without a gap
    assert sorted(int(i["number"].rsplit("-", 1)[1]) for i in got) == list(range(1, len(got) + 1))
    pending = scalar(
        engine,
        "SELECT count(*) FROM subscription_charges WHERE tenant_id = :t AND invoiced_at IS NULL",
        t=tenant_id,
    )
    assert pending == 0
    return got


def shape(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must match between two tenants seeded alike (ids differ)."""
    return sorted(
        (i["period_start_on"], i["net_minor"], i["vat_minor"], i["gross_minor"], i["email"])
        for i in rows
    )


@POSTGRES_ONLY
def test_killed_run_resumes_to_the_invoices_of_an_uninterrupted_run_when_started_again(
    app: Flask,
    client: FlaskClient,
    make_tenant: Any,
    owner_engine: sa.Engine,
    database_url: str,
    tmp_path: Path,
) -> None:
    killed, whole = make_tenant("Abgebrochen GmbH"), make_tenant("Durchgelaufen GmbH")
    seed(client, killed)
    seed(client, whole)
    # 35 days on: every subscription renews once, so each owes two periods
    at = (utcnow() + timedelta(days=35)).isoformat()

    proc = billing_run(database_url, tmp_path, killed.tenant_id, at)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done = scalar(
            owner_engine,
            "SELECT coalesce(max(batches_done), 0) FROM billing_runs WHERE tenant_id = :t",
            t=killed.tenant_id,
        )
        # past phase A (15 batches) and into the invoicing
        if done >= 20:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    partial = invoices(owner_engine, killed.tenant_id)
    assert 0 < len(partial) < 2 * SUBSCRIPTIONS
    status = scalar(
        owner_engine, "SELECT status FROM billing_runs WHERE tenant_id = :t", t=killed.tenant_id
    )
    assert status == "running"  # it never got to say otherwise

    finish(billing_run(database_url, tmp_path, killed.tenant_id, at))
    finish(billing_run(database_url, tmp_path, whole.tenant_id, at))

    resumed = check_exactly_once(owner_engine, killed.tenant_id)
    uninterrupted = check_exactly_once(owner_engine, whole.tenant_id)
    assert len(resumed) == len(uninterrupted) == 2 * SUBSCRIPTIONS
    assert shape(resumed) == shape(uninterrupted)
    # every invoice the killed run committed is still there, unchanged
    assert {i["number"] for i in partial} <= {i["number"] for i in resumed}


@POSTGRES_ONLY
def test_every_period_is_invoiced_once_when_two_runs_race(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    owner_engine: sa.Engine,
    database_url: str,
    tmp_path: Path,
) -> None:
    seed(client, tenant)
    at = (utcnow() + timedelta(days=35)).isoformat()
    first = billing_run(database_url, tmp_path, tenant.tenant_id, at, batch_size=3)
    second = billing_run(database_url, tmp_path, tenant.tenant_id, at, batch_size=3)
    finish(first)
    finish(second)
    got = check_exactly_once(owner_engine, tenant.tenant_id)
    assert len(got) == 2 * SUBSCRIPTIONS
    totals = scalar(
        owner_engine,
        "SELECT sum(invoices_finalized) FROM billing_runs WHERE tenant_id = :t",
        t=tenant.tenant_id,
    )
    assert totals == 2 * SUBSCRIPTIONS  # the two runs shared the work, none did it twice
    advanced = scalar(
        owner_engine,
        "SELECT count(*) FROM subscription_history WHERE tenant_id = :t AND event = 'renew'",
        t=tenant.tenant_id,
    )
    assert advanced == SUBSCRIPTIONS


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
