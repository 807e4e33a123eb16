"""Tenant scoping that fails closed.

The tenant (and the credential's mode, test or live) lives in `session.info`. Every ORM
statement run with a tenant gets `tenant_id = :tenant` added through `with_loader_criteria`,
for each tenant-owned entity wherever it appears in the statement (selected, joined, counted
in `select_from`, in a subquery or EXISTS); a statement touching such a table anywhere with
no tenant set raises `TenantContextMissingError` instead of returning everyone's rows. New
tenant-owned objects get the session's tenant on flush, and one carrying a different tenant is
refused.

On PostgreSQL the same tenant is written into the transaction-local setting
`abowerk.tenant_id` at the start of every transaction; the row-level security policies of the
migrations compare against it, so even raw SQL that forgot its WHERE clause sees one tenant.

Each `set_config` is a round trip, so the session remembers which tenant the current
transaction's setting holds and writes it only when it changes. A transaction begun without a
tenant writes nothing: the setting is only ever set transaction-locally, so outside of that it
is unset or empty, and matches no row, exactly as an explicit empty value would. A rolled-back
savepoint may have undone a change, so after one the setting is written again.

Sessions live for one request, so what scoping builds is kept per process instead: the loader
criteria, and for a statement marked `reusable` its scoped form (with its cache key). The
criteria name the tenant and mode as bound parameters whose values every execution of the
session supplies, so the same objects and compiled statements serve every tenant.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, scoped_session, with_loader_criteria
from sqlalchemy.sql import Executable, visitors

from saas.kernel import driver
from saas.kernel.db import Base, HasLivemode, TenantOwned, is_tenant_owned
from saas.kernel.errors import TenantContextMissingError

TENANT_KEY = "abowerk.tenant_id"
LIVEMODE_KEY = "abowerk.livemode"
UNSCOPED_KEY = "abowerk.unscoped"
PG_TENANT_SETTING = "abowerk.tenant_id"
# the tenant the current transaction's PostgreSQL setting holds ("" = none); absent = unknown
_APPLIED_KEY = "abowerk.pg_tenant_applied"
# tenant and mode pairs (and reusable statements per pair) a process keeps scoped and ready
_OPTIONS_CACHE_SIZE = 1024
# statements marked with `reusable` (compared by identity: a statement has no __eq__)
_REUSABLE: set[Any] = set()
_S = TypeVar("_S", bound=Executable)
_TENANT_TABLES: dict[int, frozenset[str]] = {}  # by the number of mapped classes
# the bound parameters of the criteria (the names appear literally in the criteria's lambdas:
# SQLAlchemy would track a variable there as a value of the statement)
_TENANT_PARAM = "abowerk_scope_tenant_id"
_LIVEMODE_PARAM = "abowerk_scope_livemode"


def set_tenant(
    session: Session | scoped_session[Any], tenant_id: str | None, *, livemode: bool | None = None
) -> None:
    real = session() if isinstance(session, scoped_session) else session
    real.info[TENANT_KEY] = tenant_id
    real.info[LIVEMODE_KEY] = livemode
    if real.in_transaction() and real.info.get(_APPLIED_KEY) != (tenant_id or ""):
        # the transaction already began under another (or no) tenant: update the RLS setting now
        _apply_pg_setting(real, real.connection(), tenant_id)


def note_tenant_set_by_database(session: Session, tenant_id: str) -> None:
    """Record that a statement of the current transaction has already set the PostgreSQL
    tenant setting to `tenant_id` (the credential lookup functions of migration 0012 do), so
    that `set_tenant` with the same tenant costs no further round trip."""
    session.info[_APPLIED_KEY] = tenant_id


def current_tenant(session: Session) -> str:
    tenant_id = session.info.get(TENANT_KEY)
    if not tenant_id:
        raise TenantContextMissingError("no tenant is set on this session")
    return str(tenant_id)


def current_livemode(session: Session) -> bool | None:
    value = session.info.get(LIVEMODE_KEY)
    return None if value is None else bool(value)


@contextmanager
def unscoped(session: Session) -> Iterator[None]:
    """Platform-level access across tenants (operator CLI, cross-tenant schedulers).

    Only ORM scoping is lifted; PostgreSQL row-level security still applies, so code in here
    must go through vetted queries that set the tenant per row they touch.
    """
    previous = session.info.get(UNSCOPED_KEY, False)
    session.info[UNSCOPED_KEY] = True
    try:
        yield
    finally:
        session.info[UNSCOPED_KEY] = previous


def _apply_pg_setting(session: Session, connection: sa.Connection, tenant_id: str | None) -> None:
    if connection.dialect.name == "postgresql":
        # through the driver: every transaction with a tenant starts with it
        driver.execute(
            connection,
            "SELECT set_config(%(k)s, %(v)s, true)",
            {"k": PG_TENANT_SETTING, "v": tenant_id or ""},
            fetch="none",
        )
    session.info[_APPLIED_KEY] = tenant_id or ""


def _tenant_tables() -> frozenset[str]:
    """The tables of tenant-owned models (rebuilt when more models have been mapped)."""
    mappers = Base.registry.mappers
    cached = _TENANT_TABLES.get(len(mappers))
    if cached is None:
        cached = frozenset(
            table.name for m in mappers if is_tenant_owned(m.class_) for table in m.tables
        )
        _TENANT_TABLES.clear()
        _TENANT_TABLES[len(mappers)] = cached
    return cached


def touched_tenant_tables(statement: Any) -> list[str]:
    """Every tenant-owned table a statement reads or writes anywhere: selected entities and
    columns, `select_from`, joins, subqueries, EXISTS, the target of an UPDATE or DELETE."""
    owned = _tenant_tables()
    found: set[str] = set()
    for element in visitors.iterate(statement):
        table = element if isinstance(element, sa.Table) else getattr(element, "table", None)
        if isinstance(table, sa.Table) and table.name in owned:
            found.add(table.name)
    return sorted(found)


def _scope_statement(state: ORMExecuteState) -> None:
    """Every ORM statement run with a tenant gets the tenant's (and mode's) criteria, which
    SQLAlchemy applies to each tenant-owned entity wherever it appears (columns, joins,
    `select_from`, subqueries) and to nothing else; without a tenant, one that touches a
    tenant-owned table anywhere is refused. Deciding per statement which ones need the
    criteria cost more than adding them, and missed entities that are only joined or
    counted (`select(func.count()).select_from(Customer)`)."""
    if not (state.is_select or state.is_update or state.is_delete):
        return
    session = state.session
    if session.info.get(UNSCOPED_KEY):
        return
    tenant_id = session.info.get(TENANT_KEY)
    livemode = session.info.get(LIVEMODE_KEY)
    if tenant_id:
        # the criteria's values, for this statement and for the loads that inherit its
        # criteria (lazy and deferred loads)
        state.parameters = _with_scope_values(state.parameters, tenant_id, livemode)
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria of the parent statement propagate to these loads
    if not state.is_orm_statement:
        return  # Core: the caller names the tenant (and PostgreSQL's row-level security holds)
    statement = state.statement
    if not tenant_id:
        touched = touched_tenant_tables(statement)
        if touched:
            raise TenantContextMissingError(
                "query on a tenant-owned table without a tenant in context: " + ", ".join(touched)
            )
        return
    with_mode = livemode is not None
    if statement in _REUSABLE:
        state.statement = _scoped_reusable(statement, with_mode)
    else:
        state.statement = statement.options(*_scope_options(with_mode))


def _with_scope_values(params: Any, tenant_id: str, livemode: bool | None) -> Any:
    values = {_TENANT_PARAM: tenant_id, _LIVEMODE_PARAM: livemode}
    if isinstance(params, list):  # executemany
        return [{**p, **values} for p in params]
    return {**(params or {}), **values}


def reusable(statement: _S) -> _S:
    """Mark a statement built once at import (its values in bind parameters): its scoped
    form is then built once and reused, and so is its cache key, which SQLAlchemy would
    otherwise compute anew on every execution."""
    _REUSABLE.add(statement)
    return statement


@functools.lru_cache(maxsize=_OPTIONS_CACHE_SIZE)
def _scoped_reusable(statement: Any, with_mode: bool) -> Any:
    return statement.options(*_scope_options(with_mode))


@functools.cache
def _scope_options(with_mode: bool) -> tuple[Any, ...]:
    """The loader criteria, built once per process and shared by every session, thread and
    tenant. The tenant and mode are bound parameters whose values each execution supplies
    (`_with_scope_values`), so one compiled statement serves every tenant. Criteria that
    captured the tenant as a value instead (a lambda closing over it) cost SQLAlchemy a
    lookup per entity and execution of the value in its cache key (comparing annotated copies
    of the same parameter, each comparison building an expression): with five scoped entities
    about a third of the ORM's CPU for the statement."""
    options: list[Any] = [
        with_loader_criteria(
            TenantOwned,
            lambda cls: cls.tenant_id == sa.bindparam("abowerk_scope_tenant_id"),
            include_aliases=True,
        )
    ]
    if with_mode:
        options.append(
            with_loader_criteria(
                HasLivemode,
                lambda cls: cls.livemode == sa.bindparam("abowerk_scope_livemode"),
                include_aliases=True,
            )
        )
    return tuple(options)


