"""Faults in the middle of work: processes killed with SIGKILL, database connections cut.

Each test stops real work at a known point (a webhook receiver that holds the request, a
table lock the request waits on), injects the fault, and checks what a restart finds:
nothing half-written, nothing lost, nothing done twice, and the next request succeeds.

- A worker killed while it sends a webhook: the delivery's lease keeps it from being sent
  twice at once; once the lease has run out the delivery goes again with the same
  `webhook-id` (at least once, docs/webhooks.md), and a receiver that drops duplicates by that
  id processes the event exactly once.
- A web worker killed while it builds a GDPR export: the ZIP it had written belongs to no
  committed export (the sweeper deletes such orphans); the request is unchanged and the
  next fulfilment produces one export with one link.
- The PostgreSQL connection of a request terminated between its writes
  (`pg_terminate_backend`): the request answers 503, none of its writes is kept, the same
  Idempotency-Key can be retried at once, and the retry applies the change exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from saas import worker
from saas.app import create_app
from saas.extensions import db
from saas.kernel.clock import utcnow
from saas.webhooks.delivery import deliver_for_tenant
from saas.webhooks.services import LEASE
from tests.api.test_catalog import create_price
from tests.api.test_gdpr_requests import new_customer, verified_request
from tests.api.test_subscriptions import create_subscription
from tests.conftest import CUSTOMER, POSTGRES_ONLY, TenantCtx, make_environ
from tests.reliability.servers import gunicorn, start_worker, stop


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _queued_environ(database_url: str, var_dir: Path) -> dict[str, str]:
    """The suite's database, with background work queued for a worker (not run inline)."""
    environ = make_environ(database_url, var_dir)
    del environ["ABOWERK_TASKS_IMMEDIATE"]
    return environ


def _worker_pid(master: subprocess.Popen[bytes]) -> int:
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    assert len(children) == 1, children  # WEB_CONCURRENCY=1
    return int(children[0])


# --- webhooks -------------------------------------------------------------------------------


@dataclass
class DedupReceiver:
    """A webhook receiver that verifies signatures and processes each `webhook-id` once, as
    docs/webhooks.md asks receivers to; the first request can be held (the sender waits)."""

    secret: str = ""
    url: str = ""
    seen: list[str] = field(default_factory=list)  # webhook-id of every request received
    processed: list[str] = field(default_factory=list)  # …of every event processed
    hold_first: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


def _signed(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """The Standard Webhooks signature check alone: its clock-skew check would refuse the
    retry below, which runs on a clock moved past the lease while this receiver's is not."""
    stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], stamp, body.decode())
    return expected in headers["webhook-signature"].split(" ")


@contextmanager
def dedup_receiver() -> Iterator[DedupReceiver]:
    receiver = DedupReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            assert _signed(receiver.secret, body, headers)
            webhook_id = headers["webhook-id"]
            first = not receiver.seen
            receiver.seen.append(webhook_id)
            if first and receiver.hold_first.is_set():
                receiver.released.wait(timeout=60)  # the sender is killed meanwhile
                return
            if webhook_id not in receiver.processed:
                receiver.processed.append(webhook_id)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()


