"""A billing run fanned out over two `abowerk worker` processes sharing a Redis queue, on
PostgreSQL: the parts of each tenant's run are taken by whichever worker is free, and every
subscription period is still invoiced exactly once (issue 11, at test size)."""

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
from tests.conftest import IN_CI, POSTGRES_ONLY, make_environ
from tests.integration.test_billing_run_crash import SUBSCRIPTIONS, check_exactly_once, seed

REDIS_URL = os.environ.get("ABOWERK_TEST_REDIS_URL", "")

needs_redis = pytest.mark.skipif(
    not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL to test Redis"
)


def _flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@needs_redis
@POSTGRES_ONLY
def test_two_workers_share_a_queued_run_and_bill_each_period_once(
    app: Flask,
    client: FlaskClient,
    make_tenant: Any,
    owner_engine: sa.Engine,
    database_url: str,
    tmp_path: Path,
) -> None:
    tenants = [make_tenant(f"Verteilt {n} GmbH") for n in range(2)]
    own = [t.tenant_id for t in tenants]  # the database is shared with the other tests
    for t in tenants:
        seed(client, t)
    _flush(REDIS_URL)
    environ = make_environ(database_url, tmp_path, ABOWERK_REDIS_URL=REDIS_URL)
    environ.pop("ABOWERK_TASKS_IMMEDIATE")
    env = {**os.environ, **environ}
    abowerk = str(Path(sys.executable).parent / "abowerk")
    at = (utcnow() + timedelta(days=35)).isoformat()
    queued = subprocess.run(
        [abowerk, "billing", "run", "--at", at, "--queue", "7", "--batch-size", "3"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert queued.returncode == 0, queued.stderr.decode()[-3000:]
    workers = [
        subprocess.Popen(
            [abowerk, "worker", "--workers", "2", "--no-periodic"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 240
        statuses: list[str] = []
        while time.monotonic() < deadline:
            with owner_engine.connect() as conn:
                statuses = list(
                    conn.execute(
                        sa.text("SELECT status FROM billing_runs WHERE tenant_id = ANY(:t)"),
                        {"t": own},
                    ).scalars()
                )
            if statuses and all(s == "succeeded" for s in statuses):
                break
            assert all(w.poll() is None for w in workers), "a worker died"
            time.sleep(0.5)
        assert statuses == ["succeeded", "succeeded"], statuses
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)
            if worker.stderr:
                worker.stderr.close()
        _flush(REDIS_URL)
    for t in tenants:
        got = check_exactly_once(owner_engine, t.tenant_id)
        assert len(got) == 2 * SUBSCRIPTIONS
    with owner_engine.connect() as conn:
        runs = conn.execute(
            sa.text(
                "SELECT batches_done, batches_total, invoices_finalized FROM billing_runs "
                "WHERE tenant_id = ANY(:t)"
            ),
            {"t": own},
        ).all()
    # 60 subscriptions in parts of 7: 9 parts each (the last one empty), all done
    assert Counter(tuple(r) for r in runs) == Counter({(9, 9, 2 * SUBSCRIPTIONS): 2})
