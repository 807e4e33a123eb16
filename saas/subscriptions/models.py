"""Subscription tables: the subscription, its periods, what it owes (charges) and its history.

`subscription_history` is append-only: the ORM refuses to update or delete its rows (see the
listeners at the bottom) and on PostgreSQL the app role has no UPDATE or DELETE privilege on it
(migration 0002). Corrections are new rows, never edits.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, mapped_column

from saas.kernel.db import Base, HasLivemode, TenantOwned, UTCDateTime
from saas.subscriptions.lifecycle import State

STATUSES = tuple(s.value for s in State)
PERIOD_KINDS = ("trial", "service")
PERIOD_STATUSES = ("open", "closed")
CHARGE_KINDS = ("recurring", "proration_credit", "proration_charge")


def _fk(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


class Subscription(TenantOwned, HasLivemode, Base):
    """A customer on one price at a quantity.

    `version` is SQLAlchemy's optimistic lock: every UPDATE says `WHERE version = <read>`, so
    of two concurrent changes the second matches no row and fails (409 `subscription_conflict`)
    instead of overwriting the first. Period instants are local midnights of the tenant's zone.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        _fk("customer_id", "customers"),
        _fk("price_id", "prices"),
        _fk("scheduled_price_id", "prices"),
        _fk("test_clock_id", "test_clocks"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.CheckConstraint("quantity >= 1", name="quantity"),
        sa.CheckConstraint(
            "scheduled_quantity IS NULL OR scheduled_quantity >= 1", name="scheduled_quantity"
        ),
        sa.Index("ix_subscriptions_tenant_id_customer_id", "tenant_id", "customer_id"),
        sa.Index("ix_subscriptions_tenant_id_test_clock_id", "tenant_id", "test_clock_id"),
        sa.Index("ix_subscriptions_tenant_id_next_action_at", "tenant_id", "next_action_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    price_id: Mapped[str] = mapped_column(sa.String(40))
    quantity: Mapped[int] = mapped_column(sa.Integer())
    currency: Mapped[str] = mapped_column(sa.String(3))  # fixed for the subscription's life
    status: Mapped[str] = mapped_column(sa.String(16))
    has_payment_method: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    test_clock_id: Mapped[str | None] = mapped_column(sa.String(40))
    billing_anchor_on: Mapped[date | None] = mapped_column(sa.Date())  # set once service starts
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trial_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_period_start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_period_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # when time next has something to do (trial end or period end); NULL when nothing
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_at_period_end: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when it was asked for
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_price_id: Mapped[str | None] = mapped_column(sa.String(40))
    scheduled_quantity: Mapped[int | None] = mapped_column(sa.Integer())
    last_history_seq: Mapped[int] = mapped_column(sa.Integer(), default=0)
    last_period_seq: Mapped[int] = mapped_column(sa.Integer(), default=0)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", sa.JSON(), default=dict, info={"personal_data": True}
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(sa.Integer())

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (SQLAlchemy's API)


class SubscriptionPeriod(TenantOwned, HasLivemode, Base):
    """A stretch of service (or trial) of one subscription, local midnight to local midnight.

    At most one period of a subscription is `open` at any time (and exactly one while it is
    trialing, active or past due). A period cut short by a pause, a cancellation or an interval
    change is closed with `end_at` moved to the day it stopped.
    """

    __tablename__ = "subscription_periods"
    __table_args__ = (
        _fk("subscription_id", "subscriptions"),
        sa.UniqueConstraint("tenant_id", "subscription_id", "seq"),
        sa.CheckConstraint(f"kind IN {PERIOD_KINDS!r}", name="kind"),
        sa.CheckConstraint(f"status IN {PERIOD_STATUSES!r}", name="status"),
        sa.CheckConstraint("end_at >= start_at", name="end_after_start"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40))
    seq: Mapped[int] = mapped_column(sa.Integer())
    kind: Mapped[str] = mapped_column(sa.String(16))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubscriptionCharge(TenantOwned, HasLivemode, Base):
    """Something a subscription owes (or is owed): a recurring charge for a period in advance,
    or a proration line. Billing turns pending charges into invoice lines and sets
    `invoiced_at`; subscriptions only ever insert. `ends_on` is exclusive."""

    __tablename__ = "subscription_charges"
    __table_args__ = (
        _fk("subscription_id", "subscriptions"),
        _fk("customer_id", "customers"),
        _fk("price_id", "prices"),
        _fk("period_id", "subscription_periods"),
        _fk("invoice_id", "invoices"),
        sa.CheckConstraint(f"kind IN {CHARGE_KINDS!r}", name="kind"),
        sa.Index(
            "ix_subscription_charges_tenant_id_subscription_id", "tenant_id", "subscription_id"
        ),
        sa.Index("ix_subscription_charges_tenant_id_invoice_id", "tenant_id", "invoice_id"),
        # what billing runs scan: only the pending charges, so it stays as small as the backlog
        sa.Index(
            "ix_subscription_charges_pending",
            "tenant_id",
            "subscription_id",
            "starts_on",
            postgresql_where=sa.text("invoiced_at IS NULL"),
            sqlite_where=sa.text("invoiced_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    period_id: Mapped[str | None] = mapped_column(sa.String(40))
    kind: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(32))  # the event that caused it
    description: Mapped[str] = mapped_column(sa.String(500))
    price_id: Mapped[str] = mapped_column(sa.String(40))
    quantity: Mapped[int] = mapped_column(sa.Integer())
    unit_amount: Mapped[int] = mapped_column(sa.BigInteger())
    amount: Mapped[int] = mapped_column(sa.BigInteger())  # signed minor units
    currency: Mapped[str] = mapped_column(sa.String(3))
    starts_on: Mapped[date] = mapped_column(sa.Date())
    ends_on: Mapped[date] = mapped_column(sa.Date())
    period_days: Mapped[int] = mapped_column(sa.Integer())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    invoiced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invoice_id: Mapped[str | None] = mapped_column(sa.String(40))  # set with invoiced_at


class SubscriptionHistory(TenantOwned, HasLivemode, Base):
    """One row per change of a subscription, in order (`seq` 1, 2, …), never changed afterwards.

    `occurred_at` is when the change took effect (a renewal at its period boundary, even when
    the clock or worker got there later); `recorded_at` is when it was written. `actor` is the
    credential id that caused it, or `system` for what time did. MRR before and after are
    integer minor units per month (see `saas.subscriptions.mrr`).
    """

    __tablename__ = "subscription_history"
    __table_args__ = (
        _fk("subscription_id", "subscriptions"),
        _fk("customer_id", "customers"),
        _fk("old_price_id", "prices"),
        _fk("new_price_id", "prices"),
        sa.UniqueConstraint("tenant_id", "subscription_id", "seq"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(sa.String(40))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    seq: Mapped[int] = mapped_column(sa.Integer())
    event: Mapped[str] = mapped_column(sa.String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(sa.String(64))
    old_status: Mapped[str | None] = mapped_column(sa.String(16))
    new_status: Mapped[str] = mapped_column(sa.String(16))
    old_price_id: Mapped[str | None] = mapped_column(sa.String(40))
    new_price_id: Mapped[str] = mapped_column(sa.String(40))
    old_quantity: Mapped[int | None] = mapped_column(sa.Integer())
    new_quantity: Mapped[int] = mapped_column(sa.Integer())
    currency: Mapped[str] = mapped_column(sa.String(3))
    mrr_before: Mapped[int] = mapped_column(sa.BigInteger())
    mrr_after: Mapped[int] = mapped_column(sa.BigInteger())
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), default=dict)


class HistoryIsAppendOnlyError(RuntimeError):
    """Code tried to change or delete a history row: a programming error, never user input."""


def _refuse_change(mapper: Mapper[Any], connection: sa.Connection, target: Any) -> None:
    raise HistoryIsAppendOnlyError(
        f"subscription_history is append-only: refused to change or delete {target.id}"
    )


def _refuse_bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(
        m.class_ is SubscriptionHistory for m in state.all_mappers
    ):
        raise HistoryIsAppendOnlyError("subscription_history is append-only: no UPDATE/DELETE")


event.listen(SubscriptionHistory, "before_update", _refuse_change)
event.listen(SubscriptionHistory, "before_delete", _refuse_change)
event.listen(Session, "do_orm_execute", _refuse_bulk)
