"""Number, money and date formats of the printed documents (no locale involved)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.documents.wording import day, labels, money, number, percent, quantity

D = Decimal


@pytest.mark.parametrize(
    ("minor", "currency", "lang", "text"),
    [
        (123456, "EUR", "de", "1.234,56 €"),
        (123456, "EUR", "en", "€1,234.56"),
        (5, "EUR", "de", "0,05 €"),
        (0, "EUR", "en", "€0.00"),
        (100000000, "USD", "de", "1.000.000,00 USD"),
        (100000000, "USD", "en", "USD 1,000,000.00"),
        (1500, "JPY", "en", "JPY 1,500"),
        (1001, "KWD", "de", "1,001 KWD"),
    ],
)
def test_money_is_formatted_per_language_when_printed(
    minor: int, currency: str, lang: str, text: str
) -> None:
    assert money(minor, currency, lang) == text


@pytest.mark.parametrize(
    ("rate", "lang", "text"),
    [(D("19"), "de", "19 %"), (D("25.5"), "de", "25,5 %"), (D("19.00"), "en", "19%")],
)
def test_percent_keeps_significant_decimals_when_printed(
    rate: Decimal, lang: str, text: str
) -> None:
    assert percent(rate, lang) == text


def test_dates_and_quantities_are_formatted_per_language_when_printed() -> None:
    assert day(date(2026, 3, 1), "de") == "01.03.2026"
    assert day(date(2026, 3, 1), "en") == "1 Mar 2026"
    assert quantity(D("2.500"), "de") == "2,5"
    assert quantity(D("10"), "en") == "10"
    assert number(D("-1234.5"), "de") == "-1.234,50"


def test_both_languages_have_the_same_labels_when_compared() -> None:
    assert set(labels("de")) == set(labels("en"))
