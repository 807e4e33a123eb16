"""A billing run on worker processes sharing Redis, driven by the scheduler: the scenario of
tests/scale/test_billing_run_scale.py and bench/bench_workers.py (issue 11).

One *stage* seeds ``subscriptions`` more due subscriptions over the tenants, starts
``workers`` consumer processes (``abowerk worker --no-periodic --workers 1``) and then one
scheduler (``abowerk worker --workers 0``: the periodic schedule and no consumer thread,
with ``ABOWERK_BILLING_SCHEDULE`` every minute, so its first check starts the run). The
scheduler's ``billing_tick`` records a run group and queues one ``plan_billing`` per tenant;
the workers cut the runs into parts and bill them. The stage ends when the group's runs all
succeeded; it measures the group's throughput from the database (first run created to last
run finished) and, from each worker's own Prometheus counter
(``abowerk_billing_invoices_total``), how many invoices each worker issued.

Due subscriptions: see ``DUE``. Every process is in a process group of its own and is killed
with its group when the stage ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.seed import Templates, add_clones

TENANTS = 20
# What the seeded subscriptions owe the run. "pending": the current period's charge is
# pending, as the subscription service leaves it when a period starts, so the run is phase B
# (invoicing) only. Not yet "renewal" (a period that ended: phase A advances it, then phase B
# invoices the new one), for two reasons: when this was written phase A went through the
# subscription service's ORM path at about 100 renewals/s here (docs/benchmarks.md), so
# 100,000 renewals would have taken a quarter of an hour (a set-based path was in the works);
# and seeding renewals needs clones whose period has ended (dates one interval back, that
# period's charge already invoiced), which bench.seed does not make.
DUE = "pending"
# One consumer thread per worker process: "one worker" is one process, one core's worth of
# Python, so that two workers against one compares processes, not threads under one GIL.
THREADS = 1
TIMEOUT = 900.0  # seconds a stage may take before it counts as hung


@dataclass
class Stage:
    """What one stage measured."""

    workers: int
    subscriptions: int  # newly due in this stage
    invoices: int = 0  # finalized by the stage's runs
    seconds: float = 0.0  # first run created .. last run finished
    # first invoice batch started .. last run finished: without the tick's planning and the
    # other periodic tasks queued with it, a fixed cost that weighs more on a small stage
    invoicing_seconds: float = 0.0
    per_worker: list[int] = field(default_factory=list)  # invoices by each worker's counter
    group_id: str = ""  # the run group of the scheduler's first tick
    group_invoices: int = 0  # its share: all of them unless a later tick's group helped
    # where the stage's wall time went besides the run: workers starting, the first tick
    overhead: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.invoices / self.seconds if self.seconds else 0.0

    @property
    def invoicing_rate(self) -> float:
        return self.invoices / self.invoicing_seconds if self.invoicing_seconds else 0.0


# --- processes -----------------------------------------------------------------------------


def abowerk() -> str:
    return str(Path(sys.executable).parent / "abowerk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [abowerk(), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with all it started
        )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT (the consumer stops without waiting for running tasks), then SIGKILL: what is
    left in the queue then (documents to render) is the next stage's noise otherwise."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + 2
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def invoices_counted(port: int) -> int | None:
    """The worker's ``abowerk_billing_invoices_total`` (all modes); None while it does not
    answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    found = re.findall(r"^abowerk_billing_invoices_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return int(sum(float(v) for v in found))


def flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        stop(procs)


# --- the database side ---------------------------------------------------------------------


def _scalar(owner: sa.Engine, sql: str, **params: Any) -> Any:
    with owner.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def pending_charges(owner: sa.Engine) -> int:
    return int(
        _scalar(owner, "SELECT count(*) FROM subscription_charges WHERE invoiced_at IS NULL")
    )


def first_group_since(owner: sa.Engine, since: datetime) -> str | None:
    return _scalar(
        owner,
        "SELECT group_id FROM billing_runs WHERE created_at >= :since "
        "ORDER BY created_at, id LIMIT 1",
        since=since,
    )


def group_statuses(owner: sa.Engine, group_id: str) -> list[str]:
    with owner.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT status FROM billing_runs WHERE group_id = :g"), {"g": group_id}
            ).scalars()
        )


