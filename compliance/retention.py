"""How long documents that tax law requires must be kept, per document class. Pure.

An erased customer's finalized invoices, credit notes and OSS records are not deleted: the
erasure does not apply where processing is needed to comply with a legal obligation
(Art. 17(3)(b) GDPR). They are *restricted* instead (Art. 18): kept unchanged, hidden from
everything but the retention duty, and redacted once their retention period has ended.

Statutory periods (Germany; the period starts with the end of the calendar year in which the
document was issued, § 147 Abs. 4 AO):

- invoices and credit notes: 8 years (§ 147 Abs. 1 Nr. 4, Abs. 3 AO and § 14b Abs. 1 UStG as
  amended by the Bürokratieentlastungsgesetz IV, for documents whose period had not ended by
  1 January 2025);
- OSS records: 10 years from the end of the year of the transaction (Art. 369k(2) and
  Art. 369x(2) VAT Directive, Art. 63c Implementing Regulation 282/2011).

A tenant may configure longer periods (another member state's law, a tax audit that is
pending), never shorter ones, and may put a document on legal hold, which keeps it whatever
the dates say.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class DocumentClass(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    OSS_RECORD = "oss_record"


STATUTORY_YEARS: dict[DocumentClass, int] = {
    DocumentClass.INVOICE: 8,
    DocumentClass.CREDIT_NOTE: 8,
    DocumentClass.OSS_RECORD: 10,
}
MAX_YEARS = 30


def check_years(document_class: DocumentClass, years: int) -> None:
    """Raise ValueError (with a message for the tenant) unless `years` may be configured."""
    minimum = STATUTORY_YEARS[document_class]
    if years < minimum:
        raise ValueError(f"at least {minimum} years (statutory minimum for {document_class})")
    if years > MAX_YEARS:
        raise ValueError(f"at most {MAX_YEARS} years")


def retention_ends_on(issued_on: date, years: int) -> date:
    """The last day a document must be kept: 31 December of the issue year + `years`.

    An invoice of 15 March 2026 kept for 8 years: the period starts at the end of 2026 and
    ends at the end of 2034, so it may be redacted from 1 January 2035 on.
    """
    if years < 1:
        raise ValueError("a retention period is at least one year")
    return date(issued_on.year + years, 12, 31)


def may_be_redacted(retention_ends_on: date, today: date, *, legal_hold: bool) -> bool:
    """True from the day after the retention period ended, unless a legal hold keeps it."""
    return not legal_hold and today > retention_ends_on