def owner_for(session: Session, tenant_id: str | None, what: str) -> str:
    """The tenant of a row about to be written (`what` names it for the error): refused when
    it has none, or when it is not the session's tenant outside `unscoped`. The flush checks
    every new ORM object with it; code that writes rows as Core INSERTs calls it itself."""
    current = session.info.get(TENANT_KEY)
    if not tenant_id:
        if not current:
            raise TenantContextMissingError(f"{what} without tenant_id and no tenant in context")
        return str(current)
    if current and tenant_id != current and not session.info.get(UNSCOPED_KEY):
        raise TenantContextMissingError(
            f"{what} for tenant {tenant_id} in a session of tenant {current}"
        )
    return tenant_id


def _stamp_new_rows(session: Session, flush_context: Any, instances: Any) -> None:
    livemode = session.info.get(LIVEMODE_KEY)
    for obj in session.new:
        if is_tenant_owned(type(obj)):
            obj.tenant_id = owner_for(session, obj.tenant_id, f"new {type(obj).__name__}")
        if isinstance(obj, HasLivemode) and obj.livemode is None and livemode is not None:
            obj.livemode = livemode


def _after_begin(session: Session, transaction: Any, connection: sa.Connection) -> None:
    tenant_id = session.info.get(TENANT_KEY)
    if tenant_id:
        _apply_pg_setting(session, connection, tenant_id)
    else:
        # nothing to write: a transaction starts with the setting unset (see the docstring)
        session.info[_APPLIED_KEY] = ""


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.nested:
        # a savepoint rolled back undoes a set_config made inside it: do not trust the record
        session.info.pop(_APPLIED_KEY, None)


def install(session_class: type[Session]) -> None:
    """Attach the scoping hooks to a Session class (idempotent)."""
    if event.contains(session_class, "do_orm_execute", _scope_statement):
        return
    event.listen(session_class, "do_orm_execute", _scope_statement)
    event.listen(session_class, "before_flush", _stamp_new_rows)
    event.listen(session_class, "after_begin", _after_begin)
    event.listen(session_class, "after_transaction_end", _after_transaction_end)