def stage_figures(
    owner: sa.Engine, group_id: str, since: datetime, end: datetime
) -> tuple[int, int, float, float]:
    """Invoices of the stage's run groups (a later tick's group can take a share), of its
    first group alone, and the seconds from the first group's creation and from the first
    invoice batch to ``end``."""
    with owner.connect() as conn:
        invoices, group_invoices, created = conn.execute(
            sa.text(
                "SELECT sum(invoices_finalized), "
                "sum(invoices_finalized) FILTER (WHERE group_id = :g), "
                "min(created_at) FILTER (WHERE group_id = :g) "
                "FROM billing_runs WHERE created_at >= :since"
            ),
            {"g": group_id, "since": since},
        ).one()
        first_batch = conn.execute(
            sa.text(
                "SELECT min(i.created_at) FROM invoices i JOIN billing_runs r "
                "ON r.tenant_id = i.tenant_id AND r.id = i.billing_run_id "
                "WHERE r.created_at >= :since"
            ),
            {"since": since},
        ).scalar_one()
    return (
        int(invoices or 0),
        int(group_invoices or 0),
        (end - created).total_seconds(),
        (end - first_batch).total_seconds(),
    )


def _group_finished(owner: sa.Engine, group_id: str) -> datetime | None:
    """When the group's last run finished; None while one is still going."""
    statuses = group_statuses(owner, group_id)
    assert "failed" not in statuses, f"a run of {group_id} failed"
    if not statuses or any(s != "succeeded" for s in statuses):
        return None
    finished = _scalar(
        owner, "SELECT max(finished_at) FROM billing_runs WHERE group_id = :g", g=group_id
    )
    assert isinstance(finished, datetime)
    return finished


def exactly_once_problems(owner: sa.Engine) -> dict[str, Any]:
    """Set-based checks over the whole database; every value must be 0 (or empty)."""
    queries = {
        # one invoice per (tenant, subscription, period)
        "periods_invoiced_twice": """
            SELECT count(*) FROM (
                SELECT 1 FROM invoices WHERE kind = 'invoice' AND subscription_id IS NOT NULL
                GROUP BY tenant_id, subscription_id, period_start_on HAVING count(*) > 1) d""",
        # every due period invoiced: no charge pending, and the charges point at invoices
        # of their own subscription and period
        "charges_pending": "SELECT count(*) FROM subscription_charges WHERE invoiced_at IS NULL",
        "charges_without_their_invoice": """
            SELECT count(*) FROM subscription_charges c
            LEFT JOIN invoices i ON i.tenant_id = c.tenant_id AND i.id = c.invoice_id
                AND i.subscription_id = c.subscription_id AND i.period_start_on = c.starts_on
            WHERE i.id IS NULL""",
        "invoices_without_a_charge": """
            SELECT count(*) FROM invoices i WHERE i.kind = 'invoice' AND NOT EXISTS (
                SELECT 1 FROM subscription_charges c
                WHERE c.tenant_id = i.tenant_id AND c.invoice_id = i.id)""",
        "invoices_not_finalized": """
            SELECT count(*) FROM invoices WHERE kind = 'invoice'
            AND (status = 'draft' OR number IS NULL OR finalized_at IS NULL)""",
        # numbers: per tenant, mode, series and prefix (year) exactly 1..n, no gap, no twice
        "number_series_with_gaps": """
            SELECT count(*) FROM (
                SELECT tenant_id, livemode, number_series,
                       regexp_replace(number, '[0-9]+$', '') AS prefix,
                       count(*) AS n,
                       count(DISTINCT substring(number FROM '([0-9]+)$')::int) AS distinct_n,
                       min(substring(number FROM '([0-9]+)$')::int) AS first,
                       max(substring(number FROM '([0-9]+)$')::int) AS last
                FROM invoices WHERE number IS NOT NULL
                GROUP BY 1, 2, 3, 4) s
            WHERE NOT (first = 1 AND last = n AND distinct_n = n)""",
    }
    found = {name: int(_scalar(owner, sql)) for name, sql in queries.items()}
    return {name: n for name, n in found.items() if n}


