"""Reports on the ledger: monthly MRR and movements, churn, trials, cohorts, the total in the
reporting currency, and the ledger-vs-state reconciliation.

The database aggregates (`billing.metrics.sql`: one `GROUP BY currency, month, kind` and two
window queries for the independent checks); Python only assembles the per-month lines
(`months.summarize_months`, which asserts the monthly identity) from a few rows per month.
Every function takes the tenant and mode and filters on both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.metrics import sql
from billing.metrics.cohorts import Cohort, CohortMonthAggregate, cohort_table
from billing.metrics.fx import SOURCE, MonthEndRate, MonthEndRates, convert_minor
from billing.metrics.invoiced import reconcile_invoices
from billing.metrics.models import LEDGER_CURSOR, MetricsCursor
from billing.metrics.money import round_minor
from billing.metrics.months import (
    Month,
    MonthAggregate,
    MonthSummary,
    check_identity,
    month_range,
    ratio,
    summarize_months,
)
from billing.metrics.movements import Kind
from billing.metrics.reconcile import Cause, Reconciliation, reconcile_ledger_to_state
from billing.metrics.services import (
    HISTORY,
    LEDGER,
    SUBSCRIPTIONS,
    price_terms,
    tenant_zone,
    unconsumed_history,
)
from saas.subscriptions.lifecycle import State
from saas.subscriptions.mrr import monthly_amount
from saas.tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class Trials:
    """Trials that ended in a month (a trialing subscription left `trialing`) and how many of
    them became paying (`active` or `past_due`)."""

    ended: int = 0
    converted: int = 0

    @property
    def conversion_rate(self) -> Decimal | None:
        return ratio(self.converted, self.ended)


@dataclass(frozen=True, slots=True)
class TotalMonth:
    """A month of the total in the reporting currency: every figure converted at the month's
    end rate, rounded once per field after summing; `summary.ending_mrr` is the sum of the
    rounded parts, so the identity holds in the total too."""

    summary: MonthSummary
    rates: tuple[MonthEndRate, ...]
    currency_effect: int | None  # starting MRR − the previous month's ending (rate changes)


@dataclass(frozen=True, slots=True)
class Total:
    currency: str
    months: tuple[TotalMonth, ...] = ()
    missing_rates: tuple[str, ...] = ()  # "USD 2031-05": no rate, so no total that month
    source: str = SOURCE


@dataclass(frozen=True, slots=True)
class MetricsReport:
    first: Month
    last: Month
    timezone: str
    livemode: bool
    reporting_currency: str
    currencies: dict[str, list[MonthSummary]]
    trials: dict[tuple[str, Month], Trials] = field(default_factory=dict)
    total: Total | None = None


def _month(value: Any) -> Month:
    return Month.of_date(value)


def monthly_summaries(
    session: Session, tenant_id: str, livemode: bool, first: Month, last: Month
) -> dict[str, list[MonthSummary]]:
    """Per currency, the report line of every month from `first` to `last`."""
    a, b = first.first_day, last.first_day
    opening = {
        r.currency: (int(r.mrr or 0), int(r.customers))
        for r in session.execute(sql.opening_select(LEDGER, tenant_id, livemode, a))
    }
    amounts: dict[tuple[str, Month], dict[Kind, int]] = defaultdict(dict)
    counts: dict[tuple[str, Month], dict[Kind, int]] = defaultdict(dict)
    churned: dict[tuple[str, Month], int] = {}
    for r in session.execute(sql.month_kind_select(LEDGER, tenant_id, livemode, a, b)):
        key = (r.currency, _month(r.month))
        amounts[key][Kind(r.kind)] = int(r.amount)
        counts[key][Kind(r.kind)] = int(r.movements)
        if r.kind == Kind.CHURN:
            churned[key] = int(r.customers)
    net = {
        (r.currency, _month(r.month)): int(r.net_change)
        for r in session.execute(sql.net_change_select(LEDGER, tenant_id, livemode, a, b))
    }
    currencies = sorted(set(opening) | {ccy for ccy, _ in amounts})
    result: dict[str, list[MonthSummary]] = {}
    for currency in currencies:
        aggregates = {
            month: MonthAggregate(
                month=month,
                amounts=amounts[(ccy, month)],
                counts=counts[(ccy, month)],
                churned_customers=churned.get((ccy, month), 0),
                net_change=net.get((ccy, month), 0),
            )
            for (ccy, month) in list(amounts)
            if ccy == currency
        }
        mrr, customers = opening.get(currency, (0, 0))
        result[currency] = summarize_months(
            currency,
            month_range(first, last),
            opening_mrr=mrr,
            opening_customers=customers,
            aggregates=aggregates,
        )
    return result


def trial_conversions(
    session: Session, tenant_id: str, livemode: bool, first: Month, last: Month, *, zone: ZoneInfo
) -> dict[tuple[str, Month], Trials]:
    """Trials ending per currency and month, from the subscription history."""
    rows = session.execute(
        sa.select(HISTORY.c.currency, HISTORY.c.occurred_at, HISTORY.c.new_status).where(
            HISTORY.c.tenant_id == tenant_id,
            HISTORY.c.livemode == livemode,
            HISTORY.c.old_status == State.TRIALING.value,
            HISTORY.c.new_status != State.TRIALING.value,
            HISTORY.c.occurred_at >= first.start_at(zone),
            HISTORY.c.occurred_at < last.end_at(zone),
        )
    ).all()
    ended: dict[tuple[str, Month], int] = defaultdict(int)
    converted: dict[tuple[str, Month], int] = defaultdict(int)
    for r in rows:
        key = (r.currency, Month.of(r.occurred_at, zone))
        ended[key] += 1
        if r.new_status in (State.ACTIVE.value, State.PAST_DUE.value):
            converted[key] += 1
    return {key: Trials(ended[key], converted[key]) for key in ended}


def total_in(
    reporting_currency: str,
    per_currency: dict[str, list[MonthSummary]],
    months: list[Month],
    rates: MonthEndRates,
) -> Total:
    """The per-currency lines converted into the reporting currency at each month's end rate."""
    fields = ("starting_mrr", "new", "expansion", "contraction", "churn", "reactivation")
    lines: list[TotalMonth] = []
    missing: list[str] = []
    previous_end: int | None = None
    for index, month in enumerate(months):
        target = rates.rate(reporting_currency, month)
        used: list[MonthEndRate] = []
        sums = dict.fromkeys(fields, Decimal(0))
        counts = {"customers_start": 0, "customers_end": 0, "churned": 0, "new": 0, "re": 0}
        complete = target is not None
        for currency, summaries in per_currency.items():
            line = summaries[index]
            source = rates.rate(currency, month)
            if source is None or target is None:
                missing.append(f"{currency} {month}")
                complete = False
                continue
            if currency != reporting_currency:
                used.append(source)
            for name in fields:
                sums[name] += convert_minor(getattr(line, name), source, target)
            counts["customers_start"] += line.customers_start
            counts["customers_end"] += line.customers_end
            counts["churned"] += line.churned_customers
            counts["new"] += line.new_customers
            counts["re"] += line.reactivated_customers
        if not complete:
            previous_end = None
            continue
        parts = {name: round_minor(value) for name, value in sums.items()}
        summary = MonthSummary(
            currency=reporting_currency,
            month=month,
            starting_mrr=parts["starting_mrr"],
            new=parts["new"],
            expansion=parts["expansion"],
            contraction=parts["contraction"],
            churn=parts["churn"],
            reactivation=parts["reactivation"],
            ending_mrr=sum(parts.values()),
            customers_start=counts["customers_start"],
            customers_end=counts["customers_end"],
            churned_customers=counts["churned"],
            new_customers=counts["new"],
            reactivated_customers=counts["re"],
        )
        check_identity(summary)
        effect = None if previous_end is None else summary.starting_mrr - previous_end
        lines.append(TotalMonth(summary, tuple(used), effect))
        previous_end = summary.ending_mrr
    return Total(reporting_currency, tuple(lines), tuple(sorted(set(missing))))


