"""Benchmark: a billing run on one worker against two, started by the scheduler, on Redis.

    .venv/bin/python bench/bench_workers.py [--subscriptions 100000] [--one-worker 20000]
        [--url postgresql://postgres@127.0.0.1/test] [--redis-url redis://127.0.0.1:6379/15]
        [--write]

The scenario of tests/scale/test_billing_run_scale.py (bench/worker_scenario.py), in a
database ``abowerk_bench_<hex>`` of its own on the server of ``--url``: 20 tenants seeded
through the API and cloned with COPY; first ``--one-worker`` due subscriptions billed by one
worker process, then ``--subscriptions`` more by two, each run started by one scheduler
process; every period checked to be invoiced exactly once. Prints the figures; ``--write``
puts them into the "Billing run on workers" section of docs/benchmarks.md. The Redis
database of ``--redis-url`` is flushed before and after each stage: give it one nobody else
uses.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import worker_scenario as scenario  # noqa: E402  (needs ROOT on the path)
from bench.seed import capture_templates, seed_templates  # noqa: E402


def measure(app: object, owner: sa.Engine, env: dict[str, str], args: argparse.Namespace) -> str:
    started = time.perf_counter()
    tenant_ids = seed_templates(app, scenario.TENANTS)
    templates = capture_templates(owner, tenant_ids)
    print(f"templates: {time.perf_counter() - started:.1f} s")
    clones = args.one_worker - scenario.TENANTS * templates[0].subscriptions
    logs = Path(env["ABOWERK_VAR_DIR"]) / "logs"
    one = scenario.run_stage(
        owner,
        env,
        workers=1,
        subscriptions=args.one_worker,
        redis_url=args.redis_url,
        logs=logs,
        seed=lambda: scenario.seed_stage(owner, templates, clones, "one"),
    )
    two = scenario.run_stage(
        owner,
        env,
        workers=2,
        subscriptions=args.subscriptions,
        redis_url=args.redis_url,
        logs=logs,
        seed=lambda: scenario.seed_stage(owner, templates, args.subscriptions, "two"),
    )
    problems = scenario.exactly_once_problems(owner)
    if problems or one.invoices != args.one_worker or two.invoices != args.subscriptions:
        raise SystemExit(f"not exactly once: {problems}, {one.invoices}, {two.invoices}")
    figures = scenario.figures(one, two, total_seconds=time.perf_counter() - started)
    print(scenario.summary(figures))
    command = (
        f"bench/bench_workers.py --subscriptions {args.subscriptions} "
        f"--one-worker {args.one_worker}"
    )
    return scenario.section(figures, command)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--one-worker", type=int, default=20_000)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "ABOWERK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test"
        ),
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("ABOWERK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    for n in (args.subscriptions, args.one_worker):
        if n % scenario.TENANTS:
            parser.error(f"{n} is not a multiple of {scenario.TENANTS} tenants")

    base = sa.make_url(args.url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"abowerk_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            env = {
                "ABOWERK_DATABASE_URL": url,
                "ABOWERK_VAR_DIR": var_dir,
                "ABOWERK_SECRET_KEY": "bench-secret-key-not-for-production",
                "ABOWERK_RATE_LIMIT": "1000000 per second",
                "ABOWERK_LOG_LEVEL": "WARNING",
                # the templates' own webhook and metrics tasks run inline, as in the tests
                "ABOWERK_TASKS_IMMEDIATE": "1",
            }
            os.environ.update(env)
            os.environ.pop("ABOWERK_REDIS_URL", None)
            from flask_migrate import upgrade

            from saas.app import create_app

            app = create_app({"TESTING": True})
            with app.app_context():
                upgrade()
            owner = sa.create_engine(url, poolclass=sa.pool.NullPool)
            text = measure(app, owner, {**os.environ}, args)
            owner.dispose()
            if args.write:
                scenario.write_section(text, ROOT / "docs" / "benchmarks.md")
                print("docs/benchmarks.md: section 'Billing run on workers' written")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
