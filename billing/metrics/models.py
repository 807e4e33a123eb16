"""Metrics tables: the MRR movement ledger and the cursor of its incremental builder.

`mrr_movements` holds one row per movement of a customer's MRR in one currency at one instant
(rules: `billing.metrics.movements`). It is derived from `subscription_history` and can be
rebuilt from it at any time (`abowerk metrics rebuild`). It stores surrogate ids, amounts,
currencies and instants only, no personal data, so a GDPR erasure of a customer leaves it (and
every metric) unchanged; for the same reason `customer_id` has no foreign key.

`month` is the first day of the month the instant falls in, in the tenant's zone at the time
the row was written; after a change of the tenant's zone, rebuild the ledger.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from billing.metrics.movements import KINDS
from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

KIND_VALUES = tuple(kind.value for kind in KINDS)
LEDGER_CURSOR = "mrr_movements"


class MrrMovement(TenantOwned, HasLivemode, Base):
    """A movement: `amount` = `mrr_after` − `mrr_before` in minor units of `currency` per
    month. The id is `mm_` + the id part of the newest history row merged into it."""

    __tablename__ = "mrr_movements"
    __table_args__ = (
        # one movement per customer, currency and instant: same-instant changes are merged
        sa.UniqueConstraint(
            "tenant_id",
            "livemode",
            "customer_id",
            "currency",
            "occurred_at",
            name="uq_mrr_movements_customer_instant",  # the generated name exceeds 63 chars
        ),
        sa.CheckConstraint(f"kind IN {KIND_VALUES!r}", name="kind"),
        sa.CheckConstraint("amount = mrr_after - mrr_before", name="amount"),
        sa.CheckConstraint("mrr_before >= 0 AND mrr_after >= 0", name="mrr_not_negative"),
        sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
        sa.Index("ix_mrr_movements_tenant_id_livemode_month", "tenant_id", "livemode", "month"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    currency: Mapped[str] = mapped_column(sa.String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    month: Mapped[date] = mapped_column(sa.Date())
    kind: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[int] = mapped_column(sa.BigInteger())
    mrr_before: Mapped[int] = mapped_column(sa.BigInteger())
    mrr_after: Mapped[int] = mapped_column(sa.BigInteger())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MetricsCursor(TenantOwned, Base):
    """How far an incremental builder has read an append-only source: for the ledger, the
    greatest `subscription_history` id it has consumed (ids are ordered by the millisecond they
    were made in), and the ids it has consumed within the rescan window before that position
    (`recent`), so that a row committed late with a smaller id is found, and only that row."""

    __tablename__ = "metrics_cursors"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # the builder's name
    position: Mapped[str | None] = mapped_column(sa.String(40))
    recent: Mapped[list[str]] = mapped_column(sa.JSON(), default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
