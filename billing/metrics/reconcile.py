"""Reconciliations of the MRR ledger, one line per difference, each with a named cause. Pure.

**Ledger vs. state** (`reconcile_ledger_to_state`): at every month end (local midnight of the
next month's first day, tenant's zone) and per customer and currency, the ledger's running
sum of movements must equal the MRR recomputed from the subscriptions' state at that instant
(each subscription's terms after its last history row before the instant, priced again with
`saas.subscriptions.mrr.monthly_amount`), and the customer's latest ledger MRR must equal
what their subscription rows say today. A difference is explained by:

- `ledger_behind`: the customer has history rows the ledger has not consumed yet (the
  incremental builder runs after each commit; the next run removes the difference);
- `history_mrr_mismatch`: a history row's stored `mrr_after` differs from its terms priced
  again (the ledger follows the stored values);
- `history_chain_break`: a history row's `mrr_before` is not the previous row's `mrr_after`;
- `state_not_in_history`: a subscription row's current terms differ from its last history row;
- `unexplained`: none of these; rebuild the ledger (`abowerk metrics rebuild`) and report it.

**MRR vs. invoices** (`reconcile_mrr_to_invoices`): per customer, currency and month, what
the MRR implies is invoiced for recurring service (every subscription period starting in the
month: MRR × the months of its interval, so a yearly plan expects 12 × MRR in its renewal
month and nothing in the other eleven) against the net recurring amounts actually invoiced,
excluding VAT and one-off charges. Causes:

- `proration`: the invoice's proration lines (mid-period changes) are not MRR;
- `partial_period`: recurring lines for part of a period (service starting mid-period after
  an activation or a resume) are charged by days, not as a whole period;
- `mrr_rounding`: MRR is rounded to the minor unit per month, so a period of k months may
  differ by up to k/2 minor units (a yearly 490.00 is 40.83 a month, 489.96 a year);
- `credit_note`: a credit note (other than the one a proration credit makes) gave part of a
  recurring charge back;
- `uncollectible`: the recurring charge is on an invoice that was voided or written off as
  uncollectible, so it is not revenue;
- `missing_invoice`: MRR expects an invoice the month has none of (the period's charge is not
  invoiced yet: the next billing run invoices it);
- `invoiced_without_mrr`: recurring amounts invoiced while the MRR expects none;
- `unexplained`: the rest.

Trials and pauses need no cause: their MRR is 0 and nothing recurring is invoiced. An annual
prepayment is expected whole in its renewal month (12 × MRR), so it differs only by
`mrr_rounding`. The invoice side is read by `billing.metrics.invoiced`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from billing.metrics.months import Month


class Check(StrEnum):
    LEDGER_VS_STATE = "ledger_vs_state"
    MRR_VS_INVOICES = "mrr_vs_invoices"


class Cause(StrEnum):
    LEDGER_BEHIND = "ledger_behind"
    HISTORY_MRR_MISMATCH = "history_mrr_mismatch"
    HISTORY_CHAIN_BREAK = "history_chain_break"
    STATE_NOT_IN_HISTORY = "state_not_in_history"
    PRORATION = "proration"
    PARTIAL_PERIOD = "partial_period"
    MRR_ROUNDING = "mrr_rounding"
    CREDIT_NOTE = "credit_note"
    UNCOLLECTIBLE = "uncollectible"
    MISSING_INVOICE = "missing_invoice"
    INVOICED_WITHOUT_MRR = "invoiced_without_mrr"
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True, slots=True)
class Difference:
    """One line of a reconciliation: `actual` − `expected` = `difference` (minor units).
    `month` None is the check against today's subscription rows."""

    check: Check
    month: Month | None
    customer_id: str
    currency: str
    expected: int
    actual: int
    difference: int
    cause: Cause
    detail: str = ""

    @property
    def explained(self) -> bool:
        return self.cause is not Cause.UNEXPLAINED


Key = tuple[str, str]  # (customer_id, currency)


def reconcile_ledger_to_state(
    ledger: Mapping[tuple[Month, str, str], int],
    state: Mapping[tuple[Month, str, str], int],
    *,
    ledger_now: Mapping[Key, int] | None = None,
    state_now: Mapping[Key, int] | None = None,
    explanations: Mapping[Key, tuple[Cause, str]] | None = None,
) -> list[Difference]:
    """Compare month-end MRR per (month, customer, currency): `state` (recomputed) is what is
    expected, `ledger` (running sums) what is found; missing keys are 0. `ledger_now` and
    `state_now` compare the latest ledger MRR with today's subscription rows.
    `explanations` names the cause known for a customer's differences."""
    known = explanations or {}
    differences: list[Difference] = []

    def line(month: Month | None, key: Key, expected: int, actual: int) -> None:
        cause, detail = known.get(key, (Cause.UNEXPLAINED, ""))
        differences.append(
            Difference(
                Check.LEDGER_VS_STATE,
                month,
                key[0],
                key[1],
                expected,
                actual,
                actual - expected,
                cause,
                detail,
            )
        )

    for month, customer_id, currency in sorted(set(ledger) | set(state)):
        expected = state.get((month, customer_id, currency), 0)
        actual = ledger.get((month, customer_id, currency), 0)
        if expected != actual:
            line(month, (customer_id, currency), expected, actual)
    if ledger_now is not None and state_now is not None:
        for key in sorted(set(ledger_now) | set(state_now)):
            expected = state_now.get(key, 0)
            actual = ledger_now.get(key, 0)
            if expected != actual:
                line(None, key, expected, actual)
    return differences


