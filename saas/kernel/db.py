"""Declarative base, column types and the naming convention shared by every model.

- Constraint names follow a fixed convention so Alembic migrations are deterministic on
  SQLite and PostgreSQL alike.
- `UTCDateTime` stores instants as UTC and always returns timezone-aware values: SQLite has no
  time zone type, and a naive datetime in billing code is a bug waiting for a DST change.
- `TenantOwned` marks tables whose rows belong to one tenant. Their primary key is
  `(tenant_id, id)` so the schema can later be distributed by tenant (Citus) unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC instant is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite drops the offset; we only ever stored UTC
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


str_id = Annotated[str, mapped_column(sa.String(40))]
timestamp = Annotated[datetime, mapped_column(UTCDateTime())]
json_dict = Annotated[dict[str, Any], mapped_column(sa.JSON(), default=dict)]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class TenantOwned:
    """Mixin for tenant-owned tables: `tenant_id` is part of the primary key.

    Every query on a subclass is scoped to the session's tenant automatically (see
    `saas.kernel.tenancy`); on PostgreSQL a row-level security policy is the second wall.
    """

    __tenant_owned__: ClassVar[bool] = True

    tenant_id: Mapped[str] = mapped_column(
        sa.String(40),
        sa.ForeignKey("tenants.id", ondelete="RESTRICT"),
        primary_key=True,
        sort_order=-100,  # first in the primary key: (tenant_id, id), as sharding wants it
    )


class HasLivemode:
    """Rows created with a test-mode credential are marked and invisible to live mode, and vice
    versa, exactly as with Stripe's test and live keys."""

    __livemode_scoped__: ClassVar[bool] = True

    livemode: Mapped[bool] = mapped_column(sa.Boolean(), default=False)


def is_tenant_owned(cls: type) -> bool:
    return bool(getattr(cls, "__tenant_owned__", False))


def table_of(model: type) -> sa.Table:
    """A mapped class's table, typed as one: Core statements built once at import (bulk
    writes, hot paths) need its columns, and SQLAlchemy types `__table__` as any FROM clause."""
    table = model.__table__  # type: ignore[attr-defined]  # every model here maps one Table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table
