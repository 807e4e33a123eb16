"""Amounts of the metrics: integer minor units at rest, `Decimal` strings at the edges. Pure.

Exponents come from ISO 4217 (`saas.catalog.currencies`); a currency outside the platform's
list (only possible in the analysts' event file) is taken to have 2 places.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from saas.catalog.currencies import EXPONENTS

DEFAULT_EXPONENT = 2


def exponent(currency: str | None) -> int:
    if currency is None:
        return DEFAULT_EXPONENT
    return EXPONENTS.get(currency, DEFAULT_EXPONENT)


def to_decimal(amount: int, currency: str | None) -> Decimal:
    """Minor units as a Decimal amount with the currency's places (1900 EUR → 19.00)."""
    places = exponent(currency)
    return (Decimal(amount).scaleb(-places)).quantize(Decimal(1).scaleb(-places))


def decimal_string(amount: int, currency: str | None) -> str:
    return str(to_decimal(amount, currency))


def parse_amount(value: object, currency: str) -> int:
    """A decimal amount (string or JSON number parsed as Decimal) in minor units. More places
    than the currency has, a negative amount or anything not a number is a `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a decimal amount such as "49.00"')
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a decimal amount")
    if amount < 0:
        raise ValueError("MRR cannot be negative")
    minor = amount.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{value!r} has more than {exponent(currency)} decimal places")
    return int(minor)


def round_minor(amount: Decimal) -> int:
    """An amount already in minor units, rounded once, ROUND_HALF_UP."""
    return int(amount.quantize(Decimal(1), ROUND_HALF_UP))
