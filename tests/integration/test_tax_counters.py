"""The tax counter services on the database: one statement per `counters_for`, documents
written without a ledger entry (set-based writers) are booked by `after_ledger_change`,
`ledger_row` equals what finalization books, and a warning is claimed once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.invoices.models import Invoice
from billing.sellers.services import find_seller_profile
from billing.taxcounters import after_ledger_change, counters_for
from billing.taxcounters.models import TaxLedgerEntry, TaxThresholdWarning
from billing.taxcounters.rules import Status, ThresholdKey, ThresholdState
from billing.taxcounters.services import LEDGER_TABLE, _claim, ledger_row
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tax.model import Counters
from tests.api.test_invoices import make_customer
from tests.api.test_tax_reports import invoice, ku_profile, pay
from tests.conftest import TenantCtx

YEAR = utcnow().year


@contextmanager
def tenant_session(app: Flask, t: TenantCtx) -> Iterator[Any]:
    with app.app_context():
        session = db.session
        tenancy.set_tenant(session, t.tenant_id, livemode=False)
        try:
            yield session
        finally:
            session.rollback()
            db.session.remove()


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_counters_take_one_statement_when_asked_again(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    ku_profile(client, tenant)
    de = make_customer(client, tenant, "de_consumer")
    for amount in (100_00, 200_00, 300_00):
        pay(client, tenant, invoice(client, tenant, de, amount))
    with tenant_session(app, tenant) as session:
        profile = find_seller_profile(session, livemode=False)
        assert profile is not None
        counters_for(session, profile, livemode=False, on=date(YEAR, 6, 1))  # warms the tenant
        with statements(db.engine) as seen:
            counters = counters_for(session, profile, livemode=False, on=date(YEAR, 6, 1))
        assert len(seen) == 1, seen
        assert counters.turnover_current_year == Decimal("600.00")
        assert counters.turnover_previous_year == Decimal("20000.00")


def test_unbooked_documents_are_booked_when_ledger_changes(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    ku_profile(client, tenant)
    fr = make_customer(client, tenant, "fr_consumer")
    first = invoice(client, tenant, fr, 250_00)
    second = invoice(client, tenant, fr, 750_00)
    with tenant_session(app, tenant) as session:
        # as a set-based writer leaves them: documents without a ledger entry
        session.execute(sa.delete(TaxLedgerEntry))
        profile = find_seller_profile(session, livemode=False)
        assert profile is not None
        on = date.fromisoformat(first["supplied_on"])
        assert counters_for(session, profile, livemode=False, on=on).eu_b2c_current_year == 0
        after_ledger_change(session, livemode=False, year=on.year, at=utcnow())
        counters = counters_for(session, profile, livemode=False, on=on)
        assert counters.eu_b2c_current_year == Decimal("1000.00")
        booked = session.scalars(sa.select(TaxLedgerEntry.document_id)).all()
        assert sorted(booked) == sorted([first["id"], second["id"]])
        assert all(e.cross_border_consumer for e in session.scalars(sa.select(TaxLedgerEntry)))


def test_ledger_row_equals_what_finalization_books_when_built(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    from billing.invoices.snapshots import CustomerData, LineData, decide_lines
    from billing.sellers.services import tax_policy, tax_seller

    ku_profile(client, tenant)
    fr = make_customer(client, tenant, "fr_consumer")
    inv = invoice(client, tenant, fr, 123_45, lines=2)
    with tenant_session(app, tenant) as session:
        stored = session.scalars(
            sa.select(TaxLedgerEntry).where(TaxLedgerEntry.document_id == inv["id"])
        ).one()
        doc = session.scalars(sa.select(Invoice).where(Invoice.id == inv["id"])).one()
        profile = find_seller_profile(session, livemode=False)
        assert profile is not None
        buyer = CustomerData("Camille", "FR", None, None, "69003", "Lyon", False, None, None)
        lines = [
            LineData(ln.description, ln.quantity, ln.unit_amount, ln.net_minor) for ln in doc.lines
        ]
        assert doc.supplied_on is not None
        decisions = decide_lines(
            tax_seller(profile),
            Counters(turnover_previous_year=Decimal(20000)),  # the counters it was decided with
            buyer.facts(),
            lines,
            supplied_on=doc.supplied_on,
            currency="EUR",
            eur_rate=None,
            policy=tax_policy(profile),
        )
        row = ledger_row(
            tenant.tenant_id,
            invoice_id=doc.id,
            livemode=False,
            supplied_on=doc.supplied_on,
            currency="EUR",
            gross_minor=doc.gross_minor or 0,
            net_minors=[ln.net_minor for ln in doc.lines],
            decisions=decisions,
            eur_rate=None,
            now=utcnow(),
        )
        skip = {"id", "created_at"}
        assert set(row) == {c.key for c in LEDGER_TABLE.columns}
        assert {k: v for k, v in row.items() if k not in skip} == {
            c.key: getattr(stored, c.key) for c in LEDGER_TABLE.columns if c.key not in skip
        }


def test_warning_is_claimed_once_when_claimed_twice(app: Flask, tenant: TenantCtx) -> None:
    state = ThresholdState(
        ThresholdKey.EU_B2C_SERVICES, Decimal(10000), Decimal(10001), Status.CROSSED, "Art. 59c"
    )
    with tenant_session(app, tenant) as session:
        at = utcnow()
        assert _claim(session, livemode=False, year=YEAR, state=state, at=at) is True
        assert _claim(session, livemode=False, year=YEAR, state=state, at=at) is False
        assert _claim(session, livemode=True, year=YEAR, state=state, at=at) is True
        row = session.scalars(sa.select(TaxThresholdWarning)).one()  # the mode's own
        assert (row.year, row.threshold, row.kind, row.value_eur_minor, row.limit_eur_minor) == (
            YEAR,
            "eu_b2c_services",
            "crossed",
            1_000_100,
            1_000_000,
        )


def test_refund_reduces_received_turnover_when_it_succeeds(
    app: Flask, client: FlaskClient, tenant: TenantCtx
) -> None:
    from billing.payments.models import Payment
    from saas.kernel.ids import new_id

    ku_profile(client, tenant)  # a Kleinunternehmer: net = gross
    de = make_customer(client, tenant, "de_consumer")
    inv = invoice(client, tenant, de, 400_00)
    pay(client, tenant, inv)
    with tenant_session(app, tenant) as session:
        now = utcnow()
        session.add(
            Payment(
                id=new_id("pay"),
                livemode=False,
                customer_id=inv["customer_id"],
                invoice_id=inv["id"],
                provider="manual",
                kind="refund",
                status="succeeded",
                amount_minor=150_00,
                currency="EUR",
                received_at=now,
                attempt=1,
                needs_refund=False,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        profile = find_seller_profile(session, livemode=False)
        assert profile is not None
        counters = counters_for(session, profile, livemode=False, on=now.date())
        assert counters.turnover_current_year == Decimal("250.00")
