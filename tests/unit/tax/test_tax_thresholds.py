"""Dated EU thresholds (Art. 59c, Art. 24b simplification, EU SME Union cap)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tax.thresholds import ThresholdName, threshold, thresholds

N = ThresholdName


@pytest.mark.parametrize(
    ("name", "on", "amount"),
    [
        (N.EU_B2C_SERVICES, date(2018, 12, 31), None),
        (N.EU_B2C_SERVICES, date(2019, 1, 1), Decimal(10000)),
        (N.EU_B2C_SERVICES, date(2021, 6, 30), Decimal(10000)),
        (N.EU_B2C_SERVICES, date(2021, 7, 1), Decimal(10000)),
        (N.EVIDENCE_SINGLE_ITEM, date(2018, 12, 31), None),
        (N.EVIDENCE_SINGLE_ITEM, date(2019, 1, 1), Decimal(100000)),
        (N.EU_SME_UNION_TURNOVER, date(2024, 12, 31), None),
        (N.EU_SME_UNION_TURNOVER, date(2025, 1, 1), Decimal(100000)),
        (N.EU_SME_UNION_TURNOVER, date(2030, 1, 1), Decimal(100000)),
    ],
)
def test_threshold_applies_from_its_start_date_when_looked_up(
    name: ThresholdName, on: date, amount: Decimal | None
) -> None:
    assert threshold(name, on) == amount


@pytest.mark.parametrize("name", list(ThresholdName))
def test_every_threshold_has_dated_sourced_rows_when_loaded(name: ThresholdName) -> None:
    rows = thresholds(name)
    assert rows
    assert rows[-1].valid_to is None
    assert all(row.source and row.name is name for row in rows)