def test_webhook_goes_again_with_the_same_id_and_is_processed_once_when_worker_killed_mid_send(
    app: Flask,
    make_tenant: Any,
    database_url: str,
    tmp_path: Path,
    owner_engine: sa.Engine,
) -> None:
    tenant = make_tenant("Webhook GmbH")
    environ = _queued_environ(database_url, tmp_path / "var")
    producer = create_app({"ENVIRON": environ})  # queues to the var dir's task file
    proc: subprocess.Popen[bytes] | None = None
    try:
        with dedup_receiver() as receiver:
            client = producer.test_client()
            created = client.post(
                "/v1/webhook_endpoints",
                json={"url": receiver.url, "enabled_events": ["customer.created"]},
                headers=tenant.headers,
            )
            assert created.status_code == 201, created.json
            receiver.secret = created.json["secret"]
            receiver.hold_first.set()
            assert (
                client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers).status_code
                == 201
            )

            proc = start_worker(environ, "--workers", "1", "--no-periodic")
            _wait_for(lambda: bool(receiver.seen), 30, "the worker to send the webhook")
            os.killpg(proc.pid, signal.SIGKILL)  # while the receiver still holds the request
            proc.wait(timeout=10)
            receiver.released.set()
            assert receiver.processed == []

            with owner_engine.connect() as conn:
                delivery = conn.execute(
                    sa.text("SELECT id, status, attempts, next_attempt_at FROM webhook_deliveries")
                ).one()
                attempts = conn.execute(sa.text("SELECT count(*) FROM webhook_attempts")).scalar()
            # claimed with a lease, the outcome never recorded: pending, nothing logged
            assert (delivery.status, delivery.attempts, attempts) == ("pending", 0, 0)

            # within the lease nobody sends it again, not even a fresh worker run
            with producer.app_context():
                sent = deliver_for_tenant(
                    db.engine, worker.secret_box(producer), tenant.tenant_id, clock=utcnow
                )
            assert sent == 0 and len(receiver.seen) == 1

            # after the lease the worker's next run (the per-minute tick) sends it again
            later = utcnow() + LEASE + timedelta(seconds=1)
            with producer.app_context():
                sent = deliver_for_tenant(
                    db.engine, worker.secret_box(producer), tenant.tenant_id, clock=lambda: later
                )
            assert sent == 1
            assert receiver.seen == [receiver.seen[0]] * 2  # same webhook-id both times
            assert receiver.processed == [receiver.seen[0]]  # the receiver acted once
            with owner_engine.connect() as conn:
                status, count = conn.execute(
                    sa.text("SELECT status, attempts FROM webhook_deliveries")
                ).one()
            assert (status, count) == ("succeeded", 1)
    finally:
        if proc is not None:
            stop(proc, signal.SIGKILL)
        with producer.app_context():
            db.engine.dispose()
        worker.bind_app(app)  # back to the suite's inline mode


# --- GDPR export ----------------------------------------------------------------------------


