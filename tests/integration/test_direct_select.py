"""saas.kernel.direct: reads and writes through the driver behave as SQLAlchemy's own
statements do (values converted by their column types, errors, a dropped connection), and
refuse what they cannot do as SQLAlchemy would (unscoped reads of tenant-owned tables,
column values left to defaults)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from saas.customers.models import Customer
from saas.customers.queries import customer_view
from saas.customers.services import create_customer
from saas.events.models import Event
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.db import table_of
from saas.kernel.direct import DirectSelect, DirectWrite
from tests.conftest import CUSTOMER, POSTGRES_ONLY, TenantCtx


def test_unscoped_select_is_refused_when_it_reads_a_tenant_owned_table() -> None:
    with pytest.raises(TypeError):
        DirectSelect.unscoped(sa.select(Customer.__table__.c.id))


def test_driver_error_is_raised_as_sqlalchemys_when_a_statement_fails(
    app: Flask, tenant: TenantCtx
) -> None:
    broken = DirectSelect.unscoped(sa.text("SELECT no_such_column FROM tenants").columns())
    with app.app_context():
        session = db.session()
        try:
            with pytest.raises(sa.exc.DBAPIError):
                broken.first(session, {})
        finally:
            session.rollback()
            db.session.remove()


@POSTGRES_ONLY
def test_connection_is_invalidated_when_the_server_ends_it_during_a_direct_read(
    app: Flask, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        customer_id = create_customer(session, dict(CUSTOMER), now=utcnow()).id
        session.commit()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        assert customer_view(session, customer_id).email == CUSTOMER["email"]
        pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with owner_engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
        with pytest.raises(sa.exc.OperationalError) as raised:
            customer_view(session, customer_id)
        assert raised.value.connection_invalidated
        session.rollback()
        db.session.remove()
        # the pool replaced the connection: the next request reads again
        session = db.session()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        assert customer_view(session, customer_id).id == customer_id
        session.rollback()
        db.session.remove()


def _event_row(tenant_id: str, event_id: str, created_at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "tenant_id": tenant_id,
        "livemode": False,
        "type": "customer.created",
        "data": {"object": {"id": "cus_x", "name": "Jörg"}},
        "created_at": created_at,
    }


def test_direct_write_converts_values_by_column_type_when_inserting_one_and_many(
    app: Flask, tenant: TenantCtx
) -> None:
    insert = DirectWrite(sa.insert(table_of(Event)))
    at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        one = insert.execute(session, _event_row(tenant.tenant_id, "evt_direct_1", at))
        many = insert.execute(
            session,
            [_event_row(tenant.tenant_id, f"evt_direct_{i}", at) for i in (2, 3)],
        )
        session.commit()
        assert one.rowcount == 1 and many.rowcount in (2, -1)  # psycopg's executemany: -1
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        rows = session.scalars(
            sa.select(Event).where(Event.id.like("evt_direct_%")).order_by(Event.id)
        ).all()
        assert [(e.id, e.data, e.created_at) for e in rows] == [
            (f"evt_direct_{i}", {"object": {"id": "cus_x", "name": "Jörg"}}, at) for i in (1, 2, 3)
        ]
        session.rollback()
        db.session.remove()


def test_direct_write_refuses_a_naive_datetime_as_the_column_type_does(
    app: Flask, tenant: TenantCtx
) -> None:
    insert = DirectWrite(sa.insert(table_of(Event)))
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        naive = datetime(2026, 1, 1)  # noqa: DTZ001  (the point of the test)
        with pytest.raises(ValueError, match="naive"):
            insert.execute(session, _event_row(tenant.tenant_id, "evt_naive", naive))
        session.rollback()
        db.session.remove()


def test_direct_write_is_refused_when_a_column_value_would_come_from_a_default(
    app: Flask, tenant: TenantCtx
) -> None:
    insert = DirectWrite(sa.insert(table_of(Customer)))
    row = {"tenant_id": tenant.tenant_id, "id": "cus_direct", "email": "x@example.de"}
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        with pytest.raises(TypeError, match="every column value"):
            insert.execute(session, row)
        session.rollback()
        db.session.remove()


def test_direct_update_counts_the_rows_it_changed_when_a_version_check_fails(
    app: Flask, tenant: TenantCtx
) -> None:
    customers = table_of(Customer)
    rename = DirectWrite(
        sa.update(customers).where(
            customers.c.tenant_id == sa.bindparam("t"), customers.c.id == sa.bindparam("c")
        )
    )
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        customer_id = create_customer(session, dict(CUSTOMER), now=utcnow()).id
        hit = rename.execute(session, {"name": "Neu", "t": tenant.tenant_id, "c": customer_id})
        miss = rename.execute(session, {"name": "Neu", "t": tenant.tenant_id, "c": "cus_none"})
        assert (hit.rowcount, miss.rowcount) == (1, 0)
        assert customer_view(session, customer_id).name == "Neu"
        session.rollback()
        db.session.remove()
