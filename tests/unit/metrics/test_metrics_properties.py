"""Invariants on random event streams: MRR start + movements = MRR end every month, the
customers counted are those with MRR, and the result does not depend on input order."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.metrics.months import Month, aggregate_movements, month_range, summarize_months
from billing.metrics.movements import Kind, SubscriptionChange, movements_from_levels

ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2024, 12, 20, tzinfo=UTC)

changes = st.lists(
    st.builds(
        SubscriptionChange,
        customer_id=st.sampled_from(["c1", "c2", "c3", "c4"]),
        subscription_id=st.sampled_from(["a", "b", "c"]),
        # few distinct instants, so that same-instant merges happen often
        at=st.integers(0, 40).map(lambda d: START + timedelta(days=d * 3)),
        mrr=st.sampled_from([0, 0, 990, 1900, 4083, 4900]),
        currency=st.just("EUR"),
    ),
    max_size=40,
).map(lambda cs: [  # a subscription belongs to one customer: prefix it with the customer
    SubscriptionChange(c.customer_id, f"{c.customer_id}-{c.subscription_id}", c.at, c.mrr, "EUR")
    for c in cs
])  # fmt: skip


def _levels_at(cs: list[SubscriptionChange], instant: datetime) -> dict[str, int]:
    """Each customer's MRR just before `instant`, straight from the levels."""
    latest: dict[str, tuple[datetime, int, int]] = {}
    for order, c in enumerate(cs):
        if c.at < instant:
            key = c.subscription_id
            if key not in latest or (c.at, order) >= latest[key][:2]:
                latest[key] = (c.at, order, c.mrr)
    per_customer: dict[str, int] = defaultdict(int)
    for sub, (_, _, mrr) in latest.items():
        per_customer[sub.split("-")[0]] += mrr
    return per_customer


@settings(max_examples=200, deadline=None)
@given(changes)
def test_identity_and_counts_hold_every_month_when_events_are_random(
    cs: list[SubscriptionChange],
) -> None:
    movements = movements_from_levels(cs)
    first, last = Month(2024, 12), Month(2025, 4)
    data = aggregate_movements(movements, ZONE, first).get("EUR")
    lines = summarize_months(  # raises MrrIdentityError if the identity breaks
        "EUR",
        month_range(first, last),
        opening_mrr=data.opening_mrr if data else 0,
        opening_customers=data.opening_customers if data else 0,
        aggregates=data.aggregates if data else {},
    )
    for line in lines:
        state = _levels_at(cs, line.month.end_at(ZONE))
        assert line.ending_mrr == sum(state.values())
        assert line.customers_end == sum(1 for v in state.values() if v > 0)
    # every movement is classified by its own before/after, and each customer is new once
    seen_new: set[str] = set()
    for m in movements:
        assert m.amount == m.mrr_after - m.mrr_before != 0
        if m.kind is Kind.NEW:
            assert m.customer_id not in seen_new
            seen_new.add(m.customer_id)


@settings(max_examples=100, deadline=None)
@given(changes, st.randoms(use_true_random=False))
def test_movements_do_not_depend_on_input_order_when_instants_differ(
    cs: list[SubscriptionChange], rnd: object
) -> None:
    # keep one line per subscription and instant: only then is the order irrelevant
    unique = list({(c.subscription_id, c.at): c for c in cs}.values())
    shuffled = list(unique)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert movements_from_levels(shuffled) == movements_from_levels(unique)