@contextmanager
def writes_blocked(database_url: str, owner_engine: sa.Engine, table: str) -> Iterator[None]:
    """Hold a lock that makes the next write to `table` wait (on SQLite: to any table)."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with owner_engine.connect() as pg:
        pg.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")  # reads still go through
        try:
            yield
        finally:
            pg.rollback()


def _post(port: int, path: str, tenant: TenantCtx, body: dict[str, Any], **headers: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={**tenant.headers, "Content-Type": "application/json", **headers},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_export_leaves_only_a_swept_orphan_and_can_be_redone_when_web_worker_killed_mid_export(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    database_url: str,
    tmp_path: Path,
    owner_engine: sa.Engine,
) -> None:
    customer_id = new_customer(client, tenant)
    create_subscription(client, tenant, customer_id=customer_id)
    request_id = verified_request(client, tenant, "access", customer_id)["id"]
    environ = _queued_environ(database_url, tmp_path / "var")
    exports = tmp_path / "var" / "exports" / tenant.tenant_id
    path = f"/v1/gdpr/requests/{request_id}/fulfil"
    outcome: list[Any] = []
    state_before = client.get(f"/v1/gdpr/requests/{request_id}", headers=tenant.headers).json[
        "state"
    ]

    with gunicorn(environ, WEB_CONCURRENCY="1") as (port, master):
        with writes_blocked(database_url, owner_engine, "gdpr_exports"):
            caller = threading.Thread(
                target=lambda: outcome.append(_try(lambda: _post(port, path, tenant, {})))
            )
            caller.start()
            # the ZIP is on disk, its database row waits for the lock: mid-export
            _wait_for(lambda: exports.is_dir() and any(exports.iterdir()), 30, "the ZIP file")
            os.kill(_worker_pid(master), signal.SIGKILL)
            caller.join(timeout=30)
        assert outcome and isinstance(outcome[0], Exception)  # the connection was cut

        orphans = list(exports.iterdir())
        with owner_engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM gdpr_exports")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM gdpr_export_links")).scalar() == 0
            state = conn.execute(
                sa.text("SELECT state FROM gdpr_requests WHERE id = :id"), {"id": request_id}
            ).scalar()
        assert state == state_before  # nothing of the killed request committed

        # gunicorn has replaced the worker; the fulfilment is simply done again
        status, body = _post(port, path, tenant, {}, **{"Idempotency-Key": "export-retry"})
        assert status == 200, body
        assert body["state"] == "completed"

    with owner_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, sha256 FROM gdpr_exports")).all()
        links = conn.execute(sa.text("SELECT count(*) FROM gdpr_export_links")).scalar()
    assert len(rows) == 1 and links == 1
    export_id, sha256 = rows[0]
    stored = exports / f"{export_id}.zip"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha256

    # the killed request's file belongs to no export: the sweeper deletes it once it is old
    for orphan in orphans:
        os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    from saas.gdpr.runtime import compliance_config
    from saas.gdpr.tasks import sweep_tenant

    # the server's export directory (its var dir), with the suite's database and keys
    cfg = dataclasses.replace(compliance_config(app), export_dir=tmp_path / "var" / "exports")
    with app.app_context():
        report = sweep_tenant(db.engine, cfg, tenant.tenant_id, now=utcnow())
    assert report.orphans_deleted == len(orphans) >= 1
    assert sorted(p.name for p in exports.iterdir()) == [f"{export_id}.zip"]


def _try(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        return exc


# --- database connection cut mid-transaction ----------------------------------------------


@POSTGRES_ONLY
def test_cut_connection_keeps_no_half_write_and_retry_applies_once_when_backend_terminated(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    database_url: str,
    tmp_path: Path,
    owner_engine: sa.Engine,
) -> None:
    price = create_price(client, tenant, per_seat=True)["id"]
    sub = create_subscription(client, tenant, price, quantity=2)["id"]

    def counts() -> tuple[int, int, int, int]:
        with owner_engine.connect() as conn:
            return (
                conn.execute(
                    sa.text("SELECT quantity FROM subscriptions WHERE id = :id"), {"id": sub}
                ).scalar_one(),
                conn.execute(sa.text("SELECT count(*) FROM subscription_history")).scalar_one(),
                conn.execute(sa.text("SELECT count(*) FROM subscription_charges")).scalar_one(),
                conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one(),
            )

    before = counts()
    environ = _queued_environ(database_url, tmp_path / "var")
    path = f"/v1/subscriptions/{sub}/change"
    body = {"quantity": 3, "proration": "immediate"}
    key = {"Idempotency-Key": "change-cut"}
    outcome: list[Any] = []
    with gunicorn(environ, WEB_CONCURRENCY="1") as (port, _):
        with owner_engine.connect() as admin:
            admin.exec_driver_sql("LOCK TABLE subscription_history IN EXCLUSIVE MODE")
            caller = threading.Thread(
                target=lambda: outcome.append(_post(port, path, tenant, body, **key))
            )
            caller.start()

            def waiting_backend() -> int | None:
                with owner_engine.connect() as conn:
                    return conn.execute(
                        sa.text(
                            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE 'INSERT INTO subscription_history%'"
                        )
                    ).scalar()

            # the request has updated the subscription and written its charges and event, and
            # now waits to write the history row: cut its connection there
            _wait_for(lambda: waiting_backend() is not None, 30, "the request to block")
            with owner_engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": waiting_backend()})
            admin.rollback()
            caller.join(timeout=30)
        status, problem = outcome[0]
        assert status == 503, problem
        assert problem["code"] == "database_unavailable"
        assert counts() == before  # none of its writes survived

        # the pool hands out a working connection, and the same key may be retried at once
        status, changed = _post(port, path, tenant, body, **key)
        assert status == 200, changed
        assert changed["quantity"] == 3
        status, replay = _post(port, path, tenant, body, **key)
        assert (status, replay) == (200, changed)

    quantity, history, charges, events = counts()
    assert quantity == 3
    assert history == before[1] + 1  # applied exactly once
    assert charges > before[2] and events > before[3]
