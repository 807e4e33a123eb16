"""A short concurrent load on the production server setup: no errors under load.

gunicorn with deploy/gunicorn.conf.py serves the suite's database (SQLite and PostgreSQL; Redis
for the rate-limit counters and the queue when ABOWERK_TEST_REDIS_URL is set) to eight client
threads for a few seconds. The mix is the benchmark's (bench/bench_load.py): customer reads
and list pages, prorated subscription changes with an Idempotency-Key, invoice PDF and XML
downloads; and now and then the same change sent twice at the same moment, as a client retry
racing the original would.

What it proves: every request is answered (no connection errors), nothing is answered with a
5xx or an unexpected status, the server's log holds no customer's e-mail, and afterwards
every change that was answered 200 is in the subscription's history exactly once, duplicates
included. Throughput and latency are not
asserted here: they depend on the machine; bench/bench_load.py measures them
(docs/benchmarks.md, "HTTP load").
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.extensions import db
from tests.api.test_catalog import create_price
from tests.api.test_invoices import make_finalized
from tests.api.test_subscriptions import create_subscription
from tests.conftest import CUSTOMER, TenantCtx, make_environ
from tests.reliability.servers import gunicorn

THREADS = 8
LOAD_SECONDS = 6.0
CUSTOMERS = 20


@dataclass
class Seeded:
    customers: list[str]
    subscriptions: list[str]  # one per client thread: its changes never race another's
    invoice: str


@dataclass
class Outcome:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    applied: dict[str, set[str]] = field(default_factory=dict)  # subscription → change keys


def _seed(client: FlaskClient, tenant: TenantCtx) -> Seeded:
    customers = []
    for i in range(CUSTOMERS):
        body = {**CUSTOMER, "email": f"last{i}@example.de"}
        resp = client.post("/v1/customers", json=body, headers=tenant.headers)
        assert resp.status_code == 201, resp.json
        customers.append(resp.json["id"])
    price = create_price(client, tenant, per_seat=True)["id"]
    subscriptions = [
        create_subscription(client, tenant, price, customer_id=customers[i], quantity=2)["id"]
        for i in range(THREADS)
    ]
    invoice = make_finalized(client, tenant, customer_id=customers[-1])["id"]
    for fmt in ("pdf", "xml"):  # rendered and stored once, as the worker would have
        assert (
            client.get(f"/v1/invoices/{invoice}/{fmt}", headers=tenant.headers).status_code == 200
        )
    return Seeded(customers, subscriptions, invoice)


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> int:
    data = None if body is None else json.dumps(body)
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def _append_status(
    statuses: list[int],
    conn: http.client.HTTPConnection,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any],
) -> None:
    statuses.append(_request(conn, "POST", path, headers, body))


def _client(
    port: int, tenant: TenantCtx, seeded: Seeded, index: int, deadline: float, out: Outcome
) -> None:
    auth = {**tenant.headers, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    twin = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # for racing duplicates
    sub = seeded.subscriptions[index]
    quantity, n = 2, 0
    lock = threading.Lock()

    def record(kind: str, status: int) -> None:
        with lock:
            out.statuses[(kind, status)] += 1

    try:
        while time.monotonic() < deadline:
            n += 1
            slot = n % 20
            if slot < 13:
                customer = seeded.customers[(n * 7 + index) % len(seeded.customers)]
                record("read", _request(conn, "GET", f"/v1/customers/{customer}", auth))
            elif slot < 15:
                record("list", _request(conn, "GET", "/v1/customers?limit=10", auth))
            elif slot < 18:
                quantity = 5 - quantity  # 3, 2, 3, …: always a change
                key = f"load-{index}-{n}-{uuid.uuid4().hex[:8]}"
                body = {"quantity": quantity, "proration": "immediate"}
                headers = {**auth, "Idempotency-Key": key}
                path = f"/v1/subscriptions/{sub}/change"
                if slot == 17 and n % 3 == 0:
                    # a retry racing the original: the same key and body, at the same moment
                    statuses: list[int] = []
                    racer = threading.Thread(
                        target=_append_status, args=(statuses, twin, path, headers, body)
                    )
                    racer.start()
                    statuses.append(_request(conn, "POST", path, headers, body))
                    racer.join()
                    for status in statuses:
                        record("change-duplicate", status)
                else:
                    statuses = [_request(conn, "POST", path, headers, body)]
                    record("change", statuses[0])
                if 200 in statuses:
                    with lock:
                        out.applied.setdefault(sub, set()).add(key)
                else:
                    quantity = 5 - quantity  # not applied: the next change repeats this one
            else:
                fmt = "pdf" if slot == 18 else "xml"
                record(fmt, _request(conn, "GET", f"/v1/invoices/{seeded.invoice}/{fmt}", auth))
    except (OSError, http.client.HTTPException) as exc:
        with lock:
            out.errors.append(f"thread {index}: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
        twin.close()


ALLOWED = {
    "read": {200},
    "list": {200},
    "pdf": {200},
    "xml": {200},
    "change": {200},
    # the loser of the race is told to retry (409) or, if the winner has finished, replayed
    "change-duplicate": {200, 409},
}


def test_concurrent_mix_gets_no_errors_and_applies_each_change_once_when_under_load(
    app: Flask,
    client: FlaskClient,
    make_tenant: Any,
    database_url: str,
    tmp_path: Path,
    owner_engine: sa.Engine,
) -> None:
    tenant = make_tenant("Last GmbH")
    seeded = _seed(client, tenant)
    environ = make_environ(
        database_url,
        tmp_path / "var",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        ABOWERK_LOG_LEVEL="INFO",  # the production default: the access log is part of the cost
    )
    del environ["ABOWERK_TASKS_IMMEDIATE"]  # background work is queued, as in production
    if os.environ.get("ABOWERK_TEST_REDIS_URL"):
        environ["ABOWERK_REDIS_URL"] = os.environ["ABOWERK_TEST_REDIS_URL"]
    (tmp_path / "prometheus").mkdir()
    out = Outcome()
    with (tmp_path / "gunicorn.log").open("wb") as log, gunicorn(environ, log=log) as (port, _):
        deadline = time.monotonic() + LOAD_SECONDS
        threads = [
            threading.Thread(target=_client, args=(port, tenant, seeded, i, deadline, out))
            for i in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=LOAD_SECONDS + 60)
    log_text = (tmp_path / "gunicorn.log").read_text(errors="replace")

    assert out.errors == [], "\n".join(out.errors) + "\n" + log_text[-3000:]
    unexpected = {k: v for k, v in out.statuses.items() if k[1] not in ALLOWED[k[0]]}
    assert unexpected == {}, log_text[-3000:]
    assert sum(out.statuses.values()) > 100  # it was load, not a handful of requests
    assert out.statuses[("change", 200)] > 0 and out.statuses[("pdf", 200)] > 0
    assert '"level": "error"' not in log_text
    assert "@example.de" not in log_text  # the server's own log: no customer's e-mail
    assert '"path": "/v1/customers"' in log_text  # …and it did log (JSON access lines)

    # every change answered 200 is in the history once; none is lost, none doubled
    with owner_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT subscription_id, count(*) FROM subscription_history "
                "WHERE event = 'change' GROUP BY subscription_id"
            )
        ).all()
        kept = conn.execute(
            sa.text("SELECT count(*) FROM idempotency_keys WHERE status = 'completed'")
        ).scalar_one()
    changes = dict(rows)
    for sub in seeded.subscriptions:
        assert changes.get(sub, 0) == len(out.applied.get(sub, set())), sub
    assert kept == sum(len(keys) for keys in out.applied.values())
    with app.app_context():
        db.session.remove()
