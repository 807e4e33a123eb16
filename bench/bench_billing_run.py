"""Benchmark: a billing run over N due subscriptions on PostgreSQL, against a bare COPY.

    .venv/bin/python bench/bench_billing_run.py [--subscriptions 1000000] [--tenants 100]
        [--batch-size 2000] [--url postgresql://postgres@127.0.0.1/test] [--no-write]
        [--advance-sample 2000] [--advance-orm-sample 200]

Creates a database ``abowerk_bench_<hex>`` on the server of ``--url`` and migrates it. Seeds
``--tenants`` tenants through the API (seller profile; every 5th tenant a Kleinunternehmer,
one in ten Austrian; a catalog of monthly and yearly prices) with one template customer and
subscription per buyer kind (DE/AT/FR/NL consumers and businesses with VAT IDs, US
consumers), then clones the templates with ``COPY`` up to ``--subscriptions`` subscriptions,
each with its period's charge pending: exactly what the subscription service writes when a
period starts. Then it runs ``abowerk billing run``'s engine (``billing.runs.services``) over
all tenants in this process and reports:

* finalized invoices per second of the run (phase B: tax decision, snapshot, validation,
  numbering, invoice + lines + VAT groups + tax ledger + outbox event, charges marked);
* the peak RSS of the process (``resource.getrusage``);
* the baseline: a bare ``COPY`` of the same invoice rows (``COPY … TO STDOUT`` of the run's
  invoices into a copy of the table), measured in the same run, and the ratio;
* phase A (advancing due subscriptions 400 days on) on a separate sample of
  ``--advance-sample`` subscriptions of the first tenant (plain renewals set-based), and on
  the next ``--advance-orm-sample`` through the subscription service's ORM path only.

Document rendering is not part of the run (it is queued per batch); bench_documents.py
measures it. Writes the "Billing run" section of docs/benchmarks.md unless --no-write.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import re
import resource
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.seed import clone, seed_templates  # noqa: E402  (needs ROOT on the path)


def bare_copy(owner: sa.Engine) -> tuple[int, float]:
    """COPY the run's invoice rows out and into an empty copy of the table: rows, seconds."""
    raw = owner.raw_connection()
    try:
        dbapi = raw.driver_connection
        buffer = io.BytesIO()
        with dbapi.cursor() as cur:
            with cur.copy("COPY (SELECT * FROM invoices WHERE kind = 'invoice') TO STDOUT") as c:
                for chunk in c:
                    buffer.write(chunk)
            cur.execute("CREATE TABLE bench_invoices_copy (LIKE invoices INCLUDING ALL)")
        dbapi.commit()
        data = buffer.getvalue()
        rows = data.count(b"\n")
        started = time.perf_counter()
        with dbapi.cursor() as cur, cur.copy("COPY bench_invoices_copy FROM STDIN") as c:
            for i in range(0, len(data), 1 << 20):
                c.write(data[i : i + (1 << 20)])
        dbapi.commit()
        return rows, time.perf_counter() - started
    finally:
        raw.close()


_APP: Any = None


def _bill_tenant(job: tuple[str, str, int, Any]) -> tuple[int, int]:
    """One tenant's run in a forked worker process: (finalized, failed)."""
    from billing.runs.services import execute_run
    from saas.extensions import db
    from saas.kernel.clock import utcnow

    tenant_id, run_id, batch_size, _ = job
    with _APP.app_context():
        run = execute_run(db.engine, tenant_id, run_id, batch_size=batch_size, clock_now=utcnow)
        return run.invoices_finalized, run.failed


def _forked() -> None:
    # the parent's pooled connections must not be shared with a forked child
    from saas.extensions import db

    with _APP.app_context():
        db.engine.dispose(close=False)


def run_billing(
    app: Any, batch_size: int, at: datetime, processes: int = 1
) -> tuple[int, float, list[tuple[int, int]]]:
    """The run's engine over all tenants: in this process, or with ``processes`` forked
    processes taking one tenant's run each, as that many ``abowerk worker`` processes take
    a fanned-out run (the timing covers creating the runs, billing and waiting for all)."""
    global _APP  # noqa: PLW0603 - handed to the forked children
    from billing.runs.services import active_tenant_ids, create_runs
    from saas.extensions import db
    from saas.kernel.clock import utcnow

    _APP = app
    with app.app_context():
        started = time.perf_counter()
        tenant_ids = active_tenant_ids(db.engine)
        _, created = create_runs(
            db.engine, tenant_ids, at=at, trigger="cli", now=utcnow(), batch_size=batch_size
        )
        jobs = [(t, run_id, batch_size, None) for t, run_id in created]
        if processes <= 1:
            results = [_bill_tenant(job) for job in jobs]
        else:
            db.engine.dispose()
            context = multiprocessing.get_context("fork")
            with context.Pool(processes, initializer=_forked) as pool:
                results = list(pool.imap_unordered(_bill_tenant, jobs))
        seconds = time.perf_counter() - started
    return sum(r[0] for r in results), seconds, results


