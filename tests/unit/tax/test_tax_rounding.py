"""Money rounding (TAX_RULES.md §5.6, vectors R1-R11)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tax.errors import InvalidCurrencyError
from tax.rounding import (
    TaxableLine,
    TaxedAmount,
    exponent,
    from_gross,
    from_net,
    quantum,
    round_money,
    vat_breakdown,
    vat_on,
)

D = Decimal


@pytest.mark.parametrize(
    ("net", "rate", "currency", "vat"),
    [
        ("0.05", "19", "EUR", "0.01"),  # R1
        ("10.50", "25.5", "EUR", "2.68"),  # R3
        ("-0.10", "25", "EUR", "-0.03"),  # R8: credit note mirrors the invoice
        ("0.10", "25", "EUR", "0.03"),
        ("8.39", "19", "EUR", "1.59"),  # R5 net-first
        ("1000", "19", "JPY", "190"),
        ("10.005", "10", "KWD", "1.001"),
    ],
)
def test_vat_is_rounded_half_up_when_computed_net_first(
    net: str, rate: str, currency: str, vat: str
) -> None:
    assert str(vat_on(D(net), D(rate), currency)) == vat
    taxed = from_net(D(net), D(rate), currency)
    assert taxed.net + taxed.vat == taxed.gross


@pytest.mark.parametrize(
    ("gross", "rate", "net", "vat"),
    [
        ("9.99", "19", "8.39", "1.60"),  # R5: gross-first keeps the consumer price
        ("9.99", "20", "8.32", "1.67"),  # R6
        ("119.00", "19", "100.00", "19.00"),
        ("-9.99", "19", "-8.39", "-1.60"),
    ],
)
def test_vat_is_extracted_from_the_gross_price_when_prices_include_vat(
    gross: str, rate: str, net: str, vat: str
) -> None:
    taxed = from_gross(D(gross), D(rate), "EUR")
    assert (str(taxed.net), str(taxed.vat), str(taxed.gross)) == (net, vat, gross)


def test_decimal_avoids_the_float_pitfall_when_rounding_2_675() -> None:
    # R11: round(2.675, 2) == 2.67 with binary floats.
    assert round_money(D("2.675"), "EUR") == D("2.68")


@pytest.mark.parametrize(
    ("currency", "places"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("ISK", 0), ("KWD", 3)]
)
def test_exponent_follows_iso_4217_when_asked(currency: str, places: int) -> None:
    assert exponent(currency) == places
    assert quantum(currency) == D(1).scaleb(-places)


@pytest.mark.parametrize("currency", ["EU", "EURO", "eur", "E1R", "ÄÖÜ", ""])
def test_currency_is_rejected_when_not_an_iso_4217_code(currency: str) -> None:
    with pytest.raises(InvalidCurrencyError):
        exponent(currency)


def test_taxed_amount_refuses_inconsistent_values_when_built() -> None:
    with pytest.raises(ValueError, match="gross"):
        TaxedAmount(D("1.00"), D("0.19"), D("1.20"))


def test_breakdown_computes_vat_on_summed_nets_when_several_lines_share_a_rate() -> None:
    # BR-CO-17: three lines of 0.05 at 19 % → VAT on 0.15 = 0.0285 → 0.03, not 3 × 0.01.
    lines = [TaxableLine("S", D(19), D("0.05"))] * 3 + [
        TaxableLine("S", D(7), D("10.00")),
        TaxableLine("E", D(0), D("5.00")),
    ]
    breakdown = vat_breakdown(lines, "EUR")
    assert [(b.category, str(b.rate), str(b.taxable_amount), str(b.vat)) for b in breakdown] == [
        ("E", "0", "5.00", "0.00"),
        ("S", "7", "10.00", "0.70"),
        ("S", "19", "0.15", "0.03"),
    ]


def test_breakdown_extracts_vat_per_rate_when_prices_include_vat() -> None:
    lines = [TaxableLine("S", D(19), D("4.99")), TaxableLine("S", D(19), D("5.00"))]
    (only,) = vat_breakdown(lines, "EUR", prices_include_vat=True)
    assert (str(only.taxable_amount), str(only.vat), str(only.gross)) == ("8.39", "1.60", "9.99")
