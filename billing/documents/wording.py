"""Printed wording of invoice documents in German and English, and number and date formats.

Legal notes come from :mod:`tax.notes`; this module holds the labels around them. Titles
follow TAX_RULES.md §5.4: a commercial credit note is called "Rechnungskorrektur" in German,
never "Gutschrift", which in tax law means a self-billed invoice (§ 14 Abs. 2 S. 2 UStG).
Formatting is done here rather than with a locale so that output never depends on the
machine's locale settings (determinism).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from tax.rounding import exponent

_LABELS: MappingProxyType[str, MappingProxyType[str, str]] = MappingProxyType(
    {
        "de": MappingProxyType(
            {
                "title_invoice": "Rechnung",
                "title_credit_note": "Rechnungskorrektur",
                "title_small_amount": "Rechnung",
                "subtitle_small_amount": "Kleinbetragsrechnung (§ 33 UStDV)",
                "corrects": "Korrektur der Rechnung {number} vom {date}",
                "credit_note_text": "Der folgende Betrag wird Ihnen gutgeschrieben.",
                "number": "Rechnungsnummer",
                "credit_note_number": "Nummer",
                "issue_date": "Rechnungsdatum",
                "supply_date": "Leistungsdatum",
                "service_period": "Leistungszeitraum",
                "due_date": "Fällig am",
                "buyer_reference": "Ihre Referenz",
                "buyer_vat_id": "USt-IdNr. Kunde",
                "vat_id": "USt-IdNr.",
                "tax_number": "Steuernummer",
                "eu_sme_id": "KU-IdNr.",
                "register": "Handelsregister",
                "pos": "Pos.",
                "description": "Beschreibung",
                "quantity": "Menge",
                "unit_price": "Einzelpreis",
                "vat_rate": "USt",
                "amount": "Betrag",
                "net_total": "Summe netto",
                "vat_line": "Umsatzsteuer {rate} auf {base}",
                "vat_line_country": "Umsatzsteuer {country} {rate} auf {base}",
                "total": "Gesamtbetrag",
                "paid": "Bereits bezahlt",
                "amount_due": "Zu zahlen",
                "gross_total_small": "Gesamtbetrag (inkl. USt)",
                "vat_included": "darin enthalten {rate} USt",
                "vat_in_eur": "Umsatzsteuer in EUR",
                "vat_in_eur_note": (
                    "Umsatzsteuer in EUR: {amount} EUR (Umrechnungskurs 1 EUR = {rate} "
                    "{currency}, {source}-Kurs vom {date})"
                ),
                "notes": "Hinweise",
                "payment": "Zahlung",
                "pay_to": (
                    "Bitte überweisen Sie den Betrag{due} auf das Konto {holder}, IBAN {iban}{bic}."
                ),
                "pay_due": " bis zum {date}",
                "reference": "Verwendungszweck",
                "bank": "Bankverbindung",
                "period_range": "{start} – {end}",
                "page": "Seite",
                "of": "von",
            }
        ),
        "en": MappingProxyType(
            {
                "title_invoice": "Invoice",
                "title_credit_note": "Credit note",
                "title_small_amount": "Invoice",
                "subtitle_small_amount": "Simplified invoice (small amount)",
                "corrects": "Corrects invoice {number} of {date}",
                "credit_note_text": "The following amount is credited to you.",
                "number": "Invoice number",
                "credit_note_number": "Number",
                "issue_date": "Invoice date",
                "supply_date": "Date of supply",
                "service_period": "Service period",
                "due_date": "Due date",
                "buyer_reference": "Your reference",
                "buyer_vat_id": "Customer VAT ID",
                "vat_id": "VAT ID",
                "tax_number": "Tax number",
                "eu_sme_id": "SME scheme ID",
                "register": "Commercial register",
                "pos": "No.",
                "description": "Description",
                "quantity": "Qty",
                "unit_price": "Unit price",
                "vat_rate": "VAT",
                "amount": "Amount",
                "net_total": "Net total",
                "vat_line": "VAT {rate} on {base}",
                "vat_line_country": "VAT {country} {rate} on {base}",
                "total": "Total",
                "paid": "Already paid",
                "amount_due": "Amount due",
                "gross_total_small": "Total (incl. VAT)",
                "vat_included": "includes {rate} VAT",
                "vat_in_eur": "VAT in EUR",
                "vat_in_eur_note": (
                    "VAT in EUR: {amount} EUR (exchange rate 1 EUR = {rate} {currency}, "
                    "{source} rate of {date})"
                ),
                "notes": "Notes",
                "payment": "Payment",
                "pay_to": "Please transfer the amount{due} to {holder}, IBAN {iban}{bic}.",
                "pay_due": " by {date}",
                "reference": "Payment reference",
                "bank": "Bank details",
                "period_range": "{start} – {end}",
                "page": "Page",
                "of": "of",
            }
        ),
    }
)

_MONTHS_EN = (
    *("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
)


def labels(lang: str) -> MappingProxyType[str, str]:
    """All labels of ``lang`` (``de`` or ``en``)."""
    return _LABELS[lang]


def text_for(lang: str, key: str) -> str:
    """One label."""
    return _LABELS[lang][key]


def _group(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(parts)


def number(value: Decimal, lang: str, places: int | None = 2) -> str:
    """``value`` with thousands separators: ``1.234,56`` (de) or ``1,234.56`` (en).
    ``places=None`` keeps the significant decimals (rates: ``25,5``)."""
    if places is None:
        text = format(value.normalize(), "f")
    else:
        quantum = Decimal(1).scaleb(-places)
        text = format(value.quantize(quantum, ROUND_HALF_UP), "f")
    sign = "-" if text.startswith("-") else ""
    digits, _, decimals = text.lstrip("-").partition(".")
    thousands, point = (".", ",") if lang == "de" else (",", ".")
    grouped = _group(digits, thousands)
    return f"{sign}{grouped}{point}{decimals}" if decimals else f"{sign}{grouped}"


def money(minor: int, currency: str, lang: str) -> str:
    """``minor`` units as ``1.234,56 €`` (de) / ``€1,234.56`` (en); other currencies by
    code: ``1.234,56 USD`` / ``USD 1,234.56``."""
    places = exponent(currency)
    amount = number(Decimal(minor).scaleb(-places), lang, places)
    if lang == "de":
        return f"{amount} €" if currency == "EUR" else f"{amount} {currency}"
    return f"€{amount}" if currency == "EUR" else f"{currency} {amount}"


def percent(rate: Decimal, lang: str) -> str:
    """A rate as ``19 %`` / ``25,5 %`` (de, with the DIN 5008 space) or ``19%`` (en)."""
    value = number(rate, lang, places=None)
    return f"{value} %" if lang == "de" else f"{value}%"


def day(value: date, lang: str) -> str:
    """A date as ``21.11.2026`` (de) or ``21 Nov 2026`` (en)."""
    if lang == "de":
        return f"{value.day:02d}.{value.month:02d}.{value.year}"
    return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def quantity(value: Decimal, lang: str) -> str:
    """A quantity with its significant decimals only (``1``, ``2,5``)."""
    return number(value, lang, places=None)
