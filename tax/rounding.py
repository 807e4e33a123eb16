"""Money helpers: rounding per currency, VAT per rate on summed net, gross-first extraction.

Rules (TAX_RULES.md §5.6):

* ``Decimal`` only, never binary floats; rounding ``ROUND_HALF_UP`` (ties away from zero,
  so a credit note mirrors its invoice: -0.025 → -0.03) to the currency's minor unit
  (ISO 4217 exponent: EUR 2, JPY 0, KWD 3, ...). German law prescribes no algorithm;
  commercial rounding is customary.
* **Net-first** (EN 16931, BR-CO-17): per VAT category and rate, VAT = round(sum of line
  nets × rate / 100). Line VAT amounts are never summed.
* **Gross-first** for price-inclusive consumer prices (PAngV): per rate,
  VAT = round(gross × rate / (100 + rate)) and net = gross − VAT, which keeps the
  advertised price (9.99 at 19 % → VAT 1.60, net 8.39) but can differ by one cent from
  net-first. Pick one per document type.
* Every result satisfies net + VAT = gross exactly (:class:`TaxedAmount`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from tax.errors import InvalidCurrencyError

_HUNDRED = Decimal(100)

# ISO 4217 minor-unit exponents that differ from 2 (all other currencies use 2).
_EXPONENTS: MappingProxyType[str, int] = MappingProxyType(
    {
        "BIF": 0,
        "CLP": 0,
        "DJF": 0,
        "GNF": 0,
        "ISK": 0,
        "JPY": 0,
        "KMF": 0,
        "KRW": 0,
        "PYG": 0,
        "RWF": 0,
        "UGX": 0,
        "UYI": 0,
        "VND": 0,
        "VUV": 0,
        "XAF": 0,
        "XOF": 0,
        "XPF": 0,
        "BHD": 3,
        "IQD": 3,
        "JOD": 3,
        "KWD": 3,
        "LYD": 3,
        "OMR": 3,
        "TND": 3,
    }
)

# Quantum per currency, filled on first use so the hot path is one dict lookup.
_QUANTA: dict[str, Decimal] = {}


def exponent(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of ``currency``."""
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise InvalidCurrencyError(f"not an ISO 4217 currency code: {currency!r}")
    if not currency.isupper():
        raise InvalidCurrencyError(f"currency codes are upper case: {currency!r}")
    return _EXPONENTS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    """The smallest unit of ``currency`` as a Decimal (``Decimal("0.01")`` for EUR)."""
    q = _QUANTA.get(currency)
    if q is None:
        q = Decimal(1).scaleb(-exponent(currency))
        _QUANTA[currency] = q
    return q


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the minor unit of ``currency``."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def vat_on(net: Decimal, rate: Decimal, currency: str) -> Decimal:
    """VAT on ``net`` at ``rate`` percent, rounded half-up (net-first)."""
    return round_money(net * rate / _HUNDRED, currency)


@dataclass(frozen=True, slots=True)
class TaxedAmount:
    """Net, VAT and gross of one amount; checks net + VAT = gross."""

    net: Decimal
    vat: Decimal
    gross: Decimal

    def __post_init__(self) -> None:
        if self.net + self.vat != self.gross:
            raise ValueError(f"net {self.net} + VAT {self.vat} != gross {self.gross}")


def from_net(net: Decimal, rate: Decimal, currency: str) -> TaxedAmount:
    """Net-first: VAT computed on ``net``, gross = net + VAT."""
    vat = vat_on(net, rate, currency)
    return TaxedAmount(net, vat, net + vat)


def from_gross(gross: Decimal, rate: Decimal, currency: str) -> TaxedAmount:
    """Gross-first extraction: VAT = round(gross × rate / (100 + rate)), net = gross − VAT."""
    vat = round_money(gross * rate / (_HUNDRED + rate), currency)
    return TaxedAmount(gross - vat, vat, gross)


@dataclass(frozen=True, slots=True)
class TaxableLine:
    """One document line: its VAT category code, rate (percent) and amount.

    ``amount`` is net, or gross when the document's prices include VAT.
    """

    category: str
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class VatBreakdown:
    """The VAT of one category and rate on a document (EN 16931 BG-23)."""

    category: str
    rate: Decimal
    taxable_amount: Decimal
    vat: Decimal
    gross: Decimal


def vat_breakdown(
    lines: Iterable[TaxableLine], currency: str, *, prices_include_vat: bool = False
) -> tuple[VatBreakdown, ...]:
    """VAT per (category, rate) of a document, computed on the summed line amounts.

    Net-first by default (BR-CO-17); with ``prices_include_vat`` the summed gross amounts
    are split gross-first. Lines must already be rounded to the currency's minor unit
    (BR-DEC-23). Groups come out sorted by category and rate.
    """
    sums: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.category, line.rate)
        sums[key] = sums.get(key, Decimal(0)) + line.amount
    split = from_gross if prices_include_vat else from_net
    out = []
    for (category, rate), amount in sorted(sums.items()):
        taxed = split(amount, rate, currency)
        out.append(VatBreakdown(category, rate, taxed.net, taxed.vat, taxed.gross))
    return tuple(out)
