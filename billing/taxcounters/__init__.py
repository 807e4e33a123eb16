"""Tax counters per tenant, mode and year, derived from the ledger (§ 19, § 19a UStG,
Art. 59c VAT Directive), and the threshold warnings.

Public interface (finalization and the billing run call these):

* :func:`counters_for` — ``tax.model.Counters`` before a supply on ``on``;
* :func:`record_invoice` / :func:`record_credit_note` — book a finalized document;
* :func:`after_ledger_change` — check the thresholds of a year and emit the warnings that
  are due (once per tenant, mode, year, threshold, kind). A session hook runs it before
  commit for every year that got a ledger entry or a succeeded payment, so callers rarely
  need it directly (a set-based writer that bypasses the ORM does).
"""

from __future__ import annotations

from billing.taxcounters.services import (
    after_ledger_change,
    counters_for,
    record_credit_note,
    record_invoice,
)

__all__ = ["after_ledger_change", "counters_for", "record_credit_note", "record_invoice"]
