"""Set-based writes of a batch: ``COPY`` on PostgreSQL, executemany elsewhere (the invoices
of billing runs, set-based renewals).

SQLAlchemy's executemany reaches about 65,000 rows/s on PostgreSQL; psycopg's ``COPY … FROM
STDIN`` about 450,000 and ``INSERT … SELECT`` 377,000 (docs PERF_NOTES). PostgreSQL refuses
COPY FROM into a table with row-level security, so the rows are copied into a temporary
table of the same shape and moved with one ``INSERT … SELECT``, which the tenant policy
checks like any insert. Everything runs on the caller's connection, in its transaction.
Values go through the columns' own bind conversion (``UTCDateTime``, ``DecimalText``,
JSON), and columns a row leaves out get their Python-side default, as a Core INSERT would
give them: a column another package adds later is filled the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


def _converter(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        decorator = kind

        def convert(value: Any) -> Any:
            return decorator.process_bind_param(value, dialect)

        return convert
    if isinstance(kind, sa.JSON):
        return lambda value: None if value is None else json.dumps(value)
    return None


def _default(column: sa.Column[Any]) -> Callable[[], Any] | None:
    default = column.default
    if default is None or not isinstance(default, sa.ColumnDefault):
        return None
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        function = default.arg
        return lambda: function(None)  # SQLAlchemy wraps it to take the execution context
    return None


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts keyed by column key, every row the same keys) into ``table``
    in ``conn``'s transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(sa.insert(table), list(rows))
        return
    given = rows[0].keys()
    columns = [c for c in table.columns if c.key in given or _default(c) is not None]
    plan = [(c.key, c.key in given, _converter(c, conn.dialect), _default(c)) for c in columns]
    names = ", ".join(f'"{c.name}"' for c in columns)
    # COPY FROM refuses tables with row-level security: copy into a temporary twin (no
    # RLS), then one INSERT … SELECT, whose rows the policy checks as any INSERT's
    staging = f"_bulk_{table.name}"
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
        )
        with cursor.copy(f'COPY "{staging}" ({names}) FROM STDIN') as copy:
            for row in rows:
                values = []
                for key, present, convert, default in plan:
                    value = row[key] if present else default() if default else None
                    values.append(convert(value) if convert is not None else value)
                copy.write_row(values)
        # identifiers from the table's metadata, never from input
        move = f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{staging}"'  # noqa: S608
        cursor.execute(move)
        cursor.execute(f'TRUNCATE "{staging}"')
