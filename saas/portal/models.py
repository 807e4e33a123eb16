"""Portal links and portal sessions.

A link is what the tenant's back-end hands the customer (`POST /v1/portal/sessions`): a
random secret, stored only as its SHA-256, usable once and for a few minutes. Redeeming it
opens a session: another random secret, sent as an HttpOnly cookie and stored hashed too.
Both rows name exactly one customer of one tenant and one mode; the portal never looks at
anything else.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime


class PortalLink(TenantOwned, HasLivemode, Base):
    __tablename__ = "portal_links"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "token_hash"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    return_url: Mapped[str | None] = mapped_column(sa.String(2000))
    locale: Mapped[str | None] = mapped_column(sa.String(16))
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PortalSession(TenantOwned, HasLivemode, Base):
    __tablename__ = "portal_sessions"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "secret_hash"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "link_id"], ["portal_links.tenant_id", "portal_links.id"]
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    link_id: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    locale: Mapped[str] = mapped_column(sa.String(16))
    return_url: Mapped[str | None] = mapped_column(sa.String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


CANCELLATION_REASONS = (
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "other",
)


class CancellationReason(TenantOwned, HasLivemode, Base):
    """Why a customer cancelled in the portal: a fixed choice, no free text (so no personal
    data), for the tenant's churn analysis."""

    __tablename__ = "cancellation_reasons"
    __table_args__ = (
        sa.CheckConstraint(f"reason IN {CANCELLATION_REASONS!r}", name="reason"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"], ["customers.tenant_id", "customers.id"]
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    reason: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