def metrics_report(
    session: Session,
    tenant_id: str,
    livemode: bool,
    first: Month,
    last: Month,
    *,
    rates: MonthEndRates,
    with_trials: bool = False,
) -> MetricsReport:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise RuntimeError(f"no tenant {tenant_id}")
    zone = ZoneInfo(tenant.timezone)
    per_currency = monthly_summaries(session, tenant_id, livemode, first, last)
    months = month_range(first, last)
    return MetricsReport(
        first=first,
        last=last,
        timezone=tenant.timezone,
        livemode=livemode,
        reporting_currency=tenant.default_currency,
        currencies=per_currency,
        trials=trial_conversions(session, tenant_id, livemode, first, last, zone=zone)
        if with_trials
        else {},
        total=total_in(tenant.default_currency, per_currency, months, rates),
    )


def cohorts(
    session: Session, tenant_id: str, livemode: bool, first: Month, last: Month
) -> list[Cohort]:
    rows = session.execute(
        sql.cohort_select(LEDGER, tenant_id, livemode, first.first_day, last.first_day)
    )
    return cohort_table(
        (
            CohortMonthAggregate(
                currency=r.currency,
                cohort=_month(r.cohort),
                month=_month(r.month),
                amount=int(r.amount),
                activity=int(r.activity),
                new_customers=int(r.new_customers),
                new_mrr=int(r.new_mrr),
            )
            for r in rows
        ),
        first,
        last,
    )


