"""The arithmetic of settling invoices, and the keys of calls to Stripe. Pure.

* What an invoice still wants: its gross, less what credit notes took off it, less what
  settled it (payments in − refunds out − balance transactions linked to it). Negative: the
  customer paid more than is owed.
* A payment settles at most what remains; the rest is excess for the credit balance.
* Credit from the balance is used oldest invoice first, each up to what it still wants.
* Stripe idempotency keys derive from our ids, so that a repeated call is the same call.
"""

from __future__ import annotations

from collections.abc import Iterable


def amount_remaining(
    *, gross: int, credited: int, paid_in: int, paid_out: int, moved_to_balance: int
) -> int:
    return gross - credited - (paid_in - paid_out - moved_to_balance)


def excess_of(remaining_after: int, amount: int) -> int:
    """The part of a payment of ``amount`` beyond what the invoice wanted, given what remains
    after it was counted (negative when overpaid)."""
    if remaining_after >= 0:
        return 0
    return min(-remaining_after, amount)


def allocate_credit(credit: int, remaining: Iterable[int]) -> list[int]:
    """How much of ``credit`` each invoice (oldest first, by what it still wants) takes."""
    taken = []
    for wants in remaining:
        take = max(0, min(credit, wants))
        taken.append(take)
        credit -= take
    return taken


def attempt_key(invoice_id: str, attempt: int) -> str:
    return f"{invoice_id}-attempt-{attempt}"


def refund_key(credit_note_id: str) -> str:
    return f"{credit_note_id}-refund"
