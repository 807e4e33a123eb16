from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, TenantOwned, UTCDateTime

TENANT_STATUSES = ("active", "suspended")


class Tenant(Base):
    """A seller. Global: the tenant row is the root of everything tenant-owned."""

    __tablename__ = "tenants"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {TENANT_STATUSES!r}", name="status"),
        sa.CheckConstraint("length(country) = 2", name="country"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    legal_name: Mapped[str] = mapped_column(sa.String(200))
    address_line1: Mapped[str | None] = mapped_column(sa.String(200))
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str] = mapped_column(sa.String(2))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Europe/Berlin")
    default_currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantNotification(TenantOwned, Base):
    """Something the tenant's staff must see (shown on the dashboard)."""

    __tablename__ = "tenant_notifications"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(80))
    message: Mapped[str] = mapped_column(sa.String(1000))
    subject_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
