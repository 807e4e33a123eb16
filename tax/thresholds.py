"""EU thresholds in EUR, by date (``tax/data/thresholds.csv``).

* ``eu_b2c_services``: 10,000 EUR per calendar year of cross-border B2C electronic
  services and distance sales to other member states, net (Art. 59c VAT Directive since
  2021-07-01, § 3a Abs. 5 S. 3 UStG; from 2019-01-01 to 2021-06-30 the same amount under
  Art. 58(2) for telecom/broadcasting/electronic services only). Before 2019 no threshold:
  every EU B2C electronic service was taxed at destination (MOSS).
* ``evidence_single_item``: 100,000 EUR, below which one item of location evidence from a
  third party suffices (Art. 24b Reg. 282/2011 as amended by Reg. (EU) 2017/2459).
* ``eu_sme_union_turnover``: 100,000 EUR Union annual turnover cap of the EU SME scheme
  (Art. 284(2) VAT Directive as replaced by Directive (EU) 2020/285; § 19a UStG), from 2025.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from tax._tables import parse_date, parse_optional_date, read_table


class ThresholdName(StrEnum):
    """Names of the dated thresholds."""

    EU_B2C_SERVICES = "eu_b2c_services"
    EVIDENCE_SINGLE_ITEM = "evidence_single_item"
    EU_SME_UNION_TURNOVER = "eu_sme_union_turnover"


@dataclass(frozen=True, slots=True)
class Threshold:
    """One threshold amount (EUR) and the dates it applied."""

    name: ThresholdName
    valid_from: date
    valid_to: date | None
    amount: Decimal
    source: str


def _load() -> MappingProxyType[ThresholdName, tuple[Threshold, ...]]:
    rows: dict[ThresholdName, list[Threshold]] = {name: [] for name in ThresholdName}
    for row in read_table("thresholds.csv"):
        item = Threshold(
            name=ThresholdName(row["name"]),
            valid_from=parse_date(row["valid_from"]),
            valid_to=parse_optional_date(row["valid_to"]),
            amount=Decimal(row["amount"]),
            source=row["source"],
        )
        rows[item.name].append(item)
    return MappingProxyType(
        {name: tuple(sorted(items, key=lambda t: t.valid_from)) for name, items in rows.items()}
    )


_INDEX = _load()


def threshold(name: ThresholdName, on: date) -> Decimal | None:
    """The amount of threshold ``name`` on ``on``, or None when no such rule was in force."""
    for item in _INDEX[name]:
        if item.valid_from <= on and (item.valid_to is None or on <= item.valid_to):
            return item.amount
    return None


def thresholds(name: ThresholdName) -> tuple[Threshold, ...]:
    """All recorded periods of threshold ``name``, oldest first."""
    return _INDEX[name]
