"""Bounded HTTP load test of the production setup, against a baseline measured in the same run.

    .venv/bin/python bench/bench_load.py [--duration 60] [--connections 16]

Only 127.0.0.1: a fresh PostgreSQL database (created and dropped here), gunicorn with
deploy/gunicorn.conf.py, and wrk (Debian package `wrk`) as the load generator sharing the
machine's cores. The mix: 70 % customer reads by id, 15 % customer list pages, 15 %
prorated subscription changes with an Idempotency-Key (each wrk thread owns its own
subscriptions, so changes never race). The baseline is a bare Flask + SQLAlchemy app doing a
primary-key lookup of the same customers, served by the same gunicorn settings. Results go
to the "HTTP load" section of docs/benchmarks.md (with --write).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get(
    "ABOWERK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1/test"
)
CUSTOMERS = 2000
SUBSCRIPTIONS_PER_THREAD = 200
THREADS = 2

BASELINE_APP = """
import os
from flask import Flask, jsonify, abort
import sqlalchemy as sa
engine = sa.create_engine(os.environ["BASELINE_DATABASE_URL"], pool_pre_ping=True)
customers = sa.Table("customers", sa.MetaData(), autoload_with=engine)
app = Flask(__name__)
@app.get("/customers/<customer_id>")
def get(customer_id):
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(customers).where(customers.c.id == customer_id)
        ).mappings().first()
    if row is None:
        abort(404)
    return jsonify({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()})
