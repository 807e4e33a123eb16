"""Benchmark: a billing run over N due subscriptions on PostgreSQL, against a bare COPY.

    .venv/bin/python bench/bench_billing_run.py [--subscriptions 1000000] [--tenants 100]
        [--batch-size 2000] [--url postgresql://postgres@127.0.0.1/test] [--no-write]
        [--advance-sample 2000]

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
* phase A (advancing due subscriptions through the subscription service's ORM path) on a
  separate sample of ``--advance-sample`` subscriptions.

Document rendering is not part of the run (it is queued per batch); bench_documents.py
measures it. Writes the "Billing run" section of docs/benchmarks.md unless --no-write.
"""

from __future__ import annotations

import argparse
import io
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

KINDS: dict[str, dict[str, Any]] = {
    "de_consumer": {"country": "DE", "postal_code": "10115", "city": "Berlin"},
    "de_business": {
        "country": "DE",
        "postal_code": "80331",
        "city": "München",
        "is_business": True,
        "vat_id": "DE811907980",
    },
    "at_consumer": {"country": "AT", "postal_code": "1010", "city": "Wien"},
    "at_business": {
        "country": "AT",
        "postal_code": "1010",
        "city": "Wien",
        "is_business": True,
        "vat_id": "ATU13585627",
    },
    "fr_consumer": {"country": "FR", "postal_code": "69003", "city": "Lyon"},
    "nl_consumer": {"country": "NL", "postal_code": "1011", "city": "Amsterdam"},
    "nl_business": {
        "country": "NL",
        "postal_code": "1011",
        "city": "Amsterdam",
        "is_business": True,
        "vat_id": "NL004495445B01",
    },
    "us_consumer": {"country": "US", "postal_code": "10001", "city": "New York"},
}


def seller(i: int) -> dict[str, Any]:
    austrian = i % 10 == 3
    kleinunternehmer = i % 5 == 0
    body: dict[str, Any] = {
        "legal_name": f"Bench {i} GmbH",
        "address": {
            "line1": "Hauptstr. 1",
            "postal_code": "1010" if austrian else "10115",
            "city": "Wien" if austrian else "Berlin",
            "country": "AT" if austrian else "DE",
        },
        "tax_number": "37/123/45678",
        "bank": {"iban": "DE89370400440532013000", "account_holder": f"Bench {i} GmbH"},
        "kleinunternehmer": kleinunternehmer,
    }
    # a Kleinunternehmer selling to businesses in other member states needs a VAT ID too
    body["vat_id"] = "ATU13585627" if austrian else "DE811907980"
    return body


def customer_body(kind: str) -> dict[str, Any]:
    facts = dict(KINDS[kind])
    address = {
        "line1": "Musterweg 1",
        "postal_code": facts.pop("postal_code"),
        "city": facts.pop("city"),
        "country": facts.pop("country"),
    }
    body = {"email": f"{kind}@example.org", "name": f"Kunde {kind}", "address": address, **facts}
    if "vat_id" in body:
        body["vat_id_check"] = {"status": "valid", "checked_at": "2026-01-05T10:00:00Z"}
    return body


def seed_templates(app: Any, tenants: int) -> list[str]:
    """Tenants, seller profiles, catalogs and one customer + subscription per kind."""
    from saas.auth.services import create_api_key
    from saas.extensions import db
    from saas.kernel import tenancy
    from saas.kernel.clock import utcnow
    from saas.tenants.services import create_tenant

    client = app.test_client()
    ids = []
    for i in range(tenants):
        with app.app_context():
            session = db.session
            with tenancy.unscoped(session):
                tenant = create_tenant(session, name=f"Bench {i} GmbH", now=utcnow())
            tenancy.set_tenant(session, tenant.id)
            _, secret = create_api_key(session, tenant_id=tenant.id, now=utcnow())
            session.commit()
            tenant_id = tenant.id
            db.session.remove()
        headers = {"Authorization": f"Bearer {secret}"}

        def post(path: str, body: dict[str, Any], headers: dict[str, str] = headers) -> Any:
            resp = client.post(path, json=body, headers=headers)
            assert resp.status_code in (200, 201), (path, resp.json)
            return resp.json

        resp = client.put("/v1/seller_profile", json=seller(i), headers=headers)
        assert resp.status_code == 200, resp.json
        product = post("/v1/products", {"name": "Cloud"})
        plan = post("/v1/plans", {"product_id": product["id"], "name": "Pro"})
        prices = [
            post("/v1/prices", {"plan_id": plan["id"], "unit_amount": amount, "interval": iv})
            for amount, iv in ((1900, "month"), (4900, "month"), (49000, "year"))
        ]
        for n, kind in enumerate(KINDS):
            cust = post("/v1/customers", customer_body(kind))
            post(
                "/v1/subscriptions",
                {
                    "customer_id": cust["id"],
                    "price_id": prices[n % len(prices)]["id"],
                    "has_payment_method": True,
                },
            )
        ids.append(tenant_id)
    return ids