# --- ledger vs. state ---------------------------------------------------------------------


_Explanations = dict[tuple[str, str], tuple[Cause, str]]
_PriceMrr = Callable[[str, str, int], int]


def _price_mrr(session: Session, tenant_id: str) -> _PriceMrr:
    """MRR of a subscription's terms, priced again (`saas.subscriptions.mrr`)."""
    prices = price_terms(session, tenant_id)

    def price_mrr(status: str, price_id: str, quantity: int) -> int:
        unit_amount, per_seat, interval = prices[price_id]
        return monthly_amount(
            State(status),
            unit_amount=unit_amount,
            quantity=quantity,
            per_seat=per_seat,
            interval=interval,
        )

    return price_mrr


def _check_history(rows: list[Any], price_mrr: _PriceMrr, explanations: _Explanations) -> None:
    """Name what is wrong with one subscription's history rows (in order)."""
    previous_after = 0
    for r in rows:
        key = (r.customer_id, r.currency)
        level = price_mrr(r.new_status, r.new_price_id, r.new_quantity)
        if level != r.mrr_after:
            explanations[key] = (
                Cause.HISTORY_MRR_MISMATCH,
                f"{r.id}: stored mrr_after {r.mrr_after}, terms give {level}",
            )
        if r.mrr_before != previous_after:
            explanations[key] = (
                Cause.HISTORY_CHAIN_BREAK,
                f"{r.id}: mrr_before {r.mrr_before}, previous mrr_after {previous_after}",
            )
        previous_after = r.mrr_after


def _state_at_month_ends(
    session: Session,
    tenant_id: str,
    livemode: bool,
    *,
    ends: list[tuple[Month, datetime]],
    price_mrr: _PriceMrr,
    explanations: _Explanations,
) -> tuple[dict[tuple[Month, str, str], int], dict[str, Any]]:
    """Per month end, customer and currency: Σ of the subscriptions' MRR priced from their
    terms after the last history row before the end instant. Also each subscription's last
    history row."""
    by_sub: dict[str, list[Any]] = defaultdict(list)
    for r in session.execute(
        sa.select(
            HISTORY.c.id,
            HISTORY.c.subscription_id,
            HISTORY.c.customer_id,
            HISTORY.c.currency,
            HISTORY.c.occurred_at,
            HISTORY.c.new_status,
            HISTORY.c.new_price_id,
            HISTORY.c.new_quantity,
            HISTORY.c.mrr_before,
            HISTORY.c.mrr_after,
        )
        .where(HISTORY.c.tenant_id == tenant_id, HISTORY.c.livemode == livemode)
        .order_by(HISTORY.c.subscription_id, HISTORY.c.occurred_at, HISTORY.c.seq)
    ):
        by_sub[r.subscription_id].append(r)
    state: dict[tuple[Month, str, str], int] = defaultdict(int)
    for rows in by_sub.values():
        _check_history(rows, price_mrr, explanations)
        customer, currency = rows[0].customer_id, rows[0].currency
        i = 0
        level = 0
        for month, end in ends:
            while i < len(rows) and rows[i].occurred_at < end:
                r = rows[i]
                level = price_mrr(r.new_status, r.new_price_id, r.new_quantity)
                i += 1
            if level:
                state[(month, customer, currency)] += level
    return state, {sub_id: rows[-1] for sub_id, rows in by_sub.items()}


def _ledger_at_month_ends(
    session: Session, tenant_id: str, livemode: bool, months: list[Month]
) -> tuple[dict[tuple[Month, str, str], int], dict[tuple[str, str], int]]:
    """The ledger's running sum per customer and currency at each month's end, and now."""
    per_customer: dict[tuple[str, str], list[tuple[Month, int]]] = defaultdict(list)
    for r in session.execute(
        sa.select(LEDGER.c.customer_id, LEDGER.c.currency, LEDGER.c.month, LEDGER.c.amount)
        .where(LEDGER.c.tenant_id == tenant_id, LEDGER.c.livemode == livemode)
        .order_by(LEDGER.c.customer_id, LEDGER.c.currency, LEDGER.c.occurred_at)
    ):
        per_customer[(r.customer_id, r.currency)].append((_month(r.month), int(r.amount)))
    ledger: dict[tuple[Month, str, str], int] = {}
    now: dict[tuple[str, str], int] = {}
    for (customer, currency), moves in per_customer.items():
        now[(customer, currency)] = sum(amount for _, amount in moves)
        running = 0
        i = 0
        for month in months:
            while i < len(moves) and moves[i][0] <= month:
                running += moves[i][1]
                i += 1
            if running:
                ledger[(month, customer, currency)] = running
    return ledger, now


