"""The real worker process: `abowerk worker` consumes the embedded (SQLite) queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from standardwebhooks.webhooks import Webhook

from saas import worker
from saas.app import create_app
from saas.auth.services import create_api_key
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.tenants.services import create_tenant
from tests.conftest import CUSTOMER
from tests.support.receiver import start_receiver


@pytest.fixture
def queued_app(tmp_path: Path, app: Flask) -> Iterator[tuple[Flask, dict[str, str]]]:
    """An app whose tasks go to a real queue file instead of running inline."""
    environ = {
        "ABOWERK_DATABASE_URL": f"sqlite:///{tmp_path}/worker.sqlite3",
        "ABOWERK_VAR_DIR": str(tmp_path / "var"),
        "ABOWERK_SECRET_KEY": "worker-test-secret",
        "ABOWERK_LOG_LEVEL": "WARNING",
    }
    producer = create_app({"ENVIRON": environ})
    with producer.app_context():
        upgrade()
    yield producer, environ
    with producer.app_context():
        db.engine.dispose()
    worker.bind_app(app)  # back to the suite's inline mode


def test_worker_process_delivers_queued_webhook_when_started(
    queued_app: tuple[Flask, dict[str, str]],
) -> None:
    producer, environ = queued_app
    receiver, server = start_receiver()
    with producer.app_context():
        now = utcnow()
        with tenancy.unscoped(db.session):
            tenant = create_tenant(db.session, name="Queue GmbH", now=now)
        tenancy.set_tenant(db.session, tenant.id)
        _, key = create_api_key(db.session, tenant_id=tenant.id, now=now)
        db.session.commit()
        db.session.remove()
    client = producer.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    secret = client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "enabled_events": ["customer.created"]},
        headers=headers,
    ).json["secret"]
    assert client.post("/v1/customers", json=CUSTOMER, headers=headers).status_code == 201
    time.sleep(0.3)
    assert receiver.requests == []  # queued, not sent inline

    abowerk = str(Path(sys.executable).parent / "abowerk")
    proc = subprocess.Popen(
        [abowerk, "worker", "--workers", "1", "--no-periodic"],
        env={**os.environ, **environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not receiver.requests and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert len(receiver.requests) == 1
        got = receiver.requests[0]
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload["type"] == "customer.created"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()
        server.shutdown()
        server.server_close()