def _copy(conn: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    cols = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _templates(dbapi: Any, tenant_id: str) -> dict[str, tuple[list[str], list[Any]]]:
    templates = {}
    with dbapi.cursor() as cur:
        for table in ("customers", "subscriptions", "subscription_periods", "subscription_charges"):
            # constant table names, never input
            cur.execute(f"SELECT * FROM {table} WHERE tenant_id = %s", (tenant_id,))  # noqa: S608
            templates[table] = ([d.name for d in cur.description], cur.fetchall())
    return templates


def clone(owner: sa.Engine, tenant_ids: list[str], subscriptions: int) -> None:
    """Clone each tenant's template customers, subscriptions, periods and pending charges
    with COPY until there are ``subscriptions`` in all."""
    import json

    from saas.kernel.ids import new_id

    per_tenant = subscriptions // len(tenant_ids)
    raw = owner.raw_connection()
    try:
        dbapi = raw.driver_connection
        for tenant_id in tenant_ids:
            templates = _templates(dbapi, tenant_id)
            customers_cols, customers = templates["customers"]
            subs_cols, subs = templates["subscriptions"]
            per_cols, periods = templates["subscription_periods"]
            ch_cols, charges = templates["subscription_charges"]
            by_customer = {c[customers_cols.index("id")]: c for c in customers}
            period_of = {p[per_cols.index("subscription_id")]: p for p in periods}
            charge_of = {c[ch_cols.index("subscription_id")]: c for c in charges}
            out: dict[str, list[tuple[Any, ...]]] = {
                "customers": [],
                "subscriptions": [],
                "subscription_periods": [],
                "subscription_charges": [],
            }
            clones = per_tenant - len(subs)
            for n in range(clones):
                sub = list(subs[n % len(subs)])
                cust = list(by_customer[sub[subs_cols.index("customer_id")]])
                period = list(period_of[sub[subs_cols.index("id")]])
                charge = list(charge_of[sub[subs_cols.index("id")]])
                cust_id, sub_id = new_id("cus"), new_id("sub")
                period_id, charge_id = new_id("sper"), new_id("sch")
                cust[customers_cols.index("id")] = cust_id
                cust[customers_cols.index("email")] = f"c{n}@example.org"
                sub[subs_cols.index("id")] = sub_id
                sub[subs_cols.index("customer_id")] = cust_id
                period[per_cols.index("id")] = period_id
                period[per_cols.index("subscription_id")] = sub_id
                charge[ch_cols.index("id")] = charge_id
                charge[ch_cols.index("subscription_id")] = sub_id
                charge[ch_cols.index("customer_id")] = cust_id
                charge[ch_cols.index("period_id")] = period_id
                out["customers"].append(tuple(cust))
                out["subscriptions"].append(tuple(sub))
                out["subscription_periods"].append(tuple(period))
                out["subscription_charges"].append(tuple(charge))
            for table, cols in (
                ("customers", customers_cols),
                ("subscriptions", subs_cols),
                ("subscription_periods", per_cols),
                ("subscription_charges", ch_cols),
            ):
                rows = [
                    tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row)
                    for row in out[table]
                ]
                _copy(dbapi, table, cols, rows)
            dbapi.commit()
        with dbapi.cursor() as cur:
            cur.execute("ANALYZE")
        dbapi.commit()
    finally:
        raw.close()


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


