"""Dunning tables: a tenant's settings, one case per unpaid invoice, one row per retry.

- `dunning_settings`: at most one row per tenant (no row: the defaults of
  :mod:`billing.dunning.schedule`).
- `dunning_cases`: opened by the first failed payment of an invoice (unique per invoice), with
  the schedule it was opened with; `open` until a payment succeeds (`recovered`), the last
  retry fails (`exhausted`) or the invoice leaves `open` otherwise (`closed`: voided, written
  off or paid outside a retry before any attempt ran).
- `dunning_attempts`: every retry of a case, created up front with its `scheduled_at`. The
  worker claims a due row with a conditional UPDATE (`scheduled` → `running`), so exactly one
  process runs each retry; `test_clock_id` is copied from the customer so that retries of
  customers on a test clock fall due by the clock's time, not the wall clock's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from billing.dunning.schedule import FINAL_ACTIONS
from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime

# case statuses
OPEN = "open"
RECOVERED = "recovered"
EXHAUSTED = "exhausted"
CLOSED = "closed"
CASE_STATUSES = (OPEN, RECOVERED, EXHAUSTED, CLOSED)

# attempt statuses
SCHEDULED = "scheduled"
RUNNING = "running"  # claimed by a worker, inside its transaction
PENDING = "pending"  # collection started, its outcome comes later (an asynchronous method)
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"  # not needed any more: the case ended before its time
ATTEMPT_STATUSES = (SCHEDULED, RUNNING, PENDING, SUCCEEDED, FAILED, CANCELED)
AWAITING_OUTCOME = (RUNNING, PENDING)


def _fk(columns: list[str], table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id", *columns], [f"{table}.tenant_id", f"{table}.id"])


class DunningSettings(TenantOwned, Base):
    __tablename__ = "dunning_settings"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id"),
        sa.CheckConstraint(f"final_action IN {FINAL_ACTIONS!r}", name="final_action"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    retry_days: Mapped[list[int]] = mapped_column(sa.JSON())
    final_action: Mapped[str] = mapped_column(sa.String(32))
    send_reminders: Mapped[bool] = mapped_column(sa.Boolean())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DunningCase(TenantOwned, HasLivemode, Base):
    __tablename__ = "dunning_cases"
    __table_args__ = (
        _fk(["invoice_id"], "invoices"),
        _fk(["customer_id"], "customers"),
        _fk(["subscription_id"], "subscriptions"),
        sa.UniqueConstraint("tenant_id", "invoice_id"),  # one case per invoice
        sa.CheckConstraint(f"status IN {CASE_STATUSES!r}", name="status"),
        sa.CheckConstraint(
            f"final_action IS NULL OR final_action IN {FINAL_ACTIONS!r}", name="final_action"
        ),
        sa.Index("ix_dunning_cases_tenant_id_status", "tenant_id", "status"),
        sa.Index("ix_dunning_cases_tenant_id_subscription_id", "tenant_id", "subscription_id"),
        sa.Index("ix_dunning_cases_tenant_id_customer_id", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    subscription_id: Mapped[str | None] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(16))
    retry_days: Mapped[list[int]] = mapped_column(sa.JSON())
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(sa.Integer())
    # a provider's decline code and its generic message ("card_declined", "Your card was
    # declined."): never the card holder's data
    last_failure_code: Mapped[str | None] = mapped_column(sa.String(64))
    last_failure_message: Mapped[str | None] = mapped_column(sa.String(500))
    final_action: Mapped[str | None] = mapped_column(sa.String(32))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(sa.Integer())

    __mapper_args__: dict[str, Any] = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy's API)


class DunningAttempt(TenantOwned, HasLivemode, Base):
    __tablename__ = "dunning_attempts"
    __table_args__ = (
        _fk(["case_id"], "dunning_cases"),
        _fk(["test_clock_id"], "test_clocks"),
        sa.UniqueConstraint("tenant_id", "case_id", "seq"),
        sa.CheckConstraint(f"status IN {ATTEMPT_STATUSES!r}", name="status"),
        sa.CheckConstraint("seq >= 1", name="seq"),
        # what the worker scans: the due retries
        sa.Index(
            "ix_dunning_attempts_tenant_id_status_scheduled_at",
            "tenant_id",
            "status",
            "scheduled_at",
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(40))
    invoice_id: Mapped[str] = mapped_column(sa.String(40))
    test_clock_id: Mapped[str | None] = mapped_column(sa.String(40))
    seq: Mapped[int] = mapped_column(sa.Integer())
    day: Mapped[int] = mapped_column(sa.Integer())  # days after the first failure
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(16))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome_code: Mapped[str | None] = mapped_column(sa.String(64))
    outcome_message: Mapped[str | None] = mapped_column(sa.String(500))
    # the payment provider was unreachable: the same retry is tried again later
    deferrals: Mapped[int] = mapped_column(sa.Integer())
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
