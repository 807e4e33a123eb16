"""The movement rules of docs/metrics.md, one parametrized case per rule and the situations the
issue names: same-instant merging, reactivation after churn, customers with several
subscriptions, annual plans, trials and pauses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.metrics.movements import (
    Delta,
    Kind,
    NegativeMrrError,
    SubscriptionChange,
    classify,
    deltas_from_levels,
    movements_from_deltas,
    movements_from_levels,
)
from saas.subscriptions.mrr import monthly_amount

T0 = datetime(2025, 1, 15, 10, tzinfo=UTC)


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def change(
    sub: str, days: int, mrr: int, customer: str = "c1", ccy: str = "EUR"
) -> SubscriptionChange:
    return SubscriptionChange(customer, sub, at(days), mrr, ccy)


def kinds(changes: list[SubscriptionChange]) -> list[tuple[Kind, int]]:
    return [(m.kind, m.amount) for m in movements_from_levels(changes)]


@pytest.mark.parametrize(
    ("before", "after", "had_mrr", "expected"),
    [
        (0, 4900, False, Kind.NEW),
        (0, 4900, True, Kind.REACTIVATION),
        (4900, 0, True, Kind.CHURN),
        (1900, 4900, True, Kind.EXPANSION),
        (4900, 1900, True, Kind.CONTRACTION),
        (4900, 4900, True, None),  # a renewal
        (0, 0, False, None),  # a trial starting
        (0, 0, True, None),  # a paused subscription's change
    ],
    ids=["new", "reactivation", "churn", "expansion", "contraction", "same", "zero", "zero-after"],
)
def test_classify_follows_the_table_when_mrr_changes(
    before: int, after: int, had_mrr: bool, expected: Kind | None
) -> None:
    assert classify(before, after, had_mrr=had_mrr) is expected


def test_classify_refuses_negative_mrr_when_input_contradicts_itself() -> None:
    with pytest.raises(NegativeMrrError):
        classify(100, -1, had_mrr=True)


def test_amounts_are_a_minus_b_and_signed_when_classified() -> None:
    moves = movements_from_levels(
        [change("s1", 0, 1900), change("s1", 10, 4900), change("s1", 20, 2900), change("s1", 30, 0)]
    )
    assert [(m.kind, m.amount, m.mrr_before, m.mrr_after) for m in moves] == [
        (Kind.NEW, 1900, 0, 1900),
        (Kind.EXPANSION, 3000, 1900, 4900),
        (Kind.CONTRACTION, -2000, 4900, 2900),
        (Kind.CHURN, -2900, 2900, 0),
    ]


def test_reactivation_not_new_when_customer_returns_after_churn() -> None:
    assert kinds(
        [change("s1", 0, 1900), change("s1", 30, 0), change("s2", 60, 4900), change("s2", 90, 0),
         change("s3", 120, 990)]
    ) == [
        (Kind.NEW, 1900),
        (Kind.CHURN, -1900),
        (Kind.REACTIVATION, 4900),
        (Kind.CHURN, -4900),
        (Kind.REACTIVATION, 990),
    ]  # fmt: skip


def test_plan_switch_as_cancel_and_create_is_one_change_when_at_same_instant() -> None:
    # cancel Starter and create Pro at the same instant: one expansion, no churn + reactivation
    assert kinds([change("s1", 0, 1900), change("s1", 10, 0), change("s2", 10, 4900)]) == [
        (Kind.NEW, 1900),
        (Kind.EXPANSION, 3000),
    ]


def test_net_zero_switch_is_no_movement_when_merged() -> None:
    assert kinds([change("s1", 0, 1900), change("s1", 10, 0), change("s2", 10, 1900)]) == [
        (Kind.NEW, 1900)
    ]


def test_same_instant_changes_of_one_subscription_keep_file_order_when_merged() -> None:
    # a scheduled change and the renewal at one boundary: the last line is the level
    assert kinds([change("s1", 0, 1900), change("s1", 31, 4900), change("s1", 31, 4900)]) == [
        (Kind.NEW, 1900),
        (Kind.EXPANSION, 3000),
    ]
    assert kinds([change("s1", 0, 1900), change("s1", 31, 0), change("s1", 31, 2900)]) == [
        (Kind.NEW, 1900),
        (Kind.EXPANSION, 1000),
    ]


def test_cancelling_one_of_two_subscriptions_is_contraction_when_customer_keeps_the_other() -> None:
    assert kinds([change("s1", 0, 1900), change("s2", 5, 9900), change("s2", 40, 0)]) == [
        (Kind.NEW, 1900),
        (Kind.EXPANSION, 9900),  # a second subscription of a paying customer
        (Kind.CONTRACTION, -9900),
    ]


def test_second_subscription_started_same_instant_as_first_is_one_new_when_merged() -> None:
    moves = movements_from_levels([change("s1", 0, 1900), change("s2", 0, 9900)])
    assert [(m.kind, m.amount) for m in moves] == [(Kind.NEW, 11800)]


def test_annual_plan_counts_a_twelfth_per_month_when_priced() -> None:
    mrr = monthly_amount("active", unit_amount=49000, quantity=1, per_seat=False, interval="year")
    assert mrr == 4083  # 490.00 / 12 = 40.8333…, rounded once
    quarterly = monthly_amount(
        "active", unit_amount=10000, quantity=1, per_seat=False, interval="quarter"
    )
    assert quarterly == 3333
    # the yearly renewal changes nothing; switching to monthly Business is an expansion
    assert kinds([change("y", 0, mrr), change("y", 365, mrr), change("y", 400, 9900)]) == [
        (Kind.NEW, 4083),
        (Kind.EXPANSION, 9900 - 4083),
    ]


def test_trial_counts_nothing_until_it_converts_when_subscription_starts_trialing() -> None:
    trialing = monthly_amount(
        "trialing", unit_amount=4900, quantity=1, per_seat=False, interval="month"
    )
    assert trialing == 0
    # trial start (0), conversion (4900): the conversion is the customer's `new`
    assert kinds([change("s1", 0, trialing), change("s1", 14, 4900)]) == [(Kind.NEW, 4900)]
    # a trial that ends without paying leaves no movement at all
    assert kinds([change("s2", 0, 0, "c2"), change("s2", 14, 0, "c2")]) == []


def test_pause_is_churn_and_resume_is_reactivation_when_customer_has_no_other_mrr() -> None:
    paused = monthly_amount(
        "paused", unit_amount=4900, quantity=1, per_seat=False, interval="month"
    )
    past_due = monthly_amount(
        "past_due", unit_amount=4900, quantity=1, per_seat=False, interval="month"
    )
    assert (paused, past_due) == (0, 4900)  # past_due still counts until canceled
    assert kinds([change("s1", 0, 4900), change("s1", 30, paused), change("s1", 60, 4900)]) == [
        (Kind.NEW, 4900),
        (Kind.CHURN, -4900),
        (Kind.REACTIVATION, 4900),
    ]


def test_currencies_are_separate_series_when_customer_pays_in_two() -> None:
    moves = movements_from_levels(
        [change("s1", 0, 1900, ccy="EUR"), change("s2", 1, 5900, ccy="USD"),
         change("s1", 2, 0, ccy="EUR")]
    )  # fmt: skip
    assert [(m.currency, m.kind, m.amount) for m in moves] == [
        ("EUR", Kind.NEW, 1900),
        ("EUR", Kind.CHURN, -1900),
        ("USD", Kind.NEW, 5900),
    ]


def test_unsorted_input_gives_time_ordered_movements_when_read() -> None:
    ordered = [change("s1", 0, 1900), change("s1", 10, 4900), change("s2", 20, 990, "c2")]
    assert movements_from_levels(list(reversed(ordered))) == movements_from_levels(ordered)


def test_levels_and_history_deltas_give_identical_movements_when_chain_is_consistent() -> None:
    levels = [change("s1", 0, 1900), change("s2", 0, 0), change("s2", 14, 4900),
              change("s1", 40, 0), change("s2", 40, 9900)]  # fmt: skip
    deltas = [
        Delta("c1", "EUR", at(0), 1900, "sh_1"),
        Delta("c1", "EUR", at(14), 4900, "sh_3"),
        Delta("c1", "EUR", at(40), -1900, "sh_4"),
        Delta("c1", "EUR", at(40), 5000, "sh_5"),
    ]
    from_levels = [(m.kind, m.amount, m.at) for m in movements_from_levels(levels)]
    from_deltas = movements_from_deltas(deltas)
    assert from_levels == [(m.kind, m.amount, m.at) for m in from_deltas]
    assert from_deltas[-1].source_id == "sh_5"  # the newest row names a merged movement


def test_subscription_cannot_change_customer_when_levels_are_read() -> None:
    with pytest.raises(ValueError, match="changes its customer"):
        deltas_from_levels([change("s1", 0, 100, "c1"), change("s1", 1, 200, "c2")])
    with pytest.raises(NegativeMrrError):
        deltas_from_levels([change("s1", 0, -5)])
