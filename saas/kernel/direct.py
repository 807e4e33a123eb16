"""SELECTs compiled once and run on the session's own driver connection, for the hot reads.

Measured in one process on PostgreSQL (2026-11-22): fetching a customer by id costs about
450 µs of CPU through the ORM, 240 µs as a Core statement (cache key, parameter
construction, execution context, result metadata on every call) and 100 µs through the
driver's cursor. The API reads by id and authenticates on every request, so those few
statements run here instead; everything else stays on the ORM.

A `DirectSelect` is built from a Core statement once, at import. Per dialect it is compiled
once (SQL text, parameter order, each column's result processing, e.g. `UTCDateTime` on
SQLite), and rows come back as named tuples keyed like the model's attributes, so the same
marshmallow schemas dump them.

It fails closed like the ORM's scoping: `scoped(Model, ...)` always filters on the session's
tenant (and on its mode, test or live, when the session has one), and running it without a
tenant raises. It runs in the session's transaction (PostgreSQL's row-level security
setting included), through `saas.kernel.driver`, which behaves towards the engine's events
and the pool as SQLAlchemy's execution does.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.kernel import driver, tenancy
from saas.kernel.db import HasLivemode, is_tenant_owned, table_of

_Processor = Callable[[Any], Any] | None
_Statement = sa.Select[Any] | sa.TextualSelect
_Write = sa.Insert | sa.Update


class _Compiled:
    __slots__ = ("defaults", "names", "processors", "row", "sql")

    def __init__(self, statement: _Statement, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        # parameters the dialect added with a value of their own (SQLite's OFFSET with LIMIT)
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}
        # positional drivers (sqlite3) take the values in the order the SQL names them
        self.names: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        columns = list(statement.selected_columns)
        self.row: Any = namedtuple("Row", [c.key for c in columns])
        processors: list[_Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        self.processors = processors if any(processors) else None

    def convert(self, values: tuple[Any, ...]) -> Any:
        if self.processors is not None:
            values = tuple(
                p(v) if p is not None else v for p, v in zip(self.processors, values, strict=True)
            )
        return self.row._make(values)


class DirectSelect:
    """A SELECT run through the driver; see the module docstring."""

    def __init__(self, statement: _Statement, *, tenant: bool, livemode: bool) -> None:
        self._statement = statement
        self._tenant = tenant
        self._livemode = livemode
        self._compiled: dict[str, _Compiled] = {}  # by dialect name
        self._unfiltered_mode: DirectSelect | None = None

    @classmethod
    def scoped(
        cls,
        model: type,
        *where: sa.ColumnElement[bool],
        order_by: sa.ColumnElement[Any] | None = None,
        limit: sa.BindParameter[int] | None = None,
        attributes: tuple[str, ...] | None = None,
    ) -> DirectSelect:
        """A tenant-owned model's columns (all, or the `attributes` named), named as its
        attributes, for the session's tenant (and mode), where `where` holds; parameters as
        `sa.bindparam(name)`."""
        if not is_tenant_owned(model):
            raise TypeError(f"{model.__name__} is not tenant-owned")
        table = table_of(model)
        mapper: sa.orm.Mapper[Any] = sa.inspect(model)
        columns = [
            table.c[attr.columns[0].key].label(attr.key)
            for attr in mapper.column_attrs
            if attributes is None or attr.key in attributes
        ]
        base = sa.select(*columns).where(
            table.c.tenant_id == sa.bindparam("abowerk_tenant_id"), *where
        )
        if order_by is not None:
            base = base.order_by(order_by)
        if limit is not None:
            base = base.limit(limit)
        if not issubclass(model, HasLivemode):
            return cls(base, tenant=True, livemode=False)
        scoped = cls(
            base.where(table.c.livemode == sa.bindparam("abowerk_livemode")),
            tenant=True,
            livemode=True,
        )
        # a session without a mode (platform work, the portal's own lookups) sees both, as
        # with the ORM's criteria
        scoped._unfiltered_mode = cls(base, tenant=True, livemode=False)
        return scoped

    @classmethod
    def unscoped(cls, statement: _Statement) -> DirectSelect:
        """A statement that is not about one tenant's rows (the credential lookup)."""
        if tenancy.touched_tenant_tables(statement):
            raise TypeError("a statement on tenant-owned tables must be built with scoped()")
        return cls(statement, tenant=False, livemode=False)

    def first(self, session: Session, params: Mapping[str, Any]) -> Any | None:
        rows = self._run(session, params, one=True)
        return rows[0] if rows else None

    def all(self, session: Session, params: Mapping[str, Any]) -> list[Any]:
        return self._run(session, params, one=False)

    def _run(self, session: Session, params: Mapping[str, Any], *, one: bool) -> list[Any]:
        if self._livemode:
            mode = tenancy.current_livemode(session)
            if mode is None:
                assert self._unfiltered_mode is not None
                return self._unfiltered_mode._run(session, params, one=one)
            params = {**params, "abowerk_livemode": mode}
        if self._tenant:
            params = {**params, "abowerk_tenant_id": tenancy.current_tenant(session)}
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self._statement, dialect)
        if compiled.defaults:
            params = {**compiled.defaults, **params}
        args: Any = params if compiled.names is None else tuple(params[n] for n in compiled.names)
        found = driver.execute(connection, compiled.sql, args, fetch="one" if one else "all")
        return [compiled.convert(tuple(values)) for values in found.rows]


