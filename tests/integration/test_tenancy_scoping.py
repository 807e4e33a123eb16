"""Tenant scoping with the per-process caches of saas.kernel.tenancy: the loader criteria per
tenant and mode, and the scoped forms of statements marked `reusable` (`get_customer`).

Sessions live for one request, so the caches outlive them: two tenants (and two modes)
taking turns in one process must still each see their own rows only, and a statement on a
tenant-owned model without a tenant must still raise. The reads by id run both ways: through
the ORM's scoping and through the driver (`customer_view`, saas.kernel.direct).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from saas.customers.models import Customer
from saas.customers.queries import customer_view
from saas.customers.services import create_customer, get_customer
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.errors import NotFoundError, TenantContextMissingError
from saas.tenants.models import Tenant
from tests.conftest import CUSTOMER, TenantCtx

# the two ways a customer is read by id: the ORM (scoped by loader criteria) and the driver
READS = pytest.mark.parametrize("read", [get_customer, customer_view], ids=["orm", "direct"])


def _add_customer(app: Flask, tenant_id: str, *, livemode: bool = False) -> str:
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant_id, livemode=livemode)
        customer = create_customer(session, dict(CUSTOMER), now=utcnow())
        session.commit()
        db.session.remove()
        return customer.id


def _in_request(app: Flask, tenant_id: str | None, livemode: bool | None, work: Any) -> Any:
    """One session, as a request has it."""
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant_id, livemode=livemode)
        try:
            return work(session)
        finally:
            session.rollback()
            db.session.remove()


@READS
def test_each_tenant_sees_only_its_rows_when_tenants_alternate_in_one_process(
    app: Flask, tenant: TenantCtx, other_tenant: TenantCtx, read: Any
) -> None:
    mine = _add_customer(app, tenant.tenant_id)
    theirs = _add_customer(app, other_tenant.tenant_id)
    owners = {tenant.tenant_id: mine, other_tenant.tenant_id: theirs}
    reused = tenancy._scoped_reusable.cache_info().hits
    for _ in range(3):
        for tenant_id, own in owners.items():
            other = theirs if own == mine else mine
            found = _in_request(app, tenant_id, False, lambda s, c=own: read(s, c).id)
            assert found == own

            def foreign(session: Any, c: str = other) -> None:
                read(session, c)

            with pytest.raises(NotFoundError):
                _in_request(app, tenant_id, False, foreign)
            listed = _in_request(
                app, tenant_id, False, lambda s: s.scalars(sa.select(Customer.id)).all()
            )
            assert listed == [own]
    if read is get_customer:
        assert tenancy._scoped_reusable.cache_info().hits >= reused + 4  # the cache was used


def test_one_session_sees_the_new_tenants_rows_when_its_tenant_changes(
    app: Flask, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    mine = _add_customer(app, tenant.tenant_id)
    theirs = _add_customer(app, other_tenant.tenant_id)
    with app.app_context():
        session = db.session()
        tenancy.set_tenant(session, tenant.tenant_id, livemode=False)
        assert get_customer(session, mine).id == mine
        session.rollback()
        tenancy.set_tenant(session, other_tenant.tenant_id, livemode=False)
        session.expunge_all()
        with pytest.raises(NotFoundError):
            get_customer(session, mine)
        assert get_customer(session, theirs).id == theirs
        session.rollback()
        db.session.remove()


@READS
def test_a_mode_sees_only_its_rows_when_modes_alternate_for_one_tenant(
    app: Flask, tenant: TenantCtx, read: Any
) -> None:
    test_row = _add_customer(app, tenant.tenant_id, livemode=False)
    live_row = _add_customer(app, tenant.tenant_id, livemode=True)
    for _ in range(2):
        for livemode, own, other in ((False, test_row, live_row), (True, live_row, test_row)):
            found = _in_request(app, tenant.tenant_id, livemode, lambda s, c=own: read(s, c).id)
            assert found == own

            def foreign(session: Any, c: str = other) -> None:
                read(session, c)

            with pytest.raises(NotFoundError):
                _in_request(app, tenant.tenant_id, livemode, foreign)


@READS
def test_reusable_statement_raises_when_no_tenant_is_set_after_tenants_used_it(
    app: Flask, tenant: TenantCtx, read: Any
) -> None:
    customer = _add_customer(app, tenant.tenant_id)
    assert _in_request(app, tenant.tenant_id, False, lambda s: read(s, customer).id)

    def without_tenant(session: Any) -> None:
        read(session, customer)

    with pytest.raises(TenantContextMissingError):
        _in_request(app, None, None, without_tenant)
    with pytest.raises(TenantContextMissingError):
        _in_request(app, None, None, lambda s: s.scalars(sa.select(Customer.email)).all())


def test_counts_joins_and_exists_see_one_tenant_when_the_entity_is_not_selected(
    app: Flask, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    """The shapes where the tenant-owned entity is only counted, joined or tested for: the
    dashboard's counts are `select(func.count()).select_from(Customer)`. On SQLite nothing
    but the ORM's criteria separates tenants here. (A Core statement, one without any ORM
    entity, is not the ORM's to scope: its caller names the tenant, saas.kernel.tenancy.)"""
    _add_customer(app, tenant.tenant_id)
    for _ in range(2):
        _add_customer(app, other_tenant.tenant_id)
    shapes = {
        "count": sa.select(sa.func.count()).select_from(Customer),
        "join": sa.select(sa.func.count(Tenant.id)).join(Customer, Customer.tenant_id == Tenant.id),
        "exists": sa.select(sa.func.count(Tenant.id)).where(
            sa.exists().where(Customer.tenant_id == other_tenant.tenant_id)
        ),
        "subquery": sa.select(sa.func.count()).where(
            sa.literal(1) == 1,
            sa.select(Customer.id).where(Customer.tenant_id == other_tenant.tenant_id).exists(),
        ),
    }
    seen = {
        name: _in_request(app, tenant.tenant_id, False, lambda s, q=stmt: s.scalar(q))
        for name, stmt in shapes.items()
    }
    assert seen == {"count": 1, "join": 1, "exists": 0, "subquery": 0}
    for stmt in shapes.values():
        with pytest.raises(TenantContextMissingError):
            _in_request(app, None, None, lambda s, q=stmt: s.scalar(q))


def test_direct_read_sees_both_modes_when_the_session_has_no_mode(
    app: Flask, tenant: TenantCtx
) -> None:
    """As with the ORM's criteria: a session of a tenant without a mode (platform work, the
    portal) is not limited to one mode, and still to its tenant."""
    test_row = _add_customer(app, tenant.tenant_id, livemode=False)
    live_row = _add_customer(app, tenant.tenant_id, livemode=True)
    for own in (test_row, live_row):
        assert _in_request(app, tenant.tenant_id, None, lambda s, c=own: customer_view(s, c).id)
        assert _in_request(app, tenant.tenant_id, None, lambda s, c=own: get_customer(s, c).id)
