"""Fault: the worker process is killed (SIGKILL) in the middle of a billing run fanned out
over a Redis queue, on PostgreSQL. The part it was running dies with it (a queue hands a task
out once); what it committed stays, nothing is half-written, another worker takes the parts
still queued, and the next run (the scheduler's next tick) bills what the lost part left:
in the end every subscription period is invoiced exactly once, with numbers without gaps.
The killed run does not say ``running`` for ever: the tick marks it failed, saying why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.runs.services import abandon_stale_runs
from saas.extensions import db
from saas.kernel.clock import utcnow
from tests.conftest import IN_CI, POSTGRES_ONLY, make_environ
from tests.integration.test_billing_run_crash import (
    SUBSCRIPTIONS,
    check_exactly_once,
    scalar,
    seed,
)

REDIS_URL = os.environ.get("ABOWERK_TEST_REDIS_URL", "")

needs_redis = pytest.mark.skipif(
    not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL to test Redis"
)


def _flush() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _worker(abowerk: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [abowerk, "worker", "--workers", "1", "--no-periodic"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _queue(abowerk: str, env: dict[str, str], tenant_id: str, at: str) -> None:
    # parts of 3 subscriptions in batches of 1: a part takes long enough to be caught
    command = ["billing", "run", "--tenant", tenant_id, "--at", at, "--queue", "3"]
    queued = subprocess.run(
        [abowerk, *command, "--batch-size", "1"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert queued.returncode == 0, queued.stderr.decode()[-3000:]


def _runs(engine: sa.Engine, tenant_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(
                    "SELECT id, status, batches_done, batches_total, last_error FROM billing_runs "
                    "WHERE tenant_id = :t ORDER BY created_at, id"
                ),
                {"t": tenant_id},
            )
        ]


@needs_redis
@POSTGRES_ONLY
def test_every_period_is_invoiced_once_when_the_worker_is_killed_mid_run(
    app: Flask,
    client: FlaskClient,
    make_tenant: Any,
    owner_engine: sa.Engine,
    database_url: str,
    tmp_path: Path,
) -> None:
    tenant = make_tenant("Abgestürzt GmbH")
    seed(client, tenant)
    _flush()
    environ = make_environ(database_url, tmp_path, ABOWERK_REDIS_URL=REDIS_URL)
    environ.pop("ABOWERK_TASKS_IMMEDIATE")
    env = {**os.environ, **environ}
    abowerk = str(Path(sys.executable).parent / "abowerk")
    # 35 days on: every subscription renews once, so each owes two periods
    at = (utcnow() + timedelta(days=35)).isoformat()
    invoices_sql = "SELECT count(*) FROM invoices WHERE tenant_id = :t AND kind = 'invoice'"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        _queue(abowerk, env, tenant.tenant_id, at)
        first = _worker(abowerk, env)
        processes.append(first)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if scalar(owner_engine, invoices_sql, t=tenant.tenant_id) >= 4:
                break
            assert first.poll() is None, "the worker died on its own"
            time.sleep(0.01)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=20)
        assert first.returncode == -signal.SIGKILL
        partial = scalar(owner_engine, invoices_sql, t=tenant.tenant_id)
        assert 0 < partial < 2 * SUBSCRIPTIONS, "killed too late to prove anything"
        [killed_run] = _runs(owner_engine, tenant.tenant_id)
        assert killed_run["status"] == "running"
        assert killed_run["batches_done"] < killed_run["batches_total"]

        # another worker takes the parts still queued; the next tick queues a new run
        processes.append(_worker(abowerk, env))
        _queue(abowerk, env, tenant.tenant_id, at)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runs = _runs(owner_engine, tenant.tenant_id)
            if len(runs) == 2 and runs[1]["status"] == "succeeded":
                pending = scalar(
                    owner_engine,
                    "SELECT count(*) FROM subscription_charges "
                    "WHERE tenant_id = :t AND invoiced_at IS NULL",
                    t=tenant.tenant_id,
                )
                if pending == 0:
                    break
            assert processes[-1].poll() is None, "the second worker died"
            time.sleep(0.2)
        # let the second worker drain what the killed run still had queued
        settled = None
        while time.monotonic() < deadline:
            now_runs = _runs(owner_engine, tenant.tenant_id)
            if now_runs == settled:
                break
            settled = now_runs
            time.sleep(2)
    finally:
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        _flush()

    got = check_exactly_once(owner_engine, tenant.tenant_id)
    assert len(got) == 2 * SUBSCRIPTIONS
    killed_run, next_run = _runs(owner_engine, tenant.tenant_id)
    assert next_run["status"] == "succeeded"
    # the lost part never reports back: the killed run is short of at least that one part
    assert killed_run["status"] == "running"
    assert killed_run["batches_done"] < killed_run["batches_total"]

    # the scheduler's tick an hour on marks it failed, saying why; the finished run stays
    with app.app_context():
        marked = abandon_stale_runs(
            db.engine, now=utcnow() + timedelta(hours=1, minutes=1), tenant_ids=[tenant.tenant_id]
        )
    assert marked == 1
    killed_after, next_after = _runs(owner_engine, tenant.tenant_id)
    assert killed_after["status"] == "failed"
    assert killed_after["last_error"].startswith("abandoned: no progress since")
    assert next_after == next_run
    with app.app_context():
        later = utcnow() + timedelta(hours=2)
        assert abandon_stale_runs(db.engine, now=later, tenant_ids=[tenant.tenant_id]) == 0
