"""The ``billing_runs`` table: one row per tenant per run.

A run over several tenants is a *group* of rows sharing ``group_id``, so that every row
stays tenant-owned (``(tenant_id, id)`` key, row-level security) and each tenant sees only
its own progress. Runs are not livemode-scoped: one run bills live and test subscriptions.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from saas.kernel.db import Base, TenantOwned, UTCDateTime

PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED)

TRIGGERS = ("cli", "worker", "test_clock", "api")


class BillingRun(TenantOwned, Base):
    """The progress and outcome of billing one tenant up to ``at``.

    The counters grow batch by batch, each in the batch's own transaction, so after a crash
    they say what was committed. ``batches_total`` is an estimate made at the start (the
    number of due subscriptions and pending charges divided by the batch size).
    """

    __tablename__ = "billing_runs"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["tenant_id", "test_clock_id"], ["test_clocks.tenant_id", "test_clocks.id"]
        ),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint(f"trigger IN {TRIGGERS!r}", name="trigger"),
        sa.Index("ix_billing_runs_tenant_id_group_id", "tenant_id", "group_id"),
        sa.Index("ix_billing_runs_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(16))
    trigger: Mapped[str] = mapped_column(sa.String(16))
    test_clock_id: Mapped[str | None] = mapped_column(sa.String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # billed up to this instant
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    subscriptions_advanced: Mapped[int] = mapped_column(sa.Integer(), default=0)
    invoices_finalized: Mapped[int] = mapped_column(sa.Integer(), default=0)
    skipped: Mapped[int] = mapped_column(sa.Integer(), default=0)
    failed: Mapped[int] = mapped_column(sa.Integer(), default=0)
    batches_done: Mapped[int] = mapped_column(sa.Integer(), default=0)
    batches_total: Mapped[int] = mapped_column(sa.Integer(), default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
