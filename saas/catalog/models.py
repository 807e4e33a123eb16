"""Catalog tables: products, plans (tiers of a product) and prices (versioned terms of a plan)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

STATUSES = ("active", "archived")
TRIAL_END_BEHAVIORS = ("convert", "cancel", "pause")
INTERVALS = ("month", "quarter", "year")
DEFAULT_TAX_KIND = "electronically_supplied_service"


class Product(TenantOwned, HasLivemode, Base):
    __tablename__ = "products"
    __table_args__ = (sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Plan(TenantOwned, HasLivemode, Base):
    """One tier of a product. `trial_end_behavior` says what happens when a trial ends and the
    subscription has no payment method: `convert` (becomes active and owes the first period),
    `cancel` or `pause`. With a payment method a trial always converts."""

    __tablename__ = "plans"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "product_id"], ["products.tenant_id", "products.id"]),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint(
            f"trial_end_behavior IN {TRIAL_END_BEHAVIORS!r}", name="trial_end_behavior"
        ),
        sa.CheckConstraint("trial_days >= 0", name="trial_days"),
        sa.Index("ix_plans_tenant_id_product_id", "tenant_id", "product_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    product_id: Mapped[str] = mapped_column(sa.String(40))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    trial_days: Mapped[int] = mapped_column(sa.Integer(), default=0)
    trial_end_behavior: Mapped[str] = mapped_column(sa.String(16), default="cancel")
    # what the seller supplies, for the tax rules (a free string for now; `tax` decides later)
    tax_kind: Mapped[str] = mapped_column(sa.String(64), default=DEFAULT_TAX_KIND)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Price(TenantOwned, HasLivemode, Base):
    """What a plan costs per interval, in integer minor units of `currency`.

    Versions of one price share `lineage_id` (the id of version 1) and count up `version`;
    `previous_price_id` points at the version a new one replaced. `first_subscribed_at` is set
    when a subscription first uses the price: from then on its terms are frozen.
    """

    __tablename__ = "prices"
    __table_args__ = (
        sa.ForeignKeyConstraint(["tenant_id", "plan_id"], ["plans.tenant_id", "plans.id"]),
        sa.UniqueConstraint("tenant_id", "lineage_id", "version"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint(f"billing_interval IN {INTERVALS!r}", name="billing_interval"),
        sa.CheckConstraint("unit_amount >= 0", name="unit_amount"),
        sa.CheckConstraint("version >= 1", name="version"),
        sa.CheckConstraint("length(currency) = 3", name="currency"),
        sa.Index("ix_prices_tenant_id_plan_id", "tenant_id", "plan_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    plan_id: Mapped[str] = mapped_column(sa.String(40))
    lineage_id: Mapped[str] = mapped_column(sa.String(40))
    version: Mapped[int] = mapped_column(sa.Integer(), default=1)
    previous_price_id: Mapped[str | None] = mapped_column(sa.String(40))
    nickname: Mapped[str | None] = mapped_column(sa.String(200))
    currency: Mapped[str] = mapped_column(sa.String(3))
    unit_amount: Mapped[int] = mapped_column(sa.BigInteger())
    billing_interval: Mapped[str] = mapped_column(sa.String(16))
    per_seat: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    first_subscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
