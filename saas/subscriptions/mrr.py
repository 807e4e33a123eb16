"""Monthly recurring revenue of one subscription, as stored in its history rows. Pure.

MRR is the price's amount per month: `unit_amount × quantity` (quantity only for per-seat
prices) divided by the months of its interval (quarter ÷ 3, year ÷ 12), and 0 in every state
that does not pay (trialing, paused, canceled, incomplete). It is stored as integer minor
units, rounded once, `ROUND_HALF_UP`: a yearly 100.00 EUR is 833 cents a month (833.33…).
Metrics that sum MRR over many subscriptions therefore carry at most half a cent of rounding
per subscription; they are reports, never amounts anybody is charged.
"""

from __future__ import annotations

from decimal import Decimal

from saas.catalog.currencies import to_minor
from saas.subscriptions.lifecycle import COUNTS_FOR_MRR, State
from saas.subscriptions.periods import MONTHS_PER_INTERVAL


def amount_per_interval(unit_amount: int, quantity: int, *, per_seat: bool) -> int:
    """What one full period costs: a flat price ignores the quantity (which is then 1)."""
    return unit_amount * quantity if per_seat else unit_amount


def monthly_amount(
    status: State | str, *, unit_amount: int, quantity: int, per_seat: bool, interval: str
) -> int:
    if State(status) not in COUNTS_FOR_MRR:
        return 0
    per_interval = Decimal(amount_per_interval(unit_amount, quantity, per_seat=per_seat))
    return to_minor(per_interval / MONTHS_PER_INTERVAL[interval])
