"""Standard VAT rates of the 27 EU member states, by date.

Rule: the rate of the tax point (date of supply) applies; rates are data with
``valid_from``/``valid_to`` (inclusive) in ``tax/data/standard_rates.csv``, never code
constants. The table starts on 2016-01-01 and records every change since (TAX_RULES.md §4.2,
from duty27-eu-vat 0.1.0 and the EC's TEDB): DE 16 % 2020-07-01..2020-12-31,
IE 21 % 2020-09-01..2021-02-28, LU 16 % in 2023, EL 24 % from 2016-06-01, RO 19 % from
2017-01-01 and 21 % from 2025-08-01, EE 22 % from 2024-01-01 and 24 % from 2025-07-01,
FI 25.5 % from 2024-09-01, SK 23 % from 2025-01-01. A test cross-checks today's rates
against the maintained ``eu-vat-rates-data`` package so a stale table is noticed.

Electronically supplied services are standard-rated in every member state (reduced rates
for e-publications only, Art. 98(2) VAT Directive), so only standard rates are kept.

Performance: the table is indexed per country once at import, newest period first, with
``rate / 100`` precomputed; a lookup walks at most four periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType

from tax._tables import parse_date, parse_optional_date, read_table
from tax.errors import RateNotFoundError

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class RatePeriod:
    """One standard rate (percent) of one member state and the dates it applied."""

    country: str
    valid_from: date
    valid_to: date | None
    rate: Decimal
    fraction: Decimal
    source: str

    def covers(self, on: date) -> bool:
        """Whether the rate applied on ``on``."""
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


def _load() -> MappingProxyType[str, tuple[RatePeriod, ...]]:
    periods: dict[str, list[RatePeriod]] = {}
    for row in read_table("standard_rates.csv"):
        rate = Decimal(row["rate"])
        period = RatePeriod(
            country=row["country"],
            valid_from=parse_date(row["valid_from"]),
            valid_to=parse_optional_date(row["valid_to"]),
            rate=rate,
            fraction=rate / _HUNDRED,
            source=row["source"],
        )
        periods.setdefault(period.country, []).append(period)
    return MappingProxyType(
        {
            country: tuple(sorted(rows, key=lambda p: p.valid_from, reverse=True))
            for country, rows in periods.items()
        }
    )


_INDEX = _load()


def rate_period(country: str, on: date) -> RatePeriod:
    """The standard-rate period of member state ``country`` (ISO code, Greece ``GR``)
    covering ``on``. Raises :class:`RateNotFoundError` outside the table."""
    periods = _INDEX.get(country)
    if periods is not None:
        for period in periods:
            if period.valid_from <= on:
                # Periods are contiguous (tested), so the newest one that started is it,
                # unless it has ended without successor.
                if period.valid_to is None or on <= period.valid_to:
                    return period
                break
    raise RateNotFoundError(f"no standard VAT rate recorded for {country} on {on.isoformat()}")


def standard_rate(country: str, on: date) -> Decimal:
    """The standard VAT rate (percent) of ``country`` on ``on``."""
    return rate_period(country, on).rate


def rate_periods(country: str | None = None) -> tuple[RatePeriod, ...]:
    """All recorded periods (of one country), oldest first."""
    countries = sorted(_INDEX) if country is None else [country]
    return tuple(p for c in countries for p in reversed(_INDEX.get(c, ())))


def countries() -> frozenset[str]:
    """The member states the table covers."""
    return frozenset(_INDEX)