def advance_sample(
    app: Any, owner: sa.Engine, sample: int, batch_size: int, *, set_based: bool, rank: int = 0
) -> tuple[int, int, float]:
    """Phase A alone: move up to ``sample`` subscriptions of one tenant (the ``rank``-th by
    number of subscriptions, so two samples never share a tenant) 400 days on, through
    ``advance_batch`` as a run's batches do: plain renewals set-based, or
    (``set_based=False``) every subscription through the ORM path. Returns (subscriptions
    in the sample, renewals, seconds)."""
    from billing.runs.services import advance_batch, due_subscription_ids
    from saas.extensions import db
    from saas.kernel.clock import utcnow
    from saas.kernel.tasks import tenant_session

    with owner.connect() as conn:
        tenant_id = conn.execute(
            sa.text(
                "SELECT tenant_id FROM subscriptions GROUP BY tenant_id "
                "ORDER BY count(*) DESC, tenant_id OFFSET :r LIMIT 1"
            ),
            {"r": rank},
        ).scalar()
        limit_ids = conn.execute(
            sa.text("SELECT id FROM subscriptions WHERE tenant_id = :t ORDER BY id LIMIT :n"),
            {"t": tenant_id, "n": sample},
        ).scalars()
        ids = list(limit_ids)
        # only the sample is due: the others (an earlier sample too) are pushed far out
        conn.execute(
            sa.text(
                "UPDATE subscriptions SET next_action_at = CASE WHEN id = ANY(:ids) "
                "THEN current_period_end_at ELSE current_period_end_at + interval '5 years' END "
                "WHERE tenant_id = :t"
            ),
            {"t": tenant_id, "ids": ids},
        )
        conn.commit()
    at = utcnow() + timedelta(days=400)
    after: str | None = None
    with app.app_context():
        started = time.perf_counter()
        while True:
            with tenant_session(db.engine, tenant_id) as session:
                batch = due_subscription_ids(
                    session, at=at, clock_id=None, after=after, limit=batch_size
                )
                if not batch:
                    break
                advance_batch(session, batch, at=at, set_based=set_based)
                session.commit()
            after = batch[-1]
        seconds = time.perf_counter() - started
    with owner.connect() as conn:
        moved = conn.execute(
            sa.text(
                "SELECT count(*) FROM subscription_history WHERE tenant_id = :t "
                "AND event = 'renew' AND subscription_id = ANY(:ids)"
            ),
            {"t": tenant_id, "ids": ids},
        ).scalar_one()
    return len(ids), int(moved), seconds