class _CompiledWrite:
    __slots__ = ("names", "processors", "sql")

    def __init__(self, statement: _Write, dialect: sa.Dialect, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.insert_prefetch or compiled.update_prefetch or compiled.postfetch:
            # values SQLAlchemy computes at execution (column defaults, onupdate): not here
            raise TypeError(
                "a DirectWrite must be given every column value: "
                + ", ".join(
                    c.name
                    for c in (
                        *compiled.insert_prefetch,
                        *compiled.update_prefetch,
                        *compiled.postfetch,
                    )
                )
            )
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(
            compiled.positiontup if compiled.positional and compiled.positiontup else compiled.binds
        )
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name in self.names:
            bind = compiled.binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor

    def args(self, params: Mapping[str, Any], positional: bool) -> Any:
        values = {
            name: self.processors[name](params[name]) if name in self.processors else params[name]
            for name in self.names
        }
        return tuple(values[name] for name in self.names) if positional else values


class DirectWrite:
    """An INSERT or UPDATE of the hot write paths, run through the driver like
    `DirectSelect`: compiled once per dialect and set of parameter names, every value
    converted by its column's type (`UTCDateTime`, JSON) as SQLAlchemy would. Every column
    value must be given: one SQLAlchemy would compute at execution (a default, `onupdate`)
    is refused when the statement is first compiled. Tenant-owned rows name their tenant in
    the parameters (`saas.kernel.tenancy.owner_for`); on PostgreSQL row-level security holds
    them to the transaction's tenant as for any statement."""

    def __init__(self, statement: _Write) -> None:
        self._statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _CompiledWrite] = {}

    def execute(
        self,
        session: Session | sa.Connection,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        returning: bool = False,
    ) -> driver.Result:
        """One parameter set, or several (`executemany`, no RETURNING)."""
        sets: Sequence[Mapping[str, Any]] = [params] if isinstance(params, Mapping) else params
        many = not isinstance(params, Mapping)
        connection = session if isinstance(session, sa.Connection) else session.connection()
        dialect = connection.dialect
        key = (dialect.name, tuple(sorted(sets[0])))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _CompiledWrite(self._statement, dialect, key[1])
        positional = bool(dialect.positional)
        args: Any = [compiled.args(p, positional) for p in sets]
        if not many:
            args = args[0]
        return driver.execute(
            connection, compiled.sql, args, fetch="one" if returning else "none", many=many
        )