def due_per_tenant(owner: sa.Engine) -> dict[str, int]:
    with owner.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT tenant_id, count(*) FROM subscription_charges "
                "WHERE invoiced_at IS NULL GROUP BY tenant_id"
            )
        ).all()
    return {t: int(n) for t, n in rows}


# --- a stage -------------------------------------------------------------------------------


def seed_stage(owner: sa.Engine, templates: list[Templates], subscriptions: int, tag: str) -> float:
    """``subscriptions`` more due subscriptions, spread evenly over the tenants."""
    assert DUE == "pending", "only pending period charges are seeded so far"
    per_tenant, rest = divmod(subscriptions, len(templates))
    assert rest == 0, f"{subscriptions} subscriptions do not split over {len(templates)} tenants"
    started = time.perf_counter()
    add_clones(owner, templates, per_tenant, tag)
    return time.perf_counter() - started


def run_stage(
    owner: sa.Engine,
    env: dict[str, str],
    *,
    workers: int,
    subscriptions: int,
    redis_url: str,
    logs: Path,
    seed: Callable[[], Any] | None = None,
) -> Stage:
    """Bill what is due with ``workers`` consumer processes and the scheduler. ``seed``
    runs while the workers start (they find no task before the scheduler's first)."""
    stage = Stage(workers=workers, subscriptions=subscriptions)
    env = {**env, "ABOWERK_REDIS_URL": redis_url, "ABOWERK_BILLING_SCHEDULE": "* * * * *"}
    env.pop("ABOWERK_TASKS_IMMEDIATE", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each worker counts in its own memory
    logs.mkdir(parents=True, exist_ok=True)
    flush(redis_url)
    ports = [free_port() for _ in range(workers)]
    clock = time.perf_counter()
    with processes() as procs:
        for n, port in enumerate(ports):
            args = ["worker", "--no-periodic", "--workers", str(THREADS)]
            args += ["--metrics-bind", f"127.0.0.1:{port}"]
            procs.append(spawn(args, env, logs / f"worker-{workers}-{n + 1}.log"))
        if seed is not None:
            seed()
            stage.overhead["seed"] = time.perf_counter() - clock
        # usually up by now: they started while the data was seeded
        clock = time.perf_counter()
        _wait_for(lambda: all(invoices_counted(p) is not None for p in ports), procs, 60)
        stage.overhead["workers_up"] = time.perf_counter() - clock
        # the run starts when the scheduler queues it, with the workers up and idle
        clock = time.perf_counter()
        since = _db_now(owner)
        procs.append(spawn(["worker", "--workers", "0"], env, logs / f"scheduler-{workers}.log"))
        group = _wait_for(lambda: first_group_since(owner, since), procs, 120)
        assert isinstance(group, str)
        stage.group_id = group
        stage.overhead["first_tick"] = time.perf_counter() - clock

        waited = []

        def done() -> datetime | None:
            # the work is done when every charge is invoiced: as the first group's last part
            # finishes, unless a later tick's group took a share and still holds some
            finished = _group_finished(owner, group)
            if finished is None:
                return None
            if pending_charges(owner):
                waited.append(True)
                return None
            return _db_now(owner) if waited else finished

        end = _wait_for(done, procs, TIMEOUT)
        counted = [invoices_counted(p) for p in ports]
        stage.per_worker = [int(c or 0) for c in counted]
        clock = time.perf_counter()
    stage.overhead["stop"] = time.perf_counter() - clock
    flush(redis_url)
    figures = stage_figures(owner, group, since, end)
    stage.invoices, stage.group_invoices, stage.seconds, stage.invoicing_seconds = figures
    return stage


def _db_now(owner: sa.Engine) -> datetime:
    now = _scalar(owner, "SELECT now()")
    assert isinstance(now, datetime)
    return now


def _wait_for(check: Any, procs: list[subprocess.Popen[bytes]], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"process(es) exited: {dead}"
        time.sleep(0.25)
    raise AssertionError(f"not done within {seconds:.0f} s")


# --- the report ----------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def figures(one: Stage, two: Stage, *, total_seconds: float | None = None) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load": os.getloadavg()[0],
        "tenants": TENANTS,
        "due": DUE,
        "one": one,
        "two": two,
        "ratio": two.rate / one.rate if one.rate else 0.0,
        "invoicing_ratio": two.invoicing_rate / one.invoicing_rate if one.invoicing_rate else 0.0,
        "total_seconds": total_seconds,
    }


def summary(f: dict[str, Any]) -> str:
    one, two = f["one"], f["two"]
    lines = [
        f"billing run on workers, {f['date']}, {f['machine']}, load {f['load']:.1f}",
        f"1 worker : {one.invoices:,} invoices in {one.seconds:.1f} s = {one.rate:,.0f}/s "
        f"(per worker {one.per_worker}; {_overhead(one)})",
        f"2 workers: {two.invoices:,} invoices in {two.seconds:.1f} s = {two.rate:,.0f}/s "
        f"(per worker {two.per_worker}; {_overhead(two)})",
        f"ratio 2 workers / 1 worker: {f['ratio']:.2f} (invoicing only: "
        f"{one.invoicing_rate:,.0f}/s and {two.invoicing_rate:,.0f}/s, "
        f"{f['invoicing_ratio']:.2f})",
    ]
    if f["total_seconds"] is not None:
        lines.append(f"whole scenario (seeding included): {f['total_seconds']:.0f} s")
    return "\n".join(lines)


def _overhead(stage: Stage) -> str:
    parts = [f"{name} {seconds:.1f} s" for name, seconds in stage.overhead.items()]
    if stage.group_invoices != stage.invoices:
        parts.append(f"first run group {stage.group_invoices:,}, a later tick's the rest")
    return ", ".join(parts)


def section(f: dict[str, Any], command: str) -> str:
    one, two = f["one"], f["two"]
    return f"""## Billing run on workers

Measured {f["date"]} by `{command}` on {f["machine"]}, PostgreSQL and Redis
on the same machine; 1-minute load average {f["load"]:.1f} at the end. The same scenario is
the test `tests/scale/test_billing_run_scale.py` (size: `ABOWERK_SCALE_SUBSCRIPTIONS`).
{f["tenants"]} tenants seeded like the billing-run benchmark above (every 5th a
Kleinunternehmer, one in ten Austrian; DE, AT, NL, FR and US buyers; monthly and yearly
prices), every subscription's period charge pending. One scheduler process (`abowerk worker
--workers 0`, the billing schedule every minute) starts the run; the consumers are `abowerk
worker --no-periodic --workers {THREADS}` processes on one Redis queue. Each stage bills
subscriptions that no earlier stage billed. Throughput is the run group's invoices over its
wall time, first run created (by the scheduler's tick) to last run finished; "invoicing" is
the same from the first invoice batch on, without the tick's planning and the other periodic
tasks queued with it (a fixed cost that weighs more on the smaller stage). From the database;
the invoices per worker from each worker's own `abowerk_billing_invoices_total`.

| workers | subscriptions | invoices | seconds | invoices/s | invoicing, invoices/s | \
invoices per worker |
|---|---|---|---|---|---|---|
| 1 | {one.subscriptions:,} | {one.invoices:,} | {one.seconds:.1f} | {one.rate:,.0f} | \
{one.invoicing_rate:,.0f} | {" / ".join(f"{n:,}" for n in one.per_worker)} |
| 2 | {two.subscriptions:,} | {two.invoices:,} | {two.seconds:.1f} | **{two.rate:,.0f}** | \
{two.invoicing_rate:,.0f} | {" / ".join(f"{n:,}" for n in two.per_worker)} |

Two workers against one: **{f["ratio"]:.2f}×** ({f["invoicing_ratio"]:.2f}× invoicing only).
Every period was invoiced exactly once (one invoice per subscription and period, no pending
charge left, invoice numbers without gaps). On two cores PostgreSQL, Redis and both workers
share the CPUs, so the second worker adds less than a second machine would.
"""


def write_section(text: str, path: Path) -> None:
    doc = path.read_text(encoding="utf-8")
    if "## Billing run on workers" in doc:
        doc = re.sub(
            r"## Billing run on workers\n.*?(?=\n## |\Z)", text.rstrip() + "\n", doc, flags=re.S
        )
    else:
        doc = doc.rstrip() + "\n\n" + text
    path.write_text(doc.rstrip() + "\n", encoding="utf-8")
