"""A stateless web tier: any instance can answer any request, and processes stop gracefully.

Two `create_app` instances over one database stand for two web nodes behind a load balancer:
what one instance learned (an idempotency key, an issued token, a rate-limit count with
Redis) the other must know. The worker stops on SIGTERM only after its running task is done.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from saas.app import create_app
from saas.auth.services import create_api_key, create_oauth_client
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.tenants.services import create_tenant
from tests.conftest import CUSTOMER, IN_CI, TenantCtx, count_rows, make_environ

REDIS_URL = os.environ.get("ABOWERK_TEST_REDIS_URL", "")


@pytest.fixture
def two_nodes(database_url: str, tmp_path: Path, restore_huey: None) -> Iterator[Any]:
    """Two app instances over the suite's migrated database, each with its own var dir."""
    built: list[Flask] = []

    def build(**extra: str) -> tuple[Flask, Flask]:
        for name in ("a", "b"):
            made = create_app({"ENVIRON": make_environ(database_url, tmp_path / name, **extra)})
            built.append(made)
        return built[-2], built[-1]

    yield build
    for made in built:
        with made.app_context():
            db.engine.dispose()


def test_idempotent_replay_is_served_by_another_node_when_key_was_used_on_the_first(
    two_nodes: Any, tenant: TenantCtx, app: Flask, owner_engine: sa.Engine
) -> None:
    node_a, node_b = two_nodes()
    headers = {**tenant.headers, "Idempotency-Key": "order-4711"}
    first = node_a.test_client().post("/v1/customers", json=CUSTOMER, headers=headers)
    assert first.status_code == 201
    replay = node_b.test_client().post("/v1/customers", json=CUSTOMER, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json
    assert count_rows(app, owner_engine, "customers") == 1
    # the other node also knows the key's request: a different body is refused
    changed = {**CUSTOMER, "name": "Max Mustermann"}
    reused = node_b.test_client().post("/v1/customers", json=changed, headers=headers)
    assert reused.status_code == 422
    assert reused.json["code"] == "idempotency_key_reused"


def test_access_token_from_one_node_is_accepted_by_another_when_secret_key_is_shared(
    two_nodes: Any, tenant: TenantCtx
) -> None:
    node_a, node_b = two_nodes()
    with node_a.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        oauth_client, secret = create_oauth_client(
            db.session, tenant_id=tenant.tenant_id, now=utcnow()
        )
        client_id = oauth_client.client_id
        db.session.commit()
        db.session.remove()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    issued = node_a.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert issued.status_code == 200
    token = issued.json["access_token"]
    resp = node_b.test_client().get("/v1/customers", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200


LIMIT_STORAGES = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(
            not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL to test Redis"
        ),
    ),
]


@pytest.mark.parametrize("storage", LIMIT_STORAGES)
def test_rate_limit_counts_across_nodes_only_when_redis_is_shared(
    two_nodes: Any, make_tenant: Any, storage: str
) -> None:
    extra = {"ABOWERK_RATE_LIMIT": "3 per minute"}
    if storage == "redis":
        assert REDIS_URL, "CI must export ABOWERK_TEST_REDIS_URL"
        extra["ABOWERK_REDIS_URL"] = REDIS_URL  # a fresh credential: its bucket is new
    node_a, node_b = two_nodes(**extra)
    tenant = make_tenant(f"Verteilt {storage} GmbH")
    clients = [node_a.test_client(), node_b.test_client()]
    statuses = [
        clients[i % 2].get("/v1/customers", headers=tenant.headers).status_code for i in range(4)
    ]
    if storage == "redis":
        assert statuses == [200, 200, 200, 429]  # one budget for the credential, on any node
    else:
        # per-process memory: each node counts its own two calls, which is why production
        # needs ABOWERK_REDIS_URL (docs/operations.md, "Scaling")
        assert statuses == [200, 200, 200, 200]


# --- graceful stop of the worker --------------------------------------------------------------


class _SlowReceiver:
    """A webhook receiver that holds each request until released."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.arrived.set()
                receiver.release.wait(timeout=8)  # below the sender's 10 s read timeout
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_worker_finishes_its_running_task_when_sent_sigterm(
    tmp_path: Path, restore_huey: None
) -> None:
    metrics_port = _free_port()
    environ = {
        "ABOWERK_DATABASE_URL": f"sqlite:///{tmp_path}/graceful.sqlite3",
        "ABOWERK_VAR_DIR": str(tmp_path / "var"),
        "ABOWERK_SECRET_KEY": "graceful-test-secret",
        "ABOWERK_LOG_LEVEL": "WARNING",
    }
    producer = create_app({"ENVIRON": environ})
    # the worker serves its own metrics (read by the CLI from the environment)
    worker_env = {**environ, "ABOWERK_WORKER_METRICS_BIND": f"127.0.0.1:{metrics_port}"}
    receiver = _SlowReceiver()
    proc: subprocess.Popen[bytes] | None = None
    try:
        with producer.app_context():
            upgrade()
            now = utcnow()
            with tenancy.unscoped(db.session):
                tenant = create_tenant(db.session, name="Sanft GmbH", now=now)
            tenancy.set_tenant(db.session, tenant.id)
            _, key = create_api_key(db.session, tenant_id=tenant.id, now=now)
            db.session.commit()
            db.session.remove()
        client = producer.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        endpoint = client.post(
            "/v1/webhook_endpoints",
            json={"url": receiver.url, "enabled_events": ["customer.created"]},
            headers=headers,
        )
        assert endpoint.status_code == 201
        assert client.post("/v1/customers", json=CUSTOMER, headers=headers).status_code == 201

        abowerk = str(Path(sys.executable).parent / "abowerk")
        proc = subprocess.Popen(
            [abowerk, "worker", "--workers", "1", "--no-periodic"],
            env={**os.environ, **worker_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert receiver.arrived.wait(timeout=30), "the worker never sent the webhook"
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert b"abowerk_webhook_attempts_total" in resp.read()
        os.kill(proc.pid, signal.SIGTERM)  # what docker, systemd and Kubernetes send
        time.sleep(1.0)
        assert proc.poll() is None, "the worker exited with a task still running"
        receiver.release.set()
        assert proc.wait(timeout=20) == 0
        with producer.app_context(), db.engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT status, attempts FROM webhook_deliveries")
            ).one()  # recorded before the process exited, not left to a lease
        assert tuple(row) == ("succeeded", 1)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if proc is not None and proc.stderr:
            proc.stderr.close()
        receiver.close()
        with producer.app_context():
            db.engine.dispose()
