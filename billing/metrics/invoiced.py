"""MRR vs. invoices: read both sides from the database for `reconcile_mrr_to_invoices`.

**Expected** (what the MRR implies is invoiced): every service period of a subscription that
starts in the month, at the MRR of the terms it was charged for (the period's recurring
charge: its price and quantity, priced with `saas.subscriptions.mrr.monthly_amount` as an
active subscription) × the months of the price's interval. A period that started mid-way
(a resume, an activation after the anchor) is charged by days instead; it expects nothing
whole and its charge is a `partial_period`. A service period with no charge at all expects
the MRR its subscription's history shows at the period's start, so a period nobody charged
is a `missing_invoice`.

**Invoiced** (what finalized documents say): the subscription charges carried by finalized
invoices, by the month of the day they start: whole-period charges (`recurring`; on a voided or
uncollectible invoice they are `written_off`), charges for part of a period after a start or
resume (`partial`), charges of an immediate change (`proration`). Credit notes count by the
month of the period they correct: those made for a proration credit (a charge of kind
`proration_credit` points at them) as `proration`, every other as `credited`. Drafts count
for nothing. Amounts are net, in the invoice currency; VAT never enters.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.invoices.models import CREDIT_NOTE, DRAFT, UNCOLLECTIBLE, VOID, Invoice, InvoiceLine
from billing.metrics.months import Month, month_range
from billing.metrics.reconcile import (
    ExpectedBilling,
    InvoicedRecurring,
    Reconciliation,
    reconcile_mrr_to_invoices,
)
from billing.metrics.services import HISTORY, SUBSCRIPTIONS, price_terms, tenant_zone
from saas.subscriptions.lifecycle import State
from saas.subscriptions.models import SubscriptionCharge, SubscriptionPeriod
from saas.subscriptions.mrr import monthly_amount
from saas.subscriptions.periods import MONTHS_PER_INTERVAL

CHARGES = cast(sa.Table, SubscriptionCharge.__table__)
PERIODS = cast(sa.Table, SubscriptionPeriod.__table__)
INVOICES = cast(sa.Table, Invoice.__table__)
LINES = cast(sa.Table, InvoiceLine.__table__)

# the reasons a service period starts mid-way and is charged by days (not a plan change)
_CHANGE_REASONS = frozenset({"change"})


@dataclass(slots=True)
class _Invoiced:
    recurring: int = 0
    partial: int = 0
    proration: int = 0
    credited: int = 0
    written_off: int = 0


def _expected(
    session: Session, tenant_id: str, livemode: bool, months: set[Month]
) -> list[ExpectedBilling]:
    zone = tenant_zone(session, tenant_id)
    prices = price_terms(session, tenant_id)
    if not months:
        return []
    # only the periods starting in the months asked for, with their charges and their
    # subscriptions' history up to the last month's end: a report on one quarter must not
    # read every period the tenant ever billed
    last_end = max(months).end_at(zone)
    in_range = sa.and_(
        PERIODS.c.tenant_id == tenant_id,
        PERIODS.c.livemode == livemode,
        PERIODS.c.kind == "service",
        PERIODS.c.start_at >= min(months).start_at(zone),
        PERIODS.c.start_at < last_end,
    )
    charges = session.execute(
        sa.select(
            CHARGES.c.period_id,
            CHARGES.c.kind,
            CHARGES.c.price_id,
            CHARGES.c.quantity,
            CHARGES.c.unit_amount,
            CHARGES.c.invoiced_at,
        ).where(
            CHARGES.c.tenant_id == tenant_id,
            CHARGES.c.livemode == livemode,
            CHARGES.c.period_id.in_(sa.select(PERIODS.c.id).where(in_range)),
            CHARGES.c.kind != "proration_credit",
        )
    ).all()
    by_period: dict[str, list[Any]] = defaultdict(list)
    for c in charges:
        by_period[c.period_id].append(c)
    history: dict[str, list[Any]] = defaultdict(list)
    for r in session.execute(
        sa.select(
            HISTORY.c.subscription_id,
            HISTORY.c.occurred_at,
            HISTORY.c.new_status,
            HISTORY.c.new_price_id,
            HISTORY.c.new_quantity,
        )
        .where(
            HISTORY.c.tenant_id == tenant_id,
            HISTORY.c.livemode == livemode,
            HISTORY.c.occurred_at < last_end,
            HISTORY.c.subscription_id.in_(sa.select(PERIODS.c.subscription_id).where(in_range)),
        )
        .order_by(HISTORY.c.subscription_id, HISTORY.c.occurred_at, HISTORY.c.seq)
    ):
        history[r.subscription_id].append(r)
    # (month, customer, currency) → [amount, months, of them not invoiced: amount, months]
    sums: dict[tuple[Month, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    rows = session.execute(
        sa.select(
            PERIODS.c.id,
            PERIODS.c.subscription_id,
            PERIODS.c.start_at,
            SUBSCRIPTIONS.c.customer_id,
            SUBSCRIPTIONS.c.currency,
        )
        .select_from(
            PERIODS.join(
                SUBSCRIPTIONS,
                sa.and_(
                    SUBSCRIPTIONS.c.tenant_id == PERIODS.c.tenant_id,
                    SUBSCRIPTIONS.c.id == PERIODS.c.subscription_id,
                ),
            )
        )
        .where(in_range)
    ).all()
    for p in rows:
        month = Month.of(p.start_at, zone)
        if month not in months:
            continue
        key = (month, p.customer_id, p.currency)
        period_charges = by_period.get(p.id, [])
        whole = [c for c in period_charges if c.kind == "recurring"]
        if whole:
            for c in whole:
                _unit, per_seat, interval = prices[c.price_id]
                mrr = monthly_amount(
                    State.ACTIVE,
                    unit_amount=int(c.unit_amount),
                    quantity=int(c.quantity),
                    per_seat=per_seat,
                    interval=interval,
                )
                sums[key][0] += mrr * MONTHS_PER_INTERVAL[interval]
                sums[key][1] += MONTHS_PER_INTERVAL[interval]
                if c.invoiced_at is None:  # pending: the next billing run invoices it
                    sums[key][2] += mrr * MONTHS_PER_INTERVAL[interval]
                    sums[key][3] += MONTHS_PER_INTERVAL[interval]
        elif not period_charges:
            level, interval = _level_at(history.get(p.subscription_id, []), p.start_at, prices)
            if level:  # nobody charged it: not invoiced either
                n = MONTHS_PER_INTERVAL[interval]
                totals = sums[key]
                totals[0], totals[1] = totals[0] + level * n, totals[1] + n
                totals[2], totals[3] = totals[2] + level * n, totals[3] + n
        else:
            sums.setdefault(key, [0, 0, 0, 0])  # charged by days: a partial period
    return [
        ExpectedBilling(customer, currency, month, *totals)
        for (month, customer, currency), totals in sums.items()
    ]


def _level_at(
    rows: list[Any], at: Any, prices: dict[str, tuple[int, bool, str]]
) -> tuple[int, str]:
    level, interval = 0, "month"
    for r in rows:
        if r.occurred_at > at:
            break
        unit_amount, per_seat, interval = prices[r.new_price_id]
        level = monthly_amount(
            r.new_status,
            unit_amount=unit_amount,
            quantity=r.new_quantity,
            per_seat=per_seat,
            interval=interval,
        )
    return level, interval


def _invoiced(
    session: Session, tenant_id: str, livemode: bool, months: set[Month]
) -> list[InvoicedRecurring]:
    sums: dict[tuple[Month, str, str], _Invoiced] = defaultdict(_Invoiced)
    # charges on finalized invoices (proration credits are counted through their credit notes)
    for c in session.execute(
        sa.select(
            CHARGES.c.customer_id,
            CHARGES.c.currency,
            CHARGES.c.kind,
            CHARGES.c.reason,
            CHARGES.c.amount,
            CHARGES.c.starts_on,
            INVOICES.c.status,
        )
        .select_from(
            CHARGES.join(
                INVOICES,
                sa.and_(
                    INVOICES.c.tenant_id == CHARGES.c.tenant_id,
                    INVOICES.c.id == CHARGES.c.invoice_id,
                ),
            )
        )
        .where(
            CHARGES.c.tenant_id == tenant_id,
            CHARGES.c.livemode == livemode,
            CHARGES.c.kind != "proration_credit",
            INVOICES.c.kind != CREDIT_NOTE,
            INVOICES.c.status != DRAFT,
        )
    ):
        month = Month.of_date(c.starts_on)
        if month not in months:
            continue
        bucket = sums[(month, c.customer_id, c.currency)]
        amount = int(c.amount)
        if c.kind == "recurring":
            if c.status in (VOID, UNCOLLECTIBLE):
                bucket.written_off += amount
            else:
                bucket.recurring += amount
        elif c.reason in _CHANGE_REASONS:
            bucket.proration += amount
        else:
            bucket.partial += amount
    # credit notes, by the period of the line they correct
    proration_notes = sa.select(CHARGES.c.invoice_id).where(
        CHARGES.c.tenant_id == tenant_id,
        CHARGES.c.kind == "proration_credit",
        CHARGES.c.invoice_id.is_not(None),
    )
    for n in session.execute(
        sa.select(
            INVOICES.c.id,
            INVOICES.c.customer_id,
            INVOICES.c.currency,
            INVOICES.c.issued_on,
            LINES.c.net_minor,
            LINES.c.period_start_on,
            INVOICES.c.id.in_(proration_notes).label("for_proration"),
        )
        .select_from(
            INVOICES.join(
                LINES,
                sa.and_(
                    LINES.c.tenant_id == INVOICES.c.tenant_id, LINES.c.invoice_id == INVOICES.c.id
                ),
            )
        )
        .where(
            INVOICES.c.tenant_id == tenant_id,
            INVOICES.c.livemode == livemode,
            INVOICES.c.kind == CREDIT_NOTE,
            INVOICES.c.status != DRAFT,
            # only credit notes of subscription invoices: one-off invoices are not recurring
            INVOICES.c.corrects_invoice_id.in_(
                sa.select(INVOICES.c.id).where(
                    INVOICES.c.tenant_id == tenant_id, INVOICES.c.subscription_id.is_not(None)
                )
            ),
        )
    ):
        day: date = n.period_start_on or n.issued_on
        month = Month.of_date(day)
        if month not in months:
            continue
        bucket = sums[(month, n.customer_id, n.currency)]
        if n.for_proration:
            bucket.proration -= int(n.net_minor)
        else:
            bucket.credited -= int(n.net_minor)
    return [
        InvoicedRecurring(
            customer,
            currency,
            month,
            s.recurring,
            partial=s.partial,
            proration=s.proration,
            credited=s.credited,
            written_off=s.written_off,
        )
        for (month, customer, currency), s in sums.items()
    ]


def reconcile_invoices(
    session: Session, tenant_id: str, livemode: bool, first: Month, last: Month
) -> Reconciliation:
    """MRR vs. invoices for the months `first` to `last` (see the module docstring)."""
    months = set(month_range(first, last))
    expected = _expected(session, tenant_id, livemode, months)
    invoiced = _invoiced(session, tenant_id, livemode, months)
    differences = reconcile_mrr_to_invoices(expected, invoiced)
    return Reconciliation(
        first=first,
        last=last,
        month_ends=len(months),
        customers=len({e.customer_id for e in expected} | {i.customer_id for i in invoiced}),
        differences=differences,
    )
