"""Which statements tenant scoping finds touching a tenant-owned table, and its caches.

Without a tenant, every statement that reads a tenant-owned table anywhere must be found
(and is then refused); with a tenant, the scoping criteria must reach that table in every
shape of statement: selected, joined, counted, in a subquery or EXISTS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from saas.customers.models import Customer
from saas.kernel import tenancy
from saas.kernel.errors import TenantContextMissingError
from saas.tenants.models import Tenant

Stmt = sa.Select[*tuple[Any, ...]]


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


GLOBAL_ONLY = ("global entity", "literal")
TOUCHING = [name for name in SHAPES if name not in GLOBAL_ONLY]
CORE = ("core table", "core column")  # Core statements are not the ORM's to scope


@pytest.mark.parametrize("shape", TOUCHING)
def test_tenant_owned_table_is_found_when_a_statement_reads_it_anywhere(shape: str) -> None:
    assert tenancy.touched_tenant_tables(SHAPES[shape]()) == ["customers"]


@pytest.mark.parametrize("shape", GLOBAL_ONLY)
def test_no_tenant_owned_table_is_found_when_a_statement_reads_only_global_ones(
    shape: str,
) -> None:
    assert tenancy.touched_tenant_tables(SHAPES[shape]()) == []


def test_update_and_delete_targets_are_found_when_they_are_tenant_owned() -> None:
    assert tenancy.touched_tenant_tables(sa.update(Customer).values(name="x")) == ["customers"]
    assert tenancy.touched_tenant_tables(sa.delete(Customer)) == ["customers"]
    assert tenancy.touched_tenant_tables(sa.update(Tenant).values(name="x")) == []


@pytest.mark.parametrize("shape", [name for name in TOUCHING if name not in CORE])
def test_scope_criteria_reach_the_tenant_owned_table_when_added_to_any_orm_shape(
    shape: str,
) -> None:
    stmt = SHAPES[shape]().options(*tenancy._scope_options(False))
    sql = str(stmt.compile())
    # or an alias of the table
    assert re.search(r"customers(_\d+)?\.tenant_id = :abowerk_scope_tenant_id", sql), sql


def test_scope_options_are_built_once_per_process_for_every_tenant() -> None:
    assert tenancy._scope_options(False) is tenancy._scope_options(False)
    assert len(tenancy._scope_options(False)) == 1  # no mode, no mode criteria
    assert len(tenancy._scope_options(True)) == 2


def test_scoped_statement_carries_no_tenant_value_when_scoped() -> None:
    """The tenant is a value of each execution, never of the cached statement: a cached form
    that held one tenant's id would serve it to the next tenant."""
    stmt = tenancy.reusable(sa.select(Customer).where(Customer.id == sa.bindparam("cid")))
    scoped = tenancy._scoped_reusable(stmt, True)
    assert tenancy._scoped_reusable(stmt, True) is scoped
    values = {b.value for b in scoped._generate_cache_key().bindparams}
    assert values == {None}
    sql = str(scoped.compile())
    assert ":abowerk_scope_tenant_id" in sql and ":abowerk_scope_livemode" in sql


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, {"abowerk_scope_tenant_id": "ten_a", "abowerk_scope_livemode": False}),
        (
            {"cid": "x"},
            {"cid": "x", "abowerk_scope_tenant_id": "ten_a", "abowerk_scope_livemode": False},
        ),
        (
            [{"cid": "x"}, {"cid": "y"}],
            [
                {"cid": "x", "abowerk_scope_tenant_id": "ten_a", "abowerk_scope_livemode": False},
                {"cid": "y", "abowerk_scope_tenant_id": "ten_a", "abowerk_scope_livemode": False},
            ],
        ),
    ],
)
def test_scope_values_join_every_parameter_set_when_a_statement_runs(
    params: Any, expected: Any
) -> None:
    assert tenancy._with_scope_values(params, "ten_a", False) == expected


@pytest.mark.parametrize(
    ("session_tenant", "unscoped", "row_tenant", "expected"),
    [
        ("ten_a", False, None, "ten_a"),  # stamped with the session's tenant
        ("ten_a", False, "ten_a", "ten_a"),
        ("ten_a", True, "ten_b", "ten_b"),  # platform work may write for any tenant
        (None, False, "ten_b", "ten_b"),
    ],
)
def test_owner_for_gives_the_rows_tenant_when_the_session_allows_it(
    session_tenant: str | None, unscoped: bool, row_tenant: str | None, expected: str
) -> None:
    session = Session()
    tenancy.set_tenant(session, session_tenant)
    session.info[tenancy.UNSCOPED_KEY] = unscoped
    assert tenancy.owner_for(session, row_tenant, "a row") == expected


@pytest.mark.parametrize(("session_tenant", "row_tenant"), [("ten_a", "ten_b"), (None, None)])
def test_owner_for_refuses_when_the_row_is_another_tenants_or_nobodys(
    session_tenant: str | None, row_tenant: str | None
) -> None:
    session = Session()
    tenancy.set_tenant(session, session_tenant)
    with pytest.raises(TenantContextMissingError):
        tenancy.owner_for(session, row_tenant, "a row")
