"""Currencies a price may use, with their ISO 4217 minor-unit exponent, and the one rounding rule.

Money is stored as integer minor units (cents) and computed in `Decimal`; whenever a computed
amount becomes money again it is rounded `ROUND_HALF_UP` (ties away from zero, so a credit
mirrors its charge: -0.5 → -1) to the currency's exponent. Pure: no database, no Flask.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# The currencies a tenant may sell in (as `saas.tenants.services.CURRENCIES`), with their
# ISO 4217 exponent. ISK and JPY have no minor unit; HUF and CZK keep 2 per ISO 4217.
EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "DKK": 2,
    "NOK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "BGN": 2,
    "ISK": 0,
    "CAD": 2,
    "AUD": 2,
    "JPY": 0,
}

CURRENCIES = frozenset(EXPONENTS)


def is_currency(code: str) -> bool:
    return code in EXPONENTS


def to_minor(amount: Decimal) -> int:
    """Round an amount already expressed in minor units (e.g. 1287.0967 cents) to an integer,
    `ROUND_HALF_UP`. Every rounding of money in the catalog and subscriptions goes through
    here, so there is one rule to audit."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_minor(amount: int, currency: str) -> str:
    """A human-readable amount for descriptions (`19.00 EUR`); never parsed back."""
    exponent = EXPONENTS[currency]
    value = Decimal(amount).scaleb(-exponent)
    return f"{value:.{exponent}f} {currency}"
