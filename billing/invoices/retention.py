"""How long an issued invoice must be kept (pure).

* Invoices and credit notes are Buchungsbelege: **8 years** (§ 147 Abs. 1 Nr. 4, Abs. 3 AO,
  § 14b Abs. 1 S. 1 UStG as amended by BEG IV, from 2025-01-01 for every document whose old
  10-year period had not yet run out; TAX_RULES.md §5.5).
* Records of OSS supplies: **10 years** (Art. 369k VAT Directive), which overrides the 8
  years for an invoice with an OSS line and for its credit notes.
* The period starts at the end of the calendar year of the document (§ 147 Abs. 4 AO), so
  an invoice issued on 2026-03-10 is kept until 2034-12-31 (OSS: 2036-12-31).

Not computed here: the period does not end while the tax assessment it matters for is still
open (§ 147 Abs. 3 S. 5 AO). Whoever deletes after ``retention_ends_on`` (the GDPR issue)
must check that as well.
"""

from __future__ import annotations

from datetime import date

RETENTION_YEARS = 8
OSS_RETENTION_YEARS = 10


def retention_ends_on(issued_on: date, *, oss: bool = False) -> date:
    """The last day an invoice issued on ``issued_on`` must be kept."""
    years = OSS_RETENTION_YEARS if oss else RETENTION_YEARS
    return date(issued_on.year + years, 12, 31)
