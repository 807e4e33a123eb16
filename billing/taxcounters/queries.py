"""The one aggregate read behind the counters: the ledger and the received payments of a
year and the year before, per year, in a single round trip.

Received turnover is computed row by row in integer arithmetic, the same on SQLite and
PostgreSQL: a payment of ``a`` (document currency) to an invoice whose counting share is
``n`` EUR cents of ``g`` gross contributes ``round_half_up(a · n / g)`` EUR cents, written as
``(2·a·n + g) div (2·g)`` (all positive; a refund subtracts the same expression).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.payments.models import PAYMENT, SUCCEEDED, Payment
from billing.taxcounters.models import TaxLedgerEntry
from billing.taxcounters.rules import YearTotals


def year_start(year: int, zone: ZoneInfo) -> datetime:
    """1 January 00:00 in the tenant's time zone, as a UTC instant."""
    return datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)


def year_totals(
    session: Session, tenant_id: str, *, livemode: bool, year: int, zone: ZoneInfo
) -> tuple[YearTotals, YearTotals]:
    """(totals of ``year``, totals of ``year - 1``)."""
    entry = TaxLedgerEntry
    start = year_start(year, zone)
    sign = sa.case((Payment.kind == PAYMENT, 1), else_=-1)
    share = (2 * Payment.amount_minor * entry.turnover_eur_minor + entry.gross_minor) // (
        2 * entry.gross_minor
    )
    zero = sa.literal(0, sa.BigInteger())
    received = (
        sa.select(
            sa.case((Payment.received_at >= start, year), else_=year - 1).label("year"),
            (sign * share).label("received"),
            zero.label("eu_b2c"),
            zero.label("union_turnover"),
            zero.label("entries"),
        )
        .select_from(Payment)
        .join(
            entry,
            sa.and_(entry.tenant_id == Payment.tenant_id, entry.document_id == Payment.invoice_id),
        )
        .where(
            Payment.tenant_id == tenant_id,
            Payment.livemode == livemode,
            Payment.status == SUCCEEDED,
            Payment.received_at >= year_start(year - 1, zone),
            Payment.received_at < year_start(year + 1, zone),
            entry.gross_minor > 0,
            entry.turnover_eur_minor != 0,
        )
    )
    booked = sa.select(
        entry.year.label("year"),
        zero.label("received"),
        entry.eu_b2c_eur_minor.label("eu_b2c"),
        entry.union_eur_minor.label("union_turnover"),
        sa.literal(1, sa.BigInteger()).label("entries"),
    ).where(
        entry.tenant_id == tenant_id,
        entry.livemode == livemode,
        entry.year.in_((year - 1, year)),
    )
    rows = sa.union_all(received, booked).subquery()
    result = session.execute(
        sa.select(
            rows.c.year,
            sa.func.sum(rows.c.received),
            sa.func.sum(rows.c.eu_b2c),
            sa.func.sum(rows.c.union_turnover),
            sa.func.sum(rows.c.entries),
        ).group_by(rows.c.year)
    ).all()
    totals = {
        int(y): YearTotals(int(rec or 0), int(eu or 0), int(un or 0), int(n or 0))
        for y, rec, eu, un, n in result
    }
    return totals.get(year, YearTotals()), totals.get(year - 1, YearTotals())
