"""A statement on a SQLAlchemy connection's own DBAPI connection, as SQLAlchemy would run it.

For the few statements that run on every request (saas.kernel.direct, the tenant setting of
saas.kernel.tenancy), SQLAlchemy's execution (cache key, parameter construction, execution
context, result metadata) costs more CPU than the database's answer. Going to the driver
keeps what matters of it: the statement runs in the connection's transaction, the engine's
cursor events fire around it (statement logging, tracing, the statement counts of
tests/reliability/test_request_cost.py), and a driver error is raised as SQLAlchemy's own
class (OperationalError, IntegrityError, …), a dropped connection invalidated in the pool, so
the request's transaction handling answers it as any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPIModule


class Result(NamedTuple):
    rows: Sequence[Any]  # what was fetched
    rowcount: int  # the driver's count of rows written (-1 where it has none)


def execute(
    connection: sa.Connection,
    sql: str,
    args: Any,
    *,
    fetch: Literal["one", "all", "none"],
    many: bool = False,
) -> Result:
    """Run `sql` (in the dialect's parameter style; `many`: `args` is a list of parameter
    sets, as `executemany`) and return the rows fetched and the rows written."""
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    dispatch = connection.dispatch
    try:
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(connection, cursor, sql, args, None, many)
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
        found: Sequence[Any] = ()
        if fetch == "one":
            first = cursor.fetchone()
            found = () if first is None else (first,)
        elif fetch == "all":
            found = cursor.fetchall()
        rowcount = cursor.rowcount
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(connection, cursor, sql, args, None, many)
    except connection.dialect.loaded_dbapi.Error as exc:
        _raise_as_sqlalchemy(connection, exc, sql, args, cursor)
    finally:
        cursor.close()
    return Result(found, rowcount)


def _raise_as_sqlalchemy(
    connection: sa.Connection, exc: DBAPIModule.Error, sql: str, args: Any, cursor: Any
) -> NoReturn:
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    disconnected = dialect.is_disconnect(exc, dbapi_connection, cursor)
    if disconnected:
        connection.invalidate(exc)
    raise sa.exc.DBAPIError.instance(
        sql,
        args,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnected,
        dialect=dialect,
    ) from exc
