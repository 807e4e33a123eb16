"""Reads behind the dashboard pages. The session is scoped to the staff member's tenant and
to the mode the dashboard shows (live or test), so every list is that tenant's, that mode's.

Metrics come from `billing.metrics.queries` (the ledger the worker keeps in step), the OSS
quarter from `billing.taxreports` and the thresholds from `billing.taxcounters`, the same
computations as the `/v1/metrics` and `/v1/tax` endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.invoices.models import Invoice
from billing.metrics import queries as metrics
from billing.metrics.fx import EcbMonthEndRates
from billing.metrics.months import Month, MonthSummary, month_range, summarize_months
from billing.sellers.services import find_seller_profile
from billing.taxcounters.services import CountersReport, counters_report
from billing.taxreports.services import oss_return
from compliance.deadlines import OPEN_STATES
from compliance.models import GdprRequest
from saas.auth.models import ApiKey
from saas.customers.models import Customer
from saas.dashboard.models import StaffAccount
from saas.kernel.errors import DomainError
from saas.portal.models import CancellationReason
from saas.subscriptions.models import Subscription
from saas.tenants.models import Tenant
from saas.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tax.oss import OssReturn, Quarter

LIST_LIMIT = 100
MONTHS = 12


def zone(tenant: Tenant) -> ZoneInfo:
    return ZoneInfo(tenant.timezone)


def report(
    session: Session, tenant: Tenant, livemode: bool, now: datetime, *, trials: bool = False
) -> metrics.MetricsReport:
    last = Month.of(now, zone(tenant))
    return metrics.metrics_report(
        session,
        tenant.id,
        livemode,
        last.shift(-(MONTHS - 1)),
        last,
        rates=EcbMonthEndRates(),
        with_trials=trials,
    )


def chart_series(rep: metrics.MetricsReport) -> list[MonthSummary]:
    """The reporting currency's months (all zero when the tenant has none in it yet)."""
    ccy = rep.reporting_currency
    if ccy in rep.currencies:
        return rep.currencies[ccy]
    months = month_range(rep.first, rep.last)
    return summarize_months(ccy, months, opening_mrr=0, opening_customers=0, aggregates={})


def cohorts(session: Session, tenant: Tenant, livemode: bool, now: datetime) -> list[Any]:
    last = Month.of(now, zone(tenant))
    return metrics.cohorts(session, tenant.id, livemode, last.shift(-(MONTHS - 1)), last)


@dataclass(frozen=True)
class Counts:
    customers: int
    active_subscriptions: int
    trialing: int
    open_gdpr_requests: int
    overdue_gdpr_requests: int


def counts(session: Session, now: datetime) -> Counts:
    def count(stmt: sa.Select[Any]) -> int:
        return int(session.scalar(stmt) or 0)

    open_states = [s.value for s in OPEN_STATES]
    return Counts(
        customers=count(sa.select(sa.func.count()).select_from(Customer)),
        active_subscriptions=count(
            sa.select(sa.func.count())
            .select_from(Subscription)
            .where(Subscription.status.in_(("active", "past_due")))
        ),
        trialing=count(
            sa.select(sa.func.count())
            .select_from(Subscription)
            .where(Subscription.status == "trialing")
        ),
        open_gdpr_requests=count(
            sa.select(sa.func.count())
            .select_from(GdprRequest)
            .where(GdprRequest.state.in_(open_states))
        ),
        overdue_gdpr_requests=count(
            sa.select(sa.func.count())
            .select_from(GdprRequest)
            .where(GdprRequest.state.in_(open_states), GdprRequest.due_at <= now)
        ),
    )


def cancellation_reasons(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        sa.select(CancellationReason.reason, sa.func.count())
        .group_by(CancellationReason.reason)
        .order_by(sa.func.count().desc())
    ).all()
    return [(r[0], int(r[1])) for r in rows]


def customers(session: Session) -> Sequence[Customer]:
    return session.scalars(sa.select(Customer).order_by(Customer.id.desc()).limit(LIST_LIMIT)).all()


def customer_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(sa.select(Customer.id, Customer.name).where(Customer.id.in_(ids)))
    return {r.id: r.name for r in rows}


def subscriptions(session: Session) -> Sequence[Subscription]:
    return session.scalars(
        sa.select(Subscription).order_by(Subscription.id.desc()).limit(LIST_LIMIT)
    ).all()


def invoices(session: Session) -> Sequence[Invoice]:
    return session.scalars(sa.select(Invoice).order_by(Invoice.id.desc()).limit(LIST_LIMIT)).all()


def gdpr_requests(session: Session) -> Sequence[GdprRequest]:
    """Open requests first, the nearest deadline first; then the closed ones, newest first."""
    open_states = [s.value for s in OPEN_STATES]
    is_open = GdprRequest.state.in_(open_states)
    return session.scalars(
        sa.select(GdprRequest)
        .order_by(sa.case((is_open, 0), else_=1), GdprRequest.due_at, GdprRequest.id.desc())
        .limit(LIST_LIMIT)
    ).all()


def webhook_endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    return session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id.desc())).all()


def webhook_endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint | None:
    return session.scalars(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    ).first()


def deliveries(
    session: Session, endpoint_id: str
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    rows = session.scalars(
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(50)
    ).all()
    attempts: dict[str, list[WebhookAttempt]] = {r.id: [] for r in rows}
    if rows:
        for attempt in session.scalars(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.attempted_at)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [(r, attempts[r.id]) for r in rows]


def api_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(sa.select(ApiKey).order_by(ApiKey.id.desc())).all()


def staff(session: Session) -> Sequence[StaffAccount]:
    return session.scalars(sa.select(StaffAccount).order_by(StaffAccount.email)).all()


# --- tax: the OSS quarter and the thresholds ---------------------------------------------


@dataclass(frozen=True)
class TaxOverview:
    quarter: Quarter
    oss: OssReturn | None
    oss_problem: str | None
    counters: CountersReport | None
    counters_problem: str | None


def tax_overview(session: Session, *, livemode: bool, today: date) -> TaxOverview:
    """The current quarter's OSS return and this year's counters and thresholds, as
    `GET /v1/tax/oss-return` and `GET /v1/tax/counters` compute them; a report that cannot be
    built yet (no seller profile, no ECB rate for the quarter's end) says why instead."""
    quarter = Quarter.of(today)
    oss: OssReturn | None = None
    oss_problem = counters_problem = None
    try:
        oss = oss_return(session, livemode=livemode, quarter=quarter)
    except DomainError as err:
        oss_problem = err.detail
    report: CountersReport | None = None
    profile = find_seller_profile(session, livemode=livemode)
    if profile is None:
        counters_problem = "no seller profile yet (PUT /v1/seller_profile)"
    else:
        report = counters_report(session, profile, livemode=livemode, year=today.year)
    return TaxOverview(quarter, oss, oss_problem, report, counters_problem)
