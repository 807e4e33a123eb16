"""Issue 11 at full size: a billing run over 100,000 subscriptions of 20 tenants, started by
one scheduler process and billed by two worker processes on Redis, on PostgreSQL; every
period invoiced exactly once; and the run's throughput on two workers against one worker,
measured in the same test.

Size: ABOWERK_SCALE_SUBSCRIPTIONS (100,000; CI runs that) for the two-worker run,
ABOWERK_SCALE_ONE_WORKER_SUBSCRIPTIONS (a fifth of it) for the one-worker run before it;
both multiples of 20. The figures go to ``<tmp_path>/billing_run_workers.txt`` and to the
output (``-s``); ``bench/bench_workers.py --write`` runs the same scenario and writes them
into docs/benchmarks.md. The scenario itself: bench/worker_scenario.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from bench import worker_scenario as scenario
from bench.seed import capture_templates, seed_templates
from tests.conftest import IN_CI, POSTGRES_ONLY, make_environ

REDIS_URL = os.environ.get("ABOWERK_TEST_REDIS_URL", "")
SUBSCRIPTIONS = int(os.environ.get("ABOWERK_SCALE_SUBSCRIPTIONS", "100000"))
# the one-worker run is only there to compare with: a part of the size keeps the test short
ONE_WORKER = int(os.environ.get("ABOWERK_SCALE_ONE_WORKER_SUBSCRIPTIONS", SUBSCRIPTIONS // 5))

needs_redis = pytest.mark.skipif(
    not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL to test Redis"
)


@pytest.mark.slow
@needs_redis
@POSTGRES_ONLY
def test_two_workers_and_a_scheduler_bill_100000_subscriptions_each_period_once(
    app: Flask, owner_engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    assert SUBSCRIPTIONS % scenario.TENANTS == 0 and ONE_WORKER % scenario.TENANTS == 0
    tenant_ids = seed_templates(app, scenario.TENANTS)
    templates = capture_templates(owner_engine, tenant_ids)
    templates_seconds = time.perf_counter() - started
    env = {**os.environ, **make_environ(database_url, tmp_path / "var")}

    def seed(clones: int, tag: str, due: int) -> None:
        scenario.seed_stage(owner_engine, templates, clones, tag)
        per_tenant = scenario.due_per_tenant(owner_engine)
        assert len(per_tenant) == scenario.TENANTS
        assert set(per_tenant.values()) == {due // scenario.TENANTS}

    # the template subscriptions themselves are due as well: they bill with the first stage
    per_tenant = ONE_WORKER // scenario.TENANTS - templates[0].subscriptions
    one = scenario.run_stage(
        owner_engine,
        env,
        workers=1,
        subscriptions=ONE_WORKER,
        redis_url=REDIS_URL,
        logs=tmp_path / "logs",
        seed=lambda: seed(per_tenant * scenario.TENANTS, "one", ONE_WORKER),
    )
    assert one.invoices == ONE_WORKER
    assert scenario.exactly_once_problems(owner_engine) == {}
    two = scenario.run_stage(
        owner_engine,
        env,
        workers=2,
        subscriptions=SUBSCRIPTIONS,
        redis_url=REDIS_URL,
        logs=tmp_path / "logs",
        seed=lambda: seed(SUBSCRIPTIONS, "two", SUBSCRIPTIONS),
    )

    # every period of both stages invoiced exactly once, the numbers without gaps
    assert scenario.exactly_once_problems(owner_engine) == {}
    assert two.invoices == SUBSCRIPTIONS
    with owner_engine.connect() as conn:
        invoices = conn.execute(
            sa.text("SELECT count(*) FROM invoices WHERE kind = 'invoice'")
        ).scalar_one()
        subscriptions = conn.execute(sa.text("SELECT count(*) FROM subscriptions")).scalar_one()
    assert invoices == subscriptions == ONE_WORKER + SUBSCRIPTIONS
    # both workers took parts: each one's own counter of issued invoices, together all
    assert all(n > 0 for n in two.per_worker), two.per_worker
    assert sum(two.per_worker) == two.invoices
    assert one.per_worker == [one.invoices]
    # the run as an operator sees it (a later tick's run group may have taken a share; it
    # normally waits in the queue behind the first group's document renderings)
    assert two.group_invoices > 0
    status = app.test_cli_runner().invoke(args=["billing", "status", two.group_id])
    assert status.exit_code == 0, status.output
    assert f"{scenario.TENANTS} tenant(s)" in status.output
    assert status.output.count(" succeeded in ") == scenario.TENANTS, status.output
    assert (
        f"total: 0 advanced, {two.group_invoices} invoices finalized, 0 skipped, 0 failed"
        in status.output
    ), status.output

    figures = scenario.figures(one, two, total_seconds=time.perf_counter() - started)
    report = scenario.summary(figures)
    report += f"\ntemplates through the API: {templates_seconds:.1f} s"
    (tmp_path / "billing_run_workers.txt").write_text(report + "\n", encoding="utf-8")
    print("\n" + report)  # noqa: T201  (the measured figures belong in the test's output)