@dataclass(frozen=True, slots=True)
class ExpectedBilling:
    """What the MRR implies a customer is invoiced in a month for recurring service: Σ over
    the subscription periods starting in the month of MRR × months of the interval."""

    customer_id: str
    currency: str
    month: Month
    amount: int
    period_months: int  # Σ months of those periods (bounds the MRR rounding)
    # the part of `amount` (and of `period_months`) whose periods are not invoiced yet:
    # their charges are pending for the next billing run, or nobody charged them
    not_invoiced: int = 0
    not_invoiced_months: int = 0


@dataclass(frozen=True, slots=True)
class InvoicedRecurring:
    """Net recurring amounts on a customer's finalized invoices of a month (excluding VAT and
    one-off charges): whole periods on invoices that stand (open or paid), part periods,
    proration lines (credits negative), credit notes (negative) and whole periods on invoices
    voided or written off (`written_off`, positive)."""

    customer_id: str
    currency: str
    month: Month
    recurring: int
    partial: int = 0
    proration: int = 0
    credited: int = 0
    written_off: int = 0


def reconcile_mrr_to_invoices(
    expected: Iterable[ExpectedBilling], invoiced: Iterable[InvoicedRecurring]
) -> list[Difference]:
    """One line per difference and cause, per (month, customer, currency)."""
    want: dict[tuple[Month, str, str], list[ExpectedBilling]] = defaultdict(list)
    got: dict[tuple[Month, str, str], list[InvoicedRecurring]] = defaultdict(list)
    for e in expected:
        want[(e.month, e.customer_id, e.currency)].append(e)
    for i in invoiced:
        got[(i.month, i.customer_id, i.currency)].append(i)
    differences: list[Difference] = []
    for key in sorted(set(want) | set(got)):
        month, customer_id, currency = key
        exp = sum(e.amount for e in want.get(key, []))
        months = sum(e.period_months for e in want.get(key, []))
        missing = sum(e.not_invoiced for e in want.get(key, []))
        missing_months = sum(e.not_invoiced_months for e in want.get(key, []))
        rows = got.get(key, [])
        recurring = sum(i.recurring for i in rows)
        partial = sum(i.partial for i in rows)
        proration = sum(i.proration for i in rows)
        credited = sum(i.credited for i in rows)
        written_off = sum(i.written_off for i in rows)

        def line(cause: Cause, expected_: int, actual: int, detail: str = "") -> None:
            differences.append(
                Difference(
                    Check.MRR_VS_INVOICES,
                    month,  # noqa: B023  (used at once, inside this iteration)
                    customer_id,  # noqa: B023
                    currency,  # noqa: B023
                    expected_,
                    actual,
                    actual - expected_,
                    cause,
                    detail,
                )
            )

        if not rows:
            if exp != 0:
                line(Cause.MISSING_INVOICE, exp, 0, f"{months} month(s) of MRR not invoiced")
            continue
        if missing:
            # the customer has other invoices this month: set the pending periods apart,
            # so that what was invoiced is compared with what its own periods expect
            line(Cause.MISSING_INVOICE, missing, 0, f"{missing_months} month(s) not invoiced")
            exp -= missing
            months -= missing_months
        for cause, amount in (
            (Cause.PRORATION, proration),
            (Cause.PARTIAL_PERIOD, partial),
            (Cause.CREDIT_NOTE, credited),
        ):
            if amount:
                line(cause, 0, amount)
        if written_off:
            line(Cause.UNCOLLECTIBLE, written_off, 0, "invoice voided or uncollectible")
        billed = recurring + written_off
        rest = _whole_periods(exp, months, billed)
        if rest is not None:
            line(rest[0], rest[1], billed, rest[2])
    return differences


def _whole_periods(exp: int, months: int, billed: int) -> tuple[Cause, int, str] | None:
    """What is left when the whole periods billed differ from what the MRR expects: the
    cause, the expected amount and a detail (None: no difference)."""
    rest = billed - exp
    if rest == 0:
        return None
    if exp == 0 and months == 0:
        return Cause.INVOICED_WITHOUT_MRR, 0, ""
    if 2 * abs(rest) <= months:
        return Cause.MRR_ROUNDING, exp, f"at most ½ minor unit × {months} month(s)"
    return Cause.UNEXPLAINED, exp, ""


@dataclass(frozen=True, slots=True)
class Reconciliation:
    first: Month
    last: Month
    month_ends: int
    customers: int
    differences: list[Difference]

    @property
    def unexplained(self) -> int:
        return sum(1 for d in self.differences if not d.explained)
