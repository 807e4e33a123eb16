"""Which pending charges of a subscription become which invoice (pure rules, no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.runs.invoicing import Charge, charge_line, group_charges


def charge(kind: str, amount: int, starts_on: str, *, cid: str = "", quantity: int = 1) -> Charge:
    start = date.fromisoformat(starts_on)
    return Charge(
        id=cid or f"sch_{kind}_{starts_on}_{amount}",
        subscription_id="sub_1",
        customer_id="cus_1",
        period_id="sper_1",
        price_id="price_1",
        livemode=False,
        kind=kind,
        description=kind,
        quantity=quantity,
        unit_amount=abs(amount) // quantity,
        amount=amount,
        currency="EUR",
        starts_on=start,
        ends_on=date(start.year + (start.month == 12), start.month % 12 + 1, 1),
    )


R, C, CR = "recurring", "proration_charge", "proration_credit"


@pytest.mark.parametrize(
    ("charges", "keys", "credits"),
    [
        # one period: one invoice keyed by its first day
        ([(R, 1900, "2026-03-01")], [date(2026, 3, 1)], 0),
        # catch-up: each period its own invoice
        (
            [(R, 1900, "2026-03-01"), (R, 1900, "2026-04-01")],
            [date(2026, 3, 1), date(2026, 4, 1)],
            0,
        ),
        # an upgrade mid-period with no pending period: its own invoice, no key
        ([(C, 500, "2026-03-10")], [None], 0),
        # an upgrade before a pending renewal joins the renewal's invoice
        ([(C, 500, "2026-03-10"), (R, 4900, "2026-04-01")], [date(2026, 4, 1)], 0),
        # same day: the proration joins that day's period invoice
        ([(R, 1900, "2026-03-01"), (C, 3000, "2026-03-01")], [date(2026, 3, 1)], 0),
        # credits are never lines: they are returned for credit notes
        ([(CR, -1900, "2026-03-01"), (C, 9900, "2026-03-01")], [None], 1),
        ([(CR, -900, "2026-03-15")], [], 1),
    ],
)
def test_charges_are_grouped_per_period_when_pending(
    charges: list[tuple[str, int, str]], keys: list[date | None], credits: int
) -> None:
    groups, left = group_charges([charge(k, a, s) for k, a, s in charges])
    assert [g.period_start_on for g in groups] == keys
    assert len(left) == credits and all(c.amount < 0 for c in left)
    assert sum(len(g.charges) for g in groups) + len(left) == len(charges)


@pytest.mark.parametrize(
    ("quantity", "unit_amount", "amount", "line"),
    [
        (3, 1000, 3000, (Decimal(3), 1000, 3000)),  # a full period per seat
        (1, 1900, 1900, (Decimal(1), 1900, 1900)),
        (3, 1000, 1742, (Decimal(1), 1742, 1742)),  # prorated: one unit of the amount
        (2, 0, 0, (Decimal(2), 0, 0)),  # a free plan still bills its period
    ],
)
def test_line_is_quantity_times_price_when_exact_else_one_unit(
    quantity: int, unit_amount: int, amount: int, line: tuple[Decimal, int, int]
) -> None:
    c = Charge(
        "sch_1", "sub_1", "cus_1", "sper_1", "price_1", False, R, "Pro", quantity,
        unit_amount, amount, "EUR", date(2026, 3, 1), date(2026, 4, 1),
    )  # fmt: skip
    got = charge_line(c)
    assert (got.quantity, got.unit_amount, got.net_minor) == line
    assert got.period is not None and got.period.end == date(2026, 3, 31)  # inclusive


def test_credit_is_refused_when_asked_for_as_a_line() -> None:
    with pytest.raises(ValueError, match="credit"):
        charge_line(charge(CR, -500, "2026-03-10"))
