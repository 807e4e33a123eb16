"""Retention periods per document class (§ 147 AO, § 14b UStG, Art. 369k VAT Directive)."""

from __future__ import annotations

from datetime import date

import pytest

from compliance.retention import (
    STATUTORY_YEARS,
    DocumentClass,
    check_years,
    may_be_redacted,
    retention_ends_on,
)


@pytest.mark.parametrize(
    ("issued_on", "document_class", "expected"),
    [
        (date(2026, 3, 15), DocumentClass.INVOICE, date(2034, 12, 31)),
        (date(2026, 12, 31), DocumentClass.INVOICE, date(2034, 12, 31)),
        (date(2026, 1, 1), DocumentClass.CREDIT_NOTE, date(2034, 12, 31)),
        (date(2026, 6, 30), DocumentClass.OSS_RECORD, date(2036, 12, 31)),
    ],
)
def test_retention_runs_from_the_end_of_the_issue_year_when_computed(
    issued_on: date, document_class: DocumentClass, expected: date
) -> None:
    assert retention_ends_on(issued_on, STATUTORY_YEARS[document_class]) == expected


def test_document_may_be_redacted_only_after_its_last_day_when_not_held() -> None:
    last = date(2034, 12, 31)
    assert not may_be_redacted(last, last, legal_hold=False)
    assert may_be_redacted(last, date(2035, 1, 1), legal_hold=False)
    assert not may_be_redacted(last, date(2040, 1, 1), legal_hold=True)


@pytest.mark.parametrize(
    ("document_class", "years", "ok"),
    [
        (DocumentClass.INVOICE, 8, True),
        (DocumentClass.INVOICE, 10, True),
        (DocumentClass.INVOICE, 7, False),
        (DocumentClass.OSS_RECORD, 9, False),
        (DocumentClass.OSS_RECORD, 31, False),
    ],
)
def test_configured_years_are_refused_when_below_statute_or_absurd(
    document_class: DocumentClass, years: int, ok: bool
) -> None:
    if ok:
        check_years(document_class, years)
    else:
        with pytest.raises(ValueError, match="years"):
            check_years(document_class, years)
