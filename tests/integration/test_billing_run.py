"""Billing runs: renewals, trial conversions, scheduled changes and prorations invoiced
once; a rerun adds nothing; a run-made invoice is exactly what finalizing an equal draft
makes; the CLI runs and reports."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.runs.models import BillingRun
from billing.runs.services import active_tenant_ids, create_runs, execute_run
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.api.test_catalog import create_plan, create_price
from tests.api.test_invoices import CUSTOMERS
from tests.api.test_seller_profile import put_profile
from tests.api.test_subscriptions import create_subscription
from tests.conftest import TenantCtx


def bill(
    app: Flask, at: datetime, *, tenant_id: str | None = None, batch_size: int = 2
) -> list[BillingRun]:
    with app.app_context():
        tenant_ids = [tenant_id] if tenant_id else active_tenant_ids(db.engine)
        _, created = create_runs(db.engine, tenant_ids, at=at, trigger="cli", now=utcnow())
        return [
            execute_run(db.engine, t, run_id, batch_size=batch_size, clock_now=utcnow)
            for t, run_id in created
        ]


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def invoices(engine: sa.Engine, tenant_id: str) -> list[dict[str, Any]]:
    return rows(
        engine,
        "SELECT * FROM invoices WHERE tenant_id = :t AND kind <> 'credit_note' ORDER BY number",
        t=tenant_id,
    )


def pending(engine: sa.Engine, tenant_id: str) -> int:
    return len(
        rows(
            engine,
            "SELECT id FROM subscription_charges WHERE tenant_id = :t AND invoiced_at IS NULL",
            t=tenant_id,
        )
    )


def day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def customer(client: FlaskClient, t: TenantCtx, kind: str = "de_consumer") -> str:
    resp = client.post("/v1/customers", json=CUSTOMERS[kind], headers=t.headers)
    assert resp.status_code == 201, resp.json
    return str(resp.json["id"])


def test_each_due_period_is_invoiced_once_when_runs_repeat(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    put_profile(client, tenant)
    price = create_price(client, tenant, unit_amount=1900)["id"]
    subs = [
        create_subscription(client, tenant, price, customer_id=customer(client, tenant))
        for _ in range(5)
    ]
    now = utcnow()
    first = bill(app, now)
    assert [(r.status, r.invoices_finalized) for r in first] == [("succeeded", 5)]
    assert pending(owner_engine, tenant.tenant_id) == 0
    # two renewals later (the worker was down): each period gets its own invoice
    later = now + timedelta(days=62)
    second = bill(app, later)
    assert second[0].subscriptions_advanced == 5
    assert second[0].invoices_finalized == 10
    again = bill(app, later)
    assert (again[0].subscriptions_advanced, again[0].invoices_finalized) == (0, 0)
    got = invoices(owner_engine, tenant.tenant_id)
    keys = [(i["subscription_id"], i["period_start_on"]) for i in got]
    assert len(keys) == len(set(keys)) == 15
    assert {s for s, _ in keys} == {s["id"] for s in subs}
    assert all(i["status"] == "open" and i["net_minor"] == 1900 for i in got)
    linked = rows(
        owner_engine,
        "SELECT count(*) AS n FROM subscription_charges WHERE tenant_id = :t "
        "AND invoice_id IS NOT NULL AND invoiced_at IS NOT NULL",
        t=tenant.tenant_id,
    )
    assert linked[0]["n"] == 15
    events = rows(
        owner_engine,
        "SELECT count(*) AS n FROM events WHERE tenant_id = :t AND type = 'invoice.finalized'",
        t=tenant.tenant_id,
    )
    assert events[0]["n"] == 15
    # the event carries what the invoice API returns
    (event,) = rows(
        owner_engine,
        "SELECT data FROM events WHERE tenant_id = :t AND type = 'invoice.finalized' LIMIT 1",
        t=tenant.tenant_id,
    )
    data = event["data"] if isinstance(event["data"], dict) else json.loads(event["data"])
    api = client.get(f"/v1/invoices/{data['object']['id']}", headers=tenant.headers)
    assert api.status_code == 200 and data["object"] == api.json


def test_numbers_are_contiguous_when_batches_reserve_blocks(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    put_profile(client, tenant)
    price = create_price(client, tenant, unit_amount=1000)["id"]
    for _ in range(7):
        create_subscription(client, tenant, price, customer_id=customer(client, tenant))
    from saas.observability import BILLING_INVOICES

    counted = BILLING_INVOICES.labels(livemode="false")._value.get()
    runs = bill(app, utcnow(), batch_size=3)
    assert runs[0].batches_done == 3 and runs[0].invoices_finalized == 7
    # the throughput metric counts what the batches committed
    assert BILLING_INVOICES.labels(livemode="false")._value.get() == counted + 7
    seqs = sorted(
        int(i["number"].rsplit("-", 1)[1]) for i in invoices(owner_engine, tenant.tenant_id)
    )
    assert seqs == list(range(1, 8))


def test_trial_converts_and_is_invoiced_when_the_run_passes_its_end(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    put_profile(client, tenant)
    plan = create_plan(client, tenant, trial_days=14)
    price = create_price(client, tenant, plan["id"], unit_amount=4900)["id"]
    sub = create_subscription(client, tenant, price, customer_id=customer(client, tenant))
    assert sub["status"] == "trialing"
    assert bill(app, utcnow())[0].invoices_finalized == 0  # a trial owes nothing
    run = bill(app, utcnow() + timedelta(days=15))[0]
    assert run.subscriptions_advanced == 1 and run.invoices_finalized == 1
    (invoice,) = invoices(owner_engine, tenant.tenant_id)
    assert invoice["subscription_id"] == sub["id"] and invoice["net_minor"] > 0


def credit_notes(engine: sa.Engine, tenant_id: str) -> list[dict[str, Any]]:
    return rows(
        engine,
        "SELECT * FROM invoices WHERE tenant_id = :t AND kind = 'credit_note' ORDER BY number",
        t=tenant_id,
    )


def test_prorations_are_invoiced_and_credits_credited_once_when_plans_change(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    put_profile(client, tenant)
    cheap = create_price(client, tenant, unit_amount=1900)["id"]
    dear = create_price(client, tenant, unit_amount=9900)["id"]
    sub = create_subscription(client, tenant, cheap, customer_id=customer(client, tenant))
    now = utcnow()
    bill(app, now)
    (first,) = invoices(owner_engine, tenant.tenant_id)

    def change(price_id: str) -> None:
        resp = client.post(
            f"/v1/subscriptions/{sub['id']}/change",
            json={"price_id": price_id, "proration": "immediate"},
            headers=tenant.headers,
        )
        assert resp.status_code == 200, resp.json

    change(dear)
    run = bill(app, utcnow())[0]
    # the new price's remaining time: an invoice without a period key; the old price's
    # unused time: a credit note correcting the invoice that billed it (never a negative line)
    assert (run.invoices_finalized, run.failed) == (1, 0), run.last_error
    assert pending(owner_engine, tenant.tenant_id) == 0
    upgrade = next(i for i in invoices(owner_engine, tenant.tenant_id) if i["id"] != first["id"])
    assert upgrade["period_start_on"] is None and upgrade["subscription_id"] == sub["id"]
    (note,) = credit_notes(owner_engine, tenant.tenant_id)
    assert note["corrects_invoice_id"] == first["id"] and 0 < note["net_minor"] <= 1900
    change(cheap)
    run = bill(app, utcnow())[0]
    assert (run.invoices_finalized, run.failed) == (1, 0), run.last_error
    notes = credit_notes(owner_engine, tenant.tenant_id)
    assert len(notes) == 2 and notes[1]["corrects_invoice_id"] == upgrade["id"]
    credits = rows(
        owner_engine,
        "SELECT amount, invoice_id FROM subscription_charges WHERE tenant_id = :t AND amount < 0",
        t=tenant.tenant_id,
    )
    assert sorted(c["invoice_id"] for c in credits) == sorted(n["id"] for n in notes)
    assert sum(n["net_minor"] for n in notes) == -sum(c["amount"] for c in credits)
    again = bill(app, utcnow())[0]
    assert (again.invoices_finalized, len(credit_notes(owner_engine, tenant.tenant_id))) == (0, 2)


def test_scheduled_change_is_invoiced_at_the_new_price_when_the_period_ends(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    put_profile(client, tenant)
    cheap = create_price(client, tenant, unit_amount=1900)["id"]
    dear = create_price(client, tenant, unit_amount=9900)["id"]
    sub = create_subscription(client, tenant, cheap, customer_id=customer(client, tenant))
    now = utcnow()
    bill(app, now)
    resp = client.post(
        f"/v1/subscriptions/{sub['id']}/change",
        json={"price_id": dear, "proration": "period_end"},
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    bill(app, now + timedelta(days=32))
    got = invoices(owner_engine, tenant.tenant_id)
    assert [i["net_minor"] for i in got] == [1900, 9900]


CUSTOMER_KINDS = ["de_consumer", "de_business", "at_business"]


@pytest.mark.parametrize("kind", CUSTOMER_KINDS)
def test_run_made_invoice_equals_a_finalized_draft_when_lines_are_the_same(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine, kind: str
) -> None:
    from billing.invoices.services import create_draft, finalize_invoice

    put_profile(client, tenant)
    price = create_price(client, tenant, unit_amount=4900, per_seat=True)["id"]
    cust = customer(client, tenant, kind)
    create_subscription(client, tenant, price, customer_id=cust, quantity=3)
    at = utcnow()
    bill(app, at)
    (made,) = invoices(owner_engine, tenant.tenant_id)
    lines = rows(
        owner_engine,
        "SELECT * FROM invoice_lines WHERE tenant_id = :t AND invoice_id = :i ORDER BY position",
        t=tenant.tenant_id,
        i=made["id"],
    )
    with app.app_context():
        session = db.session
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        draft = create_draft(
            session,
            {
                "customer_id": cust,
                "supplied_on": day(made["supplied_on"]),
                "lines": [
                    {
                        "description": line["description"],
                        "quantity": Decimal(str(line["quantity"])),
                        "unit_amount": line["unit_amount"],
                        "period": {
                            "start": day(line["period_start_on"]),
                            "end": day(line["period_end_on"]),
                        },
                    }
                    for line in lines
                ],
            },
            now=at,
        )
        finalized = finalize_invoice(session, draft.id, actor="test", now=at)
        session.commit()
        other_id = finalized.id
        db.session.remove()
    (other,) = [i for i in invoices(owner_engine, tenant.tenant_id) if i["id"] == other_id]
    a = json.loads(made["snapshot_json"])
    b = json.loads(other["snapshot_json"])
    for snapshot in (a, b):
        snapshot.pop("number")
        snapshot.pop("payment_reference")
    assert a == b
    differ = {
        "id",
        "number",
        "snapshot_json",
        "content_sha256",
        "subscription_id",
        "period_start_on",
        "billing_run_id",
        "created_at",
        "updated_at",
        "version",
    }
    assert {k: v for k, v in made.items() if k not in differ} == {
        k: v for k, v in other.items() if k not in differ
    }

    def parts(table: str, invoice_id: str) -> list[dict[str, Any]]:
        found = rows(
            owner_engine,
            f"SELECT * FROM {table} WHERE tenant_id = :t AND invoice_id = :i ORDER BY position",
            t=tenant.tenant_id,
            i=invoice_id,
        )
        return [
            {k: v for k, v in r.items() if k not in {"id", "invoice_id", "created_at"}}
            for r in found
        ]

    assert parts("invoice_lines", made["id"]) == parts("invoice_lines", other_id)
    assert parts("invoice_tax_groups", made["id"]) == parts("invoice_tax_groups", other_id)


def test_cli_runs_with_a_summary_and_shows_status_when_asked(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    put_profile(client, tenant)
    price = create_price(client, tenant, unit_amount=1900)["id"]
    for _ in range(3):
        create_subscription(client, tenant, price, customer_id=customer(client, tenant))
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["billing", "run", "--tenant", tenant.tenant_id, "--batch-size", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["invoices_finalized"] == 3 and out["failed"] == 0
    run_id = out["runs"][0]["id"]
    status = runner.invoke(args=["billing", "status", run_id])
    assert status.exit_code == 0, status.output
    assert run_id in status.output and "3 invoices" in status.output
    latest = runner.invoke(args=["billing", "status", "--json"])
    assert json.loads(latest.output)["runs"][0]["id"] == run_id
    text = runner.invoke(args=["billing", "run", "--at", "2026-13-01"])
    assert text.exit_code != 0 and "ISO 8601" in text.output


@pytest.mark.parametrize("batch_size", [2, 5])
def test_crossing_invoice_and_all_later_ones_go_to_oss_when_eu_b2c_passes_10k_in_a_run(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine, batch_size: int
) -> None:
    # Art. 59c: 9,500 EUR of cross-border consumer services so far; five 200 EUR supplies to
    # French consumers make 9,700, 9,900, then 10,100: the third is taxed in France, and
    # every later one. The same whether the run decides them in one batch or in several.
    put_profile(client, tenant, counters={"eu_b2c_current_year": 950_000})
    price = create_price(client, tenant, unit_amount=20000)["id"]
    subs = [
        create_subscription(
            client, tenant, price, customer_id=customer(client, tenant, "fr_consumer")
        )["id"]
        for _ in range(5)
    ]
    run = bill(app, utcnow(), batch_size=batch_size)[0]
    assert (run.invoices_finalized, run.failed) == (5, 0), run.last_error
    countries = {
        r["subscription_id"]: r["taxing_country"]
        for r in rows(
            owner_engine,
            "SELECT i.subscription_id, l.taxing_country FROM invoices i JOIN invoice_lines l "
            "ON l.tenant_id = i.tenant_id AND l.invoice_id = i.id WHERE i.tenant_id = :t",
            t=tenant.tenant_id,
        )
    }
    # supply order within a day is subscription order (ids grow with creation)
    assert [countries[s] for s in sorted(subs)] == ["DE", "DE", "FR", "FR", "FR"]


def test_received_turnover_decides_the_kleinunternehmer_exemption_when_invoices_pile_up(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    # § 19 counts money received: invoices of a run (unpaid) do not move the counter, so a
    # Kleinunternehmer at 99,000 EUR stays exempt for all of them
    put_profile(
        client,
        tenant,
        kleinunternehmer=True,
        counters={"turnover_previous_year": 2_000_000, "turnover_current_year": 9_900_000},
    )
    price = create_price(client, tenant, unit_amount=40000)["id"]
    for _ in range(5):
        create_subscription(client, tenant, price, customer_id=customer(client, tenant))
    run = bill(app, utcnow(), batch_size=2)[0]
    assert (run.invoices_finalized, run.failed) == (5, 0), run.last_error
    assert [i["vat_minor"] for i in invoices(owner_engine, tenant.tenant_id)] == [0] * 5


def test_run_fans_out_into_parts_that_each_bill_their_share_when_queued(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    put_profile(client, tenant)
    price = create_price(client, tenant, unit_amount=1900)["id"]
    for _ in range(5):
        create_subscription(client, tenant, price, customer_id=customer(client, tenant))
    runner = app.test_cli_runner()
    # tasks run inline in the tests (immediate mode): planning queues 3 parts of ≤ 2
    result = runner.invoke(
        args=["billing", "run", "--tenant", tenant.tenant_id, "--queue", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout.strip().splitlines()[-1])["runs"]
    assert run["status"] == "succeeded"
    assert (run["batches_done"], run["batches_total"]) == (3, 3)
    assert run["invoices_finalized"] == 5
    keys = [
        (i["subscription_id"], i["period_start_on"])
        for i in invoices(owner_engine, tenant.tenant_id)
    ]
    assert len(keys) == len(set(keys)) == 5


def test_taken_numbers_are_skipped_and_logged_when_a_changed_pattern_comes_round_again(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    from tests.api.test_invoices import make_finalized

    put_profile(client, tenant, numbering={"invoice_pattern": "{year}{seq:02}"})
    year = utcnow().year
    assert make_finalized(client, tenant)["number"] == f"TEST-{year}01"
    # "{year}0{seq}" renders number 1 as "{year}{seq:02}" did: the run's block collides
    put_profile(client, tenant, numbering={"invoice_pattern": "{year}0{seq}"})
    price = create_price(client, tenant, unit_amount=1900)["id"]
    for _ in range(3):
        create_subscription(client, tenant, price, customer_id=customer(client, tenant))
    run = bill(app, utcnow(), batch_size=5)[0]
    assert (run.invoices_finalized, run.failed) == (3, 0), run.last_error
    numbers = [i["number"] for i in invoices(owner_engine, tenant.tenant_id)]
    assert numbers == [f"TEST-{year}{n}" for n in ("01", "02", "03", "04")]
    skips = rows(owner_engine, "SELECT number, reason FROM invoice_number_skips")
    assert skips == [{"number": f"TEST-{year}01", "reason": "number_taken"}]
