"""saas.kernel.direct: reads through the driver behave as SQLAlchemy's own statements do
when the database fails, and refuse to run on tenant-owned tables unless scoped."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from saas.customers.models import Customer
from saas.customers.queries import customer_view
from saas.customers.services import create_customer
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.direct import DirectSelect
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