def run_billing(app: Any, batch_size: int, at: datetime) -> tuple[int, float, list[Any]]:
    from billing.runs.services import active_tenant_ids, create_runs, execute_run
    from saas.extensions import db
    from saas.kernel.clock import utcnow

    with app.app_context():
        started = time.perf_counter()
        tenant_ids = active_tenant_ids(db.engine)
        _, created = create_runs(
            db.engine, tenant_ids, at=at, trigger="cli", now=utcnow(), batch_size=batch_size
        )
        runs = [
            execute_run(db.engine, t, run_id, batch_size=batch_size, clock_now=utcnow)
            for t, run_id in created
        ]
        seconds = time.perf_counter() - started
    return sum(r.invoices_finalized for r in runs), seconds, runs


def advance_sample(app: Any, owner: sa.Engine, sample: int, batch_size: int) -> tuple[int, float]:
    """Phase A alone: move ``sample`` subscriptions of the first tenant past a renewal."""
    from billing.runs.services import _advance_phase, create_runs
    from saas.extensions import db
    from saas.kernel.clock import utcnow

    with owner.connect() as conn:
        tenant_id = conn.execute(sa.text("SELECT id FROM tenants ORDER BY id LIMIT 1")).scalar()
        limit_ids = conn.execute(
            sa.text("SELECT id FROM subscriptions WHERE tenant_id = :t ORDER BY id LIMIT :n"),
            {"t": tenant_id, "n": sample},
        ).scalars()
        ids = list(limit_ids)
        # only the sample is due: the others are pushed far out
        conn.execute(
            sa.text(
                "UPDATE subscriptions SET next_action_at = next_action_at + interval '5 years' "
                "WHERE tenant_id = :t AND NOT (id = ANY(:ids))"
            ),
            {"t": tenant_id, "ids": ids},
        )
        conn.commit()
    at = utcnow() + timedelta(days=400)
    with app.app_context():
        _, created = create_runs(db.engine, [tenant_id], at=at, trigger="cli", now=utcnow())
        started = time.perf_counter()
        _advance_phase(
            db.engine,
            tenant_id,
            created[0][1],
            at=at,
            clock_id=None,
            batch_size=batch_size,
            clock_now=utcnow,
            progress=None,
        )
        seconds = time.perf_counter() - started
    with owner.connect() as conn:
        moved = conn.execute(
            sa.text(
                "SELECT count(*) FROM subscription_history WHERE tenant_id = :t AND event = 'renew'"
            ),
            {"t": tenant_id},
        ).scalar_one()
    return int(moved), seconds


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
{f["total"]} --tenants {args.tenants} --batch-size {args.batch_size}` on {platform.machine()},
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
| peak RSS of the process | {f["rss_mib"]:,.0f} MiB |
| baseline: bare `COPY` of the same invoice rows, same run | {f["copy_rate"]:,.0f} rows/s |
| ratio run / bare COPY | {f["rate"] / f["copy_rate"]:.1%} |
| phase A (ORM advance), sample of {args.advance_sample} subscriptions | \
{f["advance_rate"]:,.1f} renewals/s ({f["moved"]} in {f["advance_seconds"]:.1f} s) |

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
    invoices, seconds, runs = run_billing(app, args.batch_size, utcnow())
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    failed = sum(r.failed for r in runs)
    rate = invoices / seconds
    print(f"run: {invoices} invoices in {seconds:.1f}s = {rate:,.0f}/s, failed {failed}")
    print(f"peak RSS {rss_mib:.0f} MiB")
    copy_rows, copy_seconds = bare_copy(owner)
    copy_rate = copy_rows / copy_seconds
    print(f"bare COPY: {copy_rows} rows in {copy_seconds:.2f}s = {copy_rate:,.0f}/s")
    print(f"ratio: the run reaches {rate / copy_rate:.1%} of a bare COPY")
    moved, advance_seconds = advance_sample(app, owner, args.advance_sample, 500)
    print(f"phase A: {moved} renewals in {advance_seconds:.1f}s")
    return {
        "total": total,
        "invoices": invoices,
        "seconds": seconds,
        "rate": rate,
        "failed": failed,
        "rss_mib": rss_mib,
        "copy_rate": copy_rate,
        "moved": moved,
        "advance_seconds": advance_seconds,
        "advance_rate": moved / advance_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--advance-sample", type=int, default=2000)
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