"""

LUA = r"""
local counter = 0
local changes = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args) counter = 0; changes = 0 end
request = function()
  counter = counter + 1
  local auth = {["Authorization"] = "Bearer " .. KEY}
  local r = counter % 20
  if MODE == "baseline" then
    return wrk.format("GET", "/customers/" .. CUSTOMERS[(counter % #CUSTOMERS) + 1])
  end
  if r < 14 then
    return wrk.format("GET", "/v1/customers/" .. CUSTOMERS[(counter % #CUSTOMERS) + 1], auth)
  elseif r < 17 then
    return wrk.format("GET", "/v1/customers?limit=10", auth)
  end
  changes = changes + 1  -- each change goes to the next of this thread's subscriptions
  local slot = (changes - 1) % PER_THREAD
  local visit = math.floor((changes - 1) / PER_THREAD)
  local sub = SUBS[tid * PER_THREAD + slot + 1]
  auth["Content-Type"] = "application/json"
  auth["Idempotency-Key"] = "load-" .. tid .. "-" .. counter .. "-" .. RUN
  local q = 3 - (visit % 2)  -- 3, 2, 3, …: always a change from the current quantity (2)
  return wrk.format("POST", "/v1/subscriptions/" .. sub .. "/change", auth,
    '{"quantity": ' .. q .. ', "proration": "immediate"}')
end
local shown = 0
response = function(status, headers, body)
  if status >= 400 and shown < 3 and os.getenv("LOAD_DEBUG") then
    shown = shown + 1
    io.write("ERROR " .. status .. " " .. string.sub(body, 1, 300) .. "\n")
  end
end
done = function(summary, latency, requests)
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "non2xx": %d, "socket": %d, "p50_us": %d, "p99_us": %d}',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99))
  io.write("RESULT " .. out .. "\n")
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, path: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not answer {path}")


def _seed(env: dict[str, str]) -> tuple[str, list[str], list[str]]:
    os.environ.update(env)
    from flask_migrate import upgrade

    from saas.app import create_app
    from saas.auth.services import create_api_key
    from saas.catalog import services as catalog
    from saas.customers.services import create_customer
    from saas.extensions import db
    from saas.kernel import tenancy
    from saas.kernel.clock import utcnow
    from saas.subscriptions.services import create_subscription
    from saas.tenants.services import create_tenant

    app = create_app({"ENVIRON": env})
    with app.app_context():
        upgrade()
        session = db.session()
        now = utcnow()
        with tenancy.unscoped(session):
            tenant = create_tenant(session, name="Last GmbH", now=now)
        tenancy.set_tenant(session, tenant.id, livemode=False)
        _, key = create_api_key(session, tenant_id=tenant.id, now=now)
        product = catalog.create_product(session, {"name": "Cloud"}, now=now)
        plan = catalog.create_plan(
            session,
            {
                "product_id": product.id,
                "name": "Team",
                "tax_kind": "electronically_supplied_service",
            },
            now=now,
        )
        price = catalog.create_price(
            session,
            {
                "plan_id": plan.id,
                "unit_amount": 1500,
                "interval": "month",
                "per_seat": True,
                "currency": "EUR",
            },
            now=now,
        )
        customer_ids, sub_ids = [], []
        for i in range(CUSTOMERS):
            c = create_customer(
                session,
                {
                    "email": f"c{i}@example.de",
                    "name": f"Kunde {i}",
                    "address": {
                        "country": "DE",
                        "postal_code": "10115",
                        "city": "Berlin",
                        "line1": "Hauptstr. 1",
                    },
                },
                now=now,
            )
            customer_ids.append(c.id)
            if i < SUBSCRIPTIONS_PER_THREAD * THREADS:
                sub = create_subscription(
                    session,
                    {
                        "customer_id": c.id,
                        "price_id": price.id,
                        "quantity": 2,
                        "has_payment_method": True,
                    },
                    actor="bench",
                    now=now,
                )
                sub_ids.append(sub.id)
            if i % 200 == 199:
                session.commit()
                tenancy.set_tenant(session, tenant.id, livemode=False)
        session.commit()
        db.engine.dispose()
    return key, customer_ids, sub_ids


def _run_wrk(port: int, script: Path, duration: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    for line in out.splitlines():
        if line.startswith("ERROR "):
            print(line, file=sys.stderr)
    match = re.search(r"RESULT (\{.*\})", out)
    if not match:
        raise RuntimeError(out)
    r: dict[str, Any] = json.loads(match.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["non2xx"] + r["socket"]
    return r


def _serve(cmd: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(port, probe)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=40)


def run(duration: int, connections: int) -> dict[str, Any]:
    name = f"abowerk_load_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp())
    env = {
        "ABOWERK_DATABASE_URL": url,
        "ABOWERK_VAR_DIR": str(tmp),
        "ABOWERK_SECRET_KEY": "load-test",
        "ABOWERK_RATE_LIMIT": "1000000 per second",
        "ABOWERK_LOG_LEVEL": "WARNING",
        # as in production: background work (webhooks, metrics ledger) is queued for the
        # worker (here the embedded SQLite queue, with no consumer running), not done inline
    }
    try:
        key, customers, subs = _seed(env)
        bin_dir = Path(sys.executable).parent
        results = {}
        for mode in ("baseline", "abowerk"):
            port = _free_port()
            script = tmp / f"{mode}.lua"
            lua_customers = "{" + ",".join(f'"{c}"' for c in customers) + "}"
            lua_subs = "{" + ",".join(f'"{s}"' for s in subs) + "}"
            script.write_text(
                f'KEY = "{key}"\nMODE = "{mode}"\nRUN = "{secrets.token_hex(3)}"\n'
                f"PER_THREAD = {SUBSCRIPTIONS_PER_THREAD}\nCUSTOMERS = {lua_customers}\n"
                f"SUBS = {lua_subs}\n" + LUA
            )
            if mode == "baseline":
                (tmp / "baseline_app.py").write_text(BASELINE_APP)
                cmd = [
                    str(bin_dir / "gunicorn"),
                    "-c",
                    "deploy/gunicorn.conf.py",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--chdir",
                    str(tmp),
                    "baseline_app:app",
                ]
                serve_env = {**env, "BASELINE_DATABASE_URL": url}
                probe = f"/customers/{customers[0]}"
            else:
                cmd = [
                    str(bin_dir / "gunicorn"),
                    "-c",
                    "deploy/gunicorn.conf.py",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "saas.wsgi:app",
                ]
                serve_env, probe = env, "/readyz"
            proc = _serve(cmd, serve_env, port, probe)
            try:
                results[mode] = _run_wrk(port, script, duration, connections)
            finally:
                _stop(proc)
        results["ratio"] = results["abowerk"]["rps"] / results["baseline"]["rps"]
        return results
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _markdown(r: dict[str, Any], duration: int, connections: int) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    rows = []
    for mode, label in (
        ("baseline", "bare Flask + SQLAlchemy, primary-key lookup"),
        ("abowerk", "abowerk mix (70 % reads by id, 15 % lists, 15 % changes)"),
    ):
        x = r[mode]
        rows.append(
            f"| {label} | {x['rps']:,.0f} | {x['p50_us'] / 1000:.1f} | {x['p99_us'] / 1000:.1f} "
            f"| {x['errors']} |"
        )
    return (
        "## HTTP load\n\n"
        f"{datetime.now(UTC):%Y-%m-%d}, {cpu}, {os.cpu_count()} cores; PostgreSQL 15, gunicorn "
        f"with deploy/gunicorn.conf.py, wrk with {THREADS} threads and {connections} "
        f"connections for {duration} s on the same machine (`bench/bench_load.py`).\n\n"
        "| workload | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nabowerk sustains **{r['ratio']:.0%}** of the baseline's throughput "
        "(target: at least 60 %, 0 errors, p99 under 100 ms).\n"
    )


def write_section(markdown: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"## HTTP load\n.*?(?=\n## |\Z)", re.S)
    text = (
        pattern.sub(markdown.rstrip() + "\n", text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + markdown)
    )
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    r = run(args.duration, args.connections)
    md = _markdown(r, args.duration, args.connections)
    print(md)
    if args.write:
        write_section(md)


if __name__ == "__main__":
    main()