def _state_now(
    session: Session,
    tenant_id: str,
    livemode: bool,
    *,
    price_mrr: _PriceMrr,
    last_rows: dict[str, Any],
    explanations: _Explanations,
) -> dict[tuple[str, str], int]:
    """Today's MRR per customer and currency from the subscription rows themselves."""
    state: dict[tuple[str, str], int] = defaultdict(int)
    for s in session.execute(
        sa.select(
            SUBSCRIPTIONS.c.id,
            SUBSCRIPTIONS.c.customer_id,
            SUBSCRIPTIONS.c.currency,
            SUBSCRIPTIONS.c.status,
            SUBSCRIPTIONS.c.price_id,
            SUBSCRIPTIONS.c.quantity,
        ).where(SUBSCRIPTIONS.c.tenant_id == tenant_id, SUBSCRIPTIONS.c.livemode == livemode)
    ):
        key = (s.customer_id, s.currency)
        state[key] += price_mrr(s.status, s.price_id, s.quantity)
        row = last_rows.get(s.id)
        terms = (s.status, s.price_id, s.quantity)
        if row is None or (row.new_status, row.new_price_id, row.new_quantity) != terms:
            explanations[key] = (Cause.STATE_NOT_IN_HISTORY, f"subscription {s.id}")
    return state


def _explain_ledger_behind(
    session: Session, tenant_id: str, livemode: bool, explanations: _Explanations
) -> None:
    cursor = session.scalar(
        sa.select(MetricsCursor).where(
            MetricsCursor.tenant_id == tenant_id, MetricsCursor.id == LEDGER_CURSOR
        )
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    scope = [HISTORY.c.tenant_id == tenant_id, HISTORY.c.livemode == livemode]
    select = sa.select(HISTORY.c.customer_id, HISTORY.c.currency)
    if cursor is None:  # never synced: everything is behind
        for r in session.execute(select.where(*scope)):
            counts[(r.customer_id, r.currency)] += 1
    else:
        new, _ = unconsumed_history(session, tenant_id, cursor)
        ids = [row_id for row_id, _ in new]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            for r in session.execute(select.where(*scope, HISTORY.c.id.in_(chunk))):
                counts[(r.customer_id, r.currency)] += 1
    for key, count in counts.items():
        explanations.setdefault(
            key, (Cause.LEDGER_BEHIND, f"{count} history row(s) not yet in the ledger")
        )


def reconcile_ledger(
    session: Session, tenant_id: str, livemode: bool, first: Month, last: Month
) -> Reconciliation:
    """Ledger vs. state at every month end from `first` to `last`, and today (see
    `billing.metrics.reconcile`). Reads the mode's history once, in subscription order."""
    zone = tenant_zone(session, tenant_id)
    months = month_range(first, last)
    price_mrr = _price_mrr(session, tenant_id)
    explanations: _Explanations = {}
    state, last_rows = _state_at_month_ends(
        session,
        tenant_id,
        livemode,
        ends=[(m, m.end_at(zone)) for m in months],
        price_mrr=price_mrr,
        explanations=explanations,
    )
    ledger, ledger_now = _ledger_at_month_ends(session, tenant_id, livemode, months)
    state_now = _state_now(
        session,
        tenant_id,
        livemode,
        price_mrr=price_mrr,
        last_rows=last_rows,
        explanations=explanations,
    )
    _explain_ledger_behind(session, tenant_id, livemode, explanations)
    differences = reconcile_ledger_to_state(
        ledger, state, ledger_now=ledger_now, state_now=state_now, explanations=explanations
    )
    return Reconciliation(
        first=first,
        last=last,
        month_ends=len(months),
        customers=len({c for c, _ in state_now} | {c for c, _ in ledger_now}),
        differences=differences,
    )


def reconcile(
    session: Session, tenant_id: str, livemode: bool, first: Month, last: Month, *, check: str
) -> Reconciliation:
    """`check` is `ledger_vs_state`, `mrr_vs_invoices` or `both` (one report, both lists)."""
    parts = []
    if check in ("both", "ledger_vs_state"):
        parts.append(reconcile_ledger(session, tenant_id, livemode, first, last))
    if check in ("both", "mrr_vs_invoices"):
        parts.append(reconcile_invoices(session, tenant_id, livemode, first, last))
    if not parts:
        raise ValueError(f"no such reconciliation: {check!r}")
    return Reconciliation(
        first=first,
        last=last,
        month_ends=parts[0].month_ends,
        customers=max(p.customers for p in parts),
        differences=[d for p in parts for d in p.differences],
    )
