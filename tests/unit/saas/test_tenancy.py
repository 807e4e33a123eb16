"""Which statements tenant scoping treats as touching a tenant-owned model, and its caches.

`_columns_touch_tenant_owned` reads the ORM annotations of a SELECT's columns instead of
building `ORMExecuteState.all_mappers`; it must come to the same answer, or none at all
(then the caller asks `all_mappers`), for every shape of statement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Bundle, aliased

from saas.customers.models import Customer
from saas.kernel import tenancy
from saas.kernel.db import is_tenant_owned
from saas.tenants.models import Tenant

Stmt = sa.Select[*tuple[Any, ...]]


def _all_mappers_answer(stmt: Stmt) -> bool:
    """What `_touches_tenant_owned` answered before: `ORMExecuteState.all_mappers` (a Core
    statement's descriptions carry no entity, and all_mappers is empty for it)."""
    mappers = [sa.inspect(d["entity"]).mapper for d in stmt.column_descriptions if d.get("entity")]
    return any(is_tenant_owned(m.class_) for m in mappers)


def _aliased_customer() -> Stmt:
    return sa.select(aliased(Customer))


def _aliased_customer_column() -> Stmt:
    alias = aliased(Customer)
    return sa.select(alias.id)


def _subquery_entity() -> Stmt:
    return sa.select(aliased(Customer, sa.select(Customer).subquery()))


def _core_subquery() -> Stmt:
    return sa.select(sa.select(Customer.id).subquery())


SHAPES: dict[str, Callable[[], Stmt]] = {
    "entity": lambda: sa.select(Customer),
    "column": lambda: sa.select(Customer.id),
    "labelled column": lambda: sa.select(Customer.id.label("x")),
    "function of a column": lambda: sa.select(sa.func.count(Customer.id)),
    "expression": lambda: sa.select(Customer.name + "!"),
    "case": lambda: sa.select(sa.case((Customer.is_business, 1), else_=0)),
    "entity joined to a global one": lambda: sa.select(Customer).join(
        Tenant, Tenant.id == Customer.tenant_id
    ),
    "global entity then a tenant-owned column": lambda: sa.select(Tenant.id, Customer.email),
    "aliased entity": _aliased_customer,
    "aliased column": _aliased_customer_column,
    "entity over a subquery": _subquery_entity,
    "global entity": lambda: sa.select(Tenant),
    "global column joined to a tenant-owned entity": lambda: sa.select(Tenant.id).join(
        Customer, Customer.tenant_id == Tenant.id
    ),
    "count over a tenant-owned entity": lambda: sa.select(sa.func.count()).select_from(Customer),
    "core table": lambda: sa.select(Customer.__table__),
    "core column": lambda: sa.select(Customer.__table__.c.id),
    "literal": lambda: sa.select(sa.literal(1)),
    "scalar subquery": lambda: sa.select(sa.select(Customer.id).scalar_subquery()),
    "exists": lambda: sa.select(sa.exists().where(Customer.id == "x")),
    "core subquery": _core_subquery,
}


@pytest.mark.parametrize("shape", SHAPES)
def test_annotations_answer_like_all_mappers_when_reading_a_select(shape: str) -> None:
    stmt = SHAPES[shape]()
    answer = tenancy._columns_touch_tenant_owned(stmt._raw_columns)
    assert answer is not None, "a common shape must not need the slow path"
    assert answer is _all_mappers_answer(stmt)


def test_annotations_defer_to_all_mappers_when_a_bundle_is_selected() -> None:
    only_bundle: Stmt = sa.select(Bundle("b", Tenant.id, Tenant.status))
    assert tenancy._columns_touch_tenant_owned(only_bundle._raw_columns) is None
    # a tenant-owned column before the bundle already answers
    column_first: Stmt = sa.select(Customer.id, Bundle("b", Tenant.id))
    assert tenancy._columns_touch_tenant_owned(column_first._raw_columns) is True


def test_scope_options_are_built_once_when_a_tenant_and_mode_come_again() -> None:
    first = tenancy._scope_options("ten_unit_a", False)
    assert tenancy._scope_options("ten_unit_a", False) is first
    assert tenancy._scope_options("ten_unit_a", True) is not first
    assert tenancy._scope_options("ten_unit_b", False) is not first
    assert len(tenancy._scope_options("ten_unit_a", None)) == 1  # no mode, no mode criteria


def test_scoped_reusable_statement_binds_its_own_tenant_when_tenants_alternate() -> None:
    stmt = tenancy.reusable(sa.select(Customer).where(Customer.id == sa.bindparam("cid")))
    seen: dict[str, Any] = {}
    for tenant_id in ("ten_unit_a", "ten_unit_b", "ten_unit_a", "ten_unit_b"):
        scoped = tenancy._scoped_reusable(stmt, tenant_id, False)
        seen.setdefault(tenant_id, scoped)
        assert scoped is seen[tenant_id]
        values = {b.value for b in scoped._generate_cache_key().bindparams}
        assert tenant_id in values
        assert ({"ten_unit_a", "ten_unit_b"} - {tenant_id}).isdisjoint(values)
