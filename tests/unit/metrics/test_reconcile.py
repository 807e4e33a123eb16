"""Reconciliations with hand-made data: ledger vs. state, and MRR vs. invoices (the interface
the invoice issue will feed with finalized invoices)."""

from __future__ import annotations

from billing.metrics.months import Month
from billing.metrics.reconcile import (
    Cause,
    Check,
    ExpectedBilling,
    InvoicedRecurring,
    reconcile_ledger_to_state,
    reconcile_mrr_to_invoices,
)

JAN, FEB, MAR = Month(2025, 1), Month(2025, 2), Month(2025, 3)


def test_ledger_and_state_agree_gives_no_line_when_equal() -> None:
    ledger = {(JAN, "c1", "EUR"): 1900, (FEB, "c1", "EUR"): 4900}
    assert reconcile_ledger_to_state(ledger, dict(ledger)) == []
    assert reconcile_ledger_to_state({}, {}, ledger_now={}, state_now={}) == []


def test_each_difference_is_one_line_with_its_cause_when_ledger_differs() -> None:
    ledger = {(JAN, "c1", "EUR"): 1900, (FEB, "c1", "EUR"): 1900, (FEB, "c2", "USD"): 500}
    state = {(JAN, "c1", "EUR"): 1900, (FEB, "c1", "EUR"): 4900}
    lines = reconcile_ledger_to_state(
        ledger,
        state,
        ledger_now={("c1", "EUR"): 1900},
        state_now={("c1", "EUR"): 4900},
        explanations={("c1", "EUR"): (Cause.LEDGER_BEHIND, "1 history row(s)")},
    )
    assert [(str(d.month) if d.month else None, d.customer_id, d.expected, d.actual,
             d.difference, d.cause, d.explained) for d in lines] == [
        ("2025-02", "c1", 4900, 1900, -3000, Cause.LEDGER_BEHIND, True),
        ("2025-02", "c2", 0, 500, 500, Cause.UNEXPLAINED, False),
        (None, "c1", 4900, 1900, -3000, Cause.LEDGER_BEHIND, True),
    ]  # fmt: skip
    assert {d.check for d in lines} == {Check.LEDGER_VS_STATE}


def _expect(month: Month, amount: int, months: int = 1, customer: str = "c1") -> ExpectedBilling:
    return ExpectedBilling(customer, "EUR", month, amount, months)


def test_monthly_plan_invoiced_as_mrr_reconciles_when_amounts_match() -> None:
    expected = [_expect(JAN, 4900), _expect(FEB, 4900)]
    invoiced = [
        InvoicedRecurring("c1", "EUR", JAN, 4900),
        InvoicedRecurring("c1", "EUR", FEB, 4900),
    ]
    assert reconcile_mrr_to_invoices(expected, invoiced) == []


def test_annual_plan_is_mrr_rounding_when_year_differs_by_cents() -> None:
    # 490.00 a year is 40.83 MRR (4083): twelve months of MRR are 489.96, the invoice 490.00
    (line,) = reconcile_mrr_to_invoices(
        [_expect(JAN, 4083 * 12, months=12)], [InvoicedRecurring("c1", "EUR", JAN, 49000)]
    )
    assert (line.cause, line.difference, line.explained) == (Cause.MRR_ROUNDING, 4, True)
    assert line.check is Check.MRR_VS_INVOICES


def test_rounding_beyond_half_a_cent_per_month_is_unexplained_when_too_large() -> None:
    (line,) = reconcile_mrr_to_invoices(
        [_expect(JAN, 4083 * 12, months=12)], [InvoicedRecurring("c1", "EUR", JAN, 49007)]
    )
    assert (line.cause, line.difference) == (Cause.UNEXPLAINED, 11)


def test_proration_and_partial_periods_are_named_when_invoice_has_them() -> None:
    # upgrade Starter → Pro on 11 Jan: −12.87 and +33.19 proration; resume mid-period: 21/31
    lines = reconcile_mrr_to_invoices(
        [_expect(FEB, 4900)],
        [InvoicedRecurring("c1", "EUR", FEB, recurring=4900, partial=3319, proration=2032)],
    )
    assert [(d.cause, d.difference) for d in lines] == [
        (Cause.PRORATION, 2032),
        (Cause.PARTIAL_PERIOD, 3319),
    ]
    assert all(d.explained for d in lines)


def test_missing_invoice_and_invoice_without_mrr_are_named_when_one_side_is_absent() -> None:
    lines = reconcile_mrr_to_invoices(
        [_expect(JAN, 1900), _expect(MAR, 0, months=0, customer="c3")],
        [InvoicedRecurring("c2", "EUR", FEB, 990), InvoicedRecurring("c3", "EUR", MAR, 0)],
    )
    assert [(str(d.month), d.customer_id, d.cause, d.difference) for d in lines] == [
        ("2025-01", "c1", Cause.MISSING_INVOICE, -1900),
        ("2025-02", "c2", Cause.INVOICED_WITHOUT_MRR, 990),
    ]


def test_paused_month_expects_nothing_when_mrr_is_zero() -> None:
    assert reconcile_mrr_to_invoices([], []) == []
    assert (
        reconcile_mrr_to_invoices([], [InvoicedRecurring("c1", "EUR", MAR, 0, proration=0)]) == []
    )


def test_credit_note_and_written_off_invoice_are_named_when_recurring_matches_mrr() -> None:
    lines = reconcile_mrr_to_invoices(
        [_expect(JAN, 4900), _expect(FEB, 4900)],
        [
            InvoicedRecurring("c1", "EUR", JAN, recurring=4900, credited=-1000),
            InvoicedRecurring("c1", "EUR", FEB, recurring=0, written_off=4900),
        ],
    )
    assert [(str(d.month), d.cause, d.difference, d.explained) for d in lines] == [
        ("2025-01", Cause.CREDIT_NOTE, -1000, True),
        ("2025-02", Cause.UNCOLLECTIBLE, -4900, True),
    ]


def test_proration_in_a_month_without_a_period_start_is_proration_not_unexplained() -> None:
    # an upgrade on 11 Feb of a subscription renewing on the 1st: the month has no period start
    (line,) = reconcile_mrr_to_invoices(
        [], [InvoicedRecurring("c1", "EUR", FEB, 0, proration=2032)]
    )
    assert (line.cause, line.difference, line.explained) == (Cause.PRORATION, 2032, True)


def test_recurring_beyond_mrr_is_unexplained_when_periods_expect_some() -> None:
    (line,) = reconcile_mrr_to_invoices(
        [_expect(JAN, 4900)], [InvoicedRecurring("c1", "EUR", JAN, recurring=9800)]
    )
    assert (line.cause, line.difference, line.explained) == (Cause.UNEXPLAINED, 4900, False)


def test_pending_period_is_missing_invoice_when_the_customer_has_other_invoices() -> None:
    # two subscriptions start in January: one invoiced (49.00), one still pending (19.00)
    expected = [
        ExpectedBilling("c1", "EUR", JAN, 4900, 1),
        ExpectedBilling("c1", "EUR", JAN, 1900, 1, not_invoiced=1900, not_invoiced_months=1),
    ]
    lines = reconcile_mrr_to_invoices(expected, [InvoicedRecurring("c1", "EUR", JAN, 4900)])
    assert [(d.cause, d.difference, d.explained) for d in lines] == [
        (Cause.MISSING_INVOICE, -1900, True)
    ]