def write_section(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text(encoding="utf-8")
    if "## Billing run" in doc:
        doc = re.sub(r"## Billing run\n.*?(?=\n## |\Z)", text.rstrip() + "\n", doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + text
    path.write_text(doc.rstrip() + "\n", encoding="utf-8")


def section(args: argparse.Namespace, figures: dict[str, Any]) -> str:
    f = figures
    met = f["rate"] >= 20_000 and f["rss_mib"] < 1024
    verdict = (
        "Met."
        if met
        else "**Not met**: see docs/billing-runs.md (Performance) for where the time goes."
    )
    load = os.getloadavg()[0]
    return f"""## Billing run

Measured {datetime.now(UTC).date().isoformat()} by `bench/bench_billing_run.py --subscriptions
{f["total"]} --tenants {args.tenants} --batch-size {args.batch_size} --processes
{args.processes}` on {platform.machine()},
{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL on the same machine;
1-minute load average {load:.1f} at the end (other work on the machine slows every figure).
{args.tenants} tenants (every 5th a Kleinunternehmer, one in ten Austrian); buyers: DE, AT and
NL consumers and businesses, FR and US consumers; monthly and yearly prices; every
subscription's period charge pending, as the subscription service leaves it.

| measure | result |
|---|---|
| finalized invoices | {f["invoices"]:,} ({f["failed"]} failed) |
| billing run, phase B (decide, snapshot, number, write, ledger, outbox) | \
{f["seconds"]:.1f} s = **{f["rate"]:,.0f} invoices/s** |
| peak RSS of a billing process ({args.processes} in all) | {f["rss_mib"]:,.0f} MiB |
| baseline: bare `COPY` of the same invoice rows, same run | {f["copy_rate"]:,.0f} rows/s |
| ratio run / bare COPY | {f["rate"] / f["copy_rate"]:.1%} |
| phase A, plain renewals set-based, {f["sampled"]:,} subscriptions of one tenant, \
400 days on | **{f["advance_rate"]:,.0f} renewals/s** \
({f["moved"]:,} in {f["advance_seconds"]:.1f} s) |
| phase A, ORM path only, {f["orm_sampled"]:,} subscriptions of another tenant, 400 days on | \
{f["orm_rate"]:,.1f} renewals/s ({f["orm_moved"]:,} in {f["orm_seconds"]:.1f} s) |

Target 20,000 invoices/s and < 1 GiB: {verdict}
"""


def measure(app: Any, owner: sa.Engine, args: argparse.Namespace) -> dict[str, Any]:
    from saas.kernel.clock import utcnow

    t0 = time.perf_counter()
    tenant_ids = seed_templates(app, args.tenants)
    t1 = time.perf_counter()
    clone(owner, tenant_ids, args.subscriptions)
    t2 = time.perf_counter()
    with owner.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM subscriptions")).scalar_one()
    print(f"seeded {total} subscriptions: templates {t1 - t0:.1f}s, COPY {t2 - t1:.1f}s")
    invoices, seconds, runs = run_billing(app, args.batch_size, utcnow(), args.processes)
    # the largest of this process and (with --processes) its billing children
    rss_mib = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    failed = sum(r[1] for r in runs)
    rate = invoices / seconds
    print(f"run: {invoices} invoices in {seconds:.1f}s = {rate:,.0f}/s, failed {failed}")
    print(f"peak RSS {rss_mib:.0f} MiB")
    copy_rows, copy_seconds = bare_copy(owner)
    copy_rate = copy_rows / copy_seconds
    print(f"bare COPY: {copy_rows} rows in {copy_seconds:.2f}s = {copy_rate:,.0f}/s")
    print(f"ratio: the run reaches {rate / copy_rate:.1%} of a bare COPY")
    sampled, moved, advance_seconds = advance_sample(
        app, owner, args.advance_sample, 500, set_based=True
    )
    print(f"phase A, set-based: {moved} renewals in {advance_seconds:.1f}s")
    orm_sampled, orm_moved, orm_seconds = advance_sample(
        app, owner, args.advance_orm_sample, 500, set_based=False, rank=1
    )
    print(f"phase A, ORM path: {orm_moved} renewals in {orm_seconds:.1f}s")
    return {
        "total": total,
        "invoices": invoices,
        "seconds": seconds,
        "rate": rate,
        "failed": failed,
        "rss_mib": rss_mib,
        "copy_rate": copy_rate,
        "moved": moved,
        "sampled": sampled,
        "orm_sampled": orm_sampled,
        "advance_seconds": advance_seconds,
        "advance_rate": moved / advance_seconds,
        "orm_moved": orm_moved,
        "orm_seconds": orm_seconds,
        "orm_rate": orm_moved / orm_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--advance-sample", type=int, default=2000)
    parser.add_argument(
        "--advance-orm-sample",
        type=int,
        default=200,
        help="phase A through the ORM path only, for comparison (the next subscriptions)",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="bill the tenants' runs in N processes"
    )
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "ABOWERK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test"
        ),
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    base = sa.make_url(args.url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"abowerk_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as var_dir:
            os.environ.update(
                {
                    "ABOWERK_DATABASE_URL": url,
                    "ABOWERK_VAR_DIR": var_dir,
                    "ABOWERK_SECRET_KEY": "bench-secret-key-not-for-production",
                    "ABOWERK_RATE_LIMIT": "1000000 per second",
                    "ABOWERK_LOG_LEVEL": "WARNING",
                }
            )
            os.environ.pop("ABOWERK_TASKS_IMMEDIATE", None)
            from flask_migrate import upgrade

            from saas.app import create_app

            app = create_app({"TESTING": True})
            with app.app_context():
                upgrade()
            owner = sa.create_engine(url, poolclass=sa.pool.NullPool)
            figures = measure(app, owner, args)
            owner.dispose()
            if not args.no_write:
                write_section(section(args, figures))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
