"""The settling arithmetic of payments (billing.payments.rules): no app, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.payments import rules


@pytest.mark.parametrize(
    ("gross", "credited", "paid_in", "paid_out", "moved", "remaining"),
    [
        (11900, 0, 0, 0, 0, 11900),  # nothing paid
        (11900, 0, 5000, 0, 0, 6900),  # partial
        (11900, 0, 11900, 0, 0, 0),  # in full
        (11900, 0, 13000, 0, 0, -1100),  # overpaid, excess not moved yet
        (11900, 0, 13000, 0, 1100, 0),  # the excess moved to the balance
        (11900, 0, 0, 0, -11900, 0),  # paid from the credit balance
        (11900, 11900, 11900, 11900, 0, 0),  # credited in full and refunded
        (11900, 5000, 11900, 5000, 0, 0),  # a partial credit note, refunded
        (11900, 5000, 0, 0, 0, 6900),  # credited before anything was paid
        (11900, 11900, 11900, 0, 0, -11900),  # credited after a bank payment: owed back
    ],
)
def test_remaining_is_gross_less_credits_less_what_settled_when_computed(
    gross: int, credited: int, paid_in: int, paid_out: int, moved: int, remaining: int
) -> None:
    assert (
        rules.amount_remaining(
            gross=gross,
            credited=credited,
            paid_in=paid_in,
            paid_out=paid_out,
            moved_to_balance=moved,
        )
        == remaining
    )


@pytest.mark.parametrize(
    ("remaining_after", "amount", "excess"),
    [(100, 50, 0), (0, 50, 0), (-20, 50, 20), (-50, 50, 50), (-80, 50, 50)],
    ids=["partial", "exact", "over", "all-excess", "already-over"],
)
def test_excess_is_what_the_invoice_did_not_want_when_paid(
    remaining_after: int, amount: int, excess: int
) -> None:
    assert rules.excess_of(remaining_after, amount) == excess


@pytest.mark.parametrize(
    ("credit", "wants", "takes"),
    [
        (0, [100, 200], [0, 0]),
        (150, [100, 200], [100, 50]),
        (500, [100, 200], [100, 200]),
        (150, [0, -10, 200], [0, 0, 150]),
    ],
)
def test_credit_goes_to_the_oldest_invoice_first_when_allocated(
    credit: int, wants: list[int], takes: list[int]
) -> None:
    assert rules.allocate_credit(credit, wants) == takes


@given(st.integers(min_value=0, max_value=10**9), st.lists(st.integers(-(10**6), 10**9)))
def test_allocation_never_exceeds_the_credit_or_what_an_invoice_wants_when_allocated(
    credit: int, wants: list[int]
) -> None:
    takes = rules.allocate_credit(credit, wants)
    assert sum(takes) <= credit
    assert all(0 <= t <= max(w, 0) for t, w in zip(takes, wants, strict=True))
    assert sum(takes) == min(credit, sum(max(w, 0) for w in wants))


def test_stripe_keys_derive_from_our_ids_when_built() -> None:
    assert rules.attempt_key("in_1", 2) == "in_1-attempt-2"
    assert rules.refund_key("cn_1") == "cn_1-refund"
