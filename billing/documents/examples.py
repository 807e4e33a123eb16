"""Example snapshots, one per kind of invoice, for the documentation samples, the benchmark
and the tests (and, later, a "preview with my branding" endpoint).

Each example runs the real tax decision (:func:`tax.decide`) for its seller and customer
and copies the decision into the lines, exactly as the billing run will. Identifiers are
syntactically valid test values (VAT IDs pass python-stdnum, the IBAN is the usual test
IBAN); no real company is meant.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import partial

from billing.documents.model import (
    Address,
    BankAccount,
    BuyerParty,
    Contact,
    DocumentKind,
    DocumentReference,
    EurConversion,
    InvoiceLine,
    InvoiceSnapshot,
    Language,
    LineTax,
    Period,
    SellerParty,
)
from tax import decide
from tax.model import Counters, CustomerFacts, SellerProfile, Supply, VatIdStatus

D = Decimal
ACCENT = "#1f4e79"


class ExampleCase(StrEnum):
    """The example documents (``docs/invoices.md`` shows each)."""

    DOMESTIC = "domestic"
    OSS = "oss"
    REVERSE_CHARGE = "reverse_charge"
    KLEINUNTERNEHMER_2024 = "kleinunternehmer_2024"
    KLEINUNTERNEHMER_2025 = "kleinunternehmer_2025"
    OUT_OF_SCOPE = "out_of_scope"
    SMALL_AMOUNT = "small_amount"
    CREDIT_NOTE = "credit_note"
    FOREIGN_CURRENCY = "foreign_currency"


def _png(width: int, height: int, pixel: tuple[int, int, int, int], mark: bool) -> bytes:
    """A small RGBA PNG: a rounded square in the accent colour with a light stripe."""
    rows = []
    radius = min(width, height) // 5
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            cx = min(x, width - 1 - x)
            cy = min(y, height - 1 - y)
            corner = cx < radius and cy < radius
            inside = not corner or (radius - cx) ** 2 + (radius - cy) ** 2 <= radius**2
            stripe = mark and abs((x - y) - width // 6) < width // 10
            if not inside:
                row += b"\x00\x00\x00\x00"
            elif stripe:
                row += b"\xff\xff\xff\xff"
            else:
                row += bytes(pixel)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


EXAMPLE_LOGO = _png(96, 96, (0x1F, 0x4E, 0x79, 0xFF), mark=True)

SELLER = SellerParty(
    legal_name="Beispiel Software GmbH",
    address=Address("DE", "Friedrichstraße 123", None, "10117", "Berlin"),
    tax_number="37/123/45678",
    vat_id="DE811907980",
    bank=BankAccount("DE89370400440532013000", "Beispiel Software GmbH", "COBADEFFXXX"),
    logo=EXAMPLE_LOGO,
    accent_color=ACCENT,
    contact=Contact("Anna Schmidt", "+49 30 1234567", "rechnung@beispiel-software.example"),
    legal_registration_id="HRB 123456 B, Amtsgericht Charlottenburg",
)

KU_SELLER = SellerParty(
    legal_name="Jana Becker Webentwicklung",
    address=Address("DE", "Lindenweg 7", None, "04109", "Leipzig"),
    tax_number="231/456/78901",
    kleinunternehmer=True,
    bank=BankAccount("DE02120300000000202051", "Jana Becker"),
    logo=_png(96, 96, (0x2E, 0x7D, 0x32, 0xFF), mark=False),
    accent_color="#2e7d32",
    contact=Contact("Jana Becker", "+49 341 998877", "hallo@becker-web.example"),
)

_PROFILE_A = SellerProfile("DE", vat_id=SELLER.vat_id, oss_registered=True)
_COUNTERS_A = Counters(eu_b2c_previous_year=D("25000.00"), eu_b2c_current_year=D("18000.00"))
_PROFILE_K = SellerProfile("DE", tax_number=KU_SELLER.tax_number, kleinunternehmer=True)


def _tax(
    customer: CustomerFacts,
    on: date,
    net: Decimal,
    *,
    seller: SellerProfile = _PROFILE_A,
    counters: Counters = _COUNTERS_A,
    currency: str = "EUR",
) -> LineTax:
    supply = Supply(on, net, currency=currency, net_eur=net if currency != "EUR" else None)
    return LineTax.from_decision(decide(seller, counters, customer, supply))


def _line(
    description: str,
    quantity: str,
    unit_price_minor: int,
    tax: LineTax,
    period: Period | None = None,
    *,
    currency: str = "EUR",
) -> InvoiceLine:
    return InvoiceLine(description, D(quantity), unit_price_minor, currency, tax, period)


NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))
_DE_BUSINESS = BuyerParty(
    "Nordlicht Handels AG",
    Address("DE", "Am Sandtorkai 50", None, "20457", "Hamburg"),
    vat_id="DE136695976",
    is_business=True,
    electronic_address="eingangsrechnung@nordlicht.example",
)
_DE_BUSINESS_FACTS = CustomerFacts(
    "DE", is_business=True, vat_id="DE136695976", vat_id_status=VatIdStatus.VALID
)


def _t(lang: Language, german: str, english: str) -> str:
    return german if lang is Language.DE else english


def _domestic(lang: Language) -> InvoiceSnapshot:
    tax = _tax(_DE_BUSINESS_FACTS, NOVEMBER.end, D("249.00"))
    return InvoiceSnapshot(
        kind=DocumentKind.INVOICE,
        number="RE-2026-00042",
        issue_date=date(2026, 12, 1),
        supply_date=NOVEMBER.end,
        seller=SELLER,
        buyer=_DE_BUSINESS,
        lines=(
            _line(
                _t(lang, "Abo „Team“, monatlich", "Team plan, monthly"), "1", 19900, tax, NOVEMBER
            ),
            _line(_t(lang, "Zusätzliche Nutzer", "Additional seats"), "5", 999, tax, NOVEMBER),
        ),
        language=lang,
        service_period=NOVEMBER,
        due_date=date(2026, 12, 15),
        payment_reference="RE-2026-00042",
        payment_terms=_t(
            lang,
            "Zahlbar innerhalb von 14 Tagen ohne Abzug.",
            "Payable within 14 days without deduction.",
        ),
        buyer_reference="PO-7781",
    )


def _credit_note(lang: Language) -> InvoiceSnapshot:
    original = _domestic(lang)
    return replace(
        original,
        kind=DocumentKind.CREDIT_NOTE,
        number="RE-2026-00057",
        issue_date=date(2026, 12, 10),
        lines=(replace(original.lines[1], quantity=D("2")),),  # two seats were never used
        credit_note_of=DocumentReference(original.number, original.issue_date),
        due_date=None,
        payment_reference=None,
        payment_terms=_t(
            lang,
            "Der Betrag wird mit Ihrer nächsten Rechnung verrechnet.",
            "The amount will be offset against your next invoice.",
        ),
    )


def _oss(lang: Language) -> InvoiceSnapshot:
    on = date(2026, 11, 18)
    tax = _tax(CustomerFacts("FR"), on, D("12.00"))  # consumer in FR, OSS-registered seller
    period = Period(on, date(2026, 12, 17))
    return InvoiceSnapshot(
        kind=DocumentKind.INVOICE,
        number="RE-2026-00043",
        issue_date=on,
        supply_date=on,
        seller=SELLER,
        buyer=BuyerParty(
            "Camille Martin", Address("FR", "12 rue des Lilas", None, "69003", "Lyon")
        ),
        lines=(
            _line(_t(lang, "Abo „Solo“, monatlich", "Solo plan, monthly"), "1", 1200, tax, period),
        ),
        language=lang,
        payment_terms=_t(lang, "Bezahlt per Karte.", "Paid by card."),
        paid_minor=1440,  # 12.00 + 20 % FR VAT, charged at checkout
    )


def _reverse_charge(lang: Language) -> InvoiceSnapshot:
    customer = CustomerFacts(
        "AT", is_business=True, vat_id="ATU13585627", vat_id_status=VatIdStatus.VALID
    )
    tax = _tax(customer, NOVEMBER.end, D("1490.00"))
    return InvoiceSnapshot(
        kind=DocumentKind.INVOICE,
        number="RE-2026-00044",
        issue_date=date(2026, 12, 1),
        supply_date=NOVEMBER.end,
        seller=SELLER,
        buyer=BuyerParty(
            "Alpenblick Software GmbH",
            Address("AT", "Maria-Theresien-Straße 21", None, "6020", "Innsbruck"),
            vat_id="ATU13585627",
            is_business=True,
        ),
        lines=(
            _line(
                _t(lang, "Abo „Business“, monatlich", "Business plan, monthly"),
                "1",
                99000,
                tax,
                NOVEMBER,
            ),
            _line(
                _t(lang, "API-Kontingent 1 Mio. Aufrufe", "API quota, 1 million calls"),
                "1",
                50000,
                tax,
                NOVEMBER,
            ),
        ),
        language=lang,
        service_period=NOVEMBER,
        due_date=date(2026, 12, 15),
        payment_reference="RE-2026-00044",
    )


def _kleinunternehmer(lang: Language, *, old_regime: bool) -> InvoiceSnapshot:
    on = date(2024, 11, 15) if old_regime else date(2026, 3, 10)
    counters = (
        Counters(turnover_previous_year=D("21000"), forecast_current_year=D("40000"))
        if old_regime
        else Counters(turnover_previous_year=D("20000"), turnover_current_year=D("8000"))
    )
    tax = _tax(CustomerFacts("DE"), on, D("49.00"), seller=_PROFILE_K, counters=counters)
    number = "2024-017" if old_regime else "2026-031"
    return InvoiceSnapshot(
        kind=DocumentKind.INVOICE,
        number=number,
        issue_date=on,
        supply_date=on,
        seller=KU_SELLER,
        buyer=BuyerParty(
            "Erika Mustermann", Address("DE", "Hauptstraße 1", None, "10115", "Berlin")
        ),
        lines=(
            _line(
                _t(lang, "Website-Wartung, Paket S", "Website maintenance, package S"),
                "1",
                4900,
                tax,
            ),
        ),
        language=lang,
        due_date=date(on.year, on.month, 24),
        payment_reference=number,
    )


def _out_of_scope(lang: Language) -> InvoiceSnapshot:
    customer = CustomerFacts("CH", is_business=True, vat_id="CHE123456788")
    tax = _tax(customer, NOVEMBER.end, D("990.00"))
    return InvoiceSnapshot(
        kind=DocumentKind.INVOICE,
        number="RE-2026-00045",
        issue_date=date(2026, 12, 1),
        supply_date=NOVEMBER.end,
        seller=SELLER,
        buyer=BuyerParty(
            "Bergsicht AG",
            Address("CH", "Bahnhofstrasse 10", None, "8001", "Zürich"),
            vat_id="CHE123456788",
            is_business=True,
        ),
        lines=(
            _line(
                _t(lang, "Abo „Business“, monatlich", "Business plan, monthly"),
                "1",
                99000,
                tax,
                NOVEMBER,
            ),
        ),
        language=lang,
        service_period=NOVEMBER,
        due_date=date(2026, 12, 15),
        payment_reference="RE-2026-00045",
    )


def _small_amount(lang: Language) -> InvoiceSnapshot:
    on = date(2026, 11, 20)
    tax = _tax(CustomerFacts("DE"), on, D("20.00"))
    return InvoiceSnapshot(
        kind=DocumentKind.SMALL_AMOUNT,
        number="RE-2026-00046",
        issue_date=on,
        supply_date=on,
        seller=SELLER,
        buyer=BuyerParty("Max Beispiel", Address("DE")),  # § 33 UStDV: no buyer address needed
        lines=(
            _line(
                _t(lang, "Add-on „Export-Paket“, einmalig", "Add-on “Export pack”, one-off"),
                "1",
                2000,
                tax,
            ),
        ),
        language=lang,
        payment_terms=_t(lang, "Bezahlt per Karte.", "Paid by card."),
        paid_minor=2380,
    )


def _foreign_currency(lang: Language) -> InvoiceSnapshot:
    tax = _tax(_DE_BUSINESS_FACTS, NOVEMBER.end, D("500.00"), currency="USD")
    line = _line(
        _t(lang, "Abo „Enterprise“, monatlich", "Enterprise plan, monthly"),
        "1",
        50000,
        tax,
        NOVEMBER,
        currency="USD",
    )
    return replace(
        _domestic(lang),
        number="RE-2026-00047",
        currency="USD",
        lines=(line,),
        eur_conversion=EurConversion(D("1.0842"), date(2026, 11, 30)),
        payment_reference="RE-2026-00047",
    )


_BUILDERS: dict[ExampleCase, tuple[Language, Callable[[Language], InvoiceSnapshot]]] = {
    ExampleCase.DOMESTIC: (Language.DE, _domestic),
    ExampleCase.OSS: (Language.EN, _oss),
    ExampleCase.REVERSE_CHARGE: (Language.DE, _reverse_charge),
    ExampleCase.KLEINUNTERNEHMER_2024: (
        Language.DE,
        partial(_kleinunternehmer, old_regime=True),
    ),
    ExampleCase.KLEINUNTERNEHMER_2025: (
        Language.DE,
        partial(_kleinunternehmer, old_regime=False),
    ),
    ExampleCase.OUT_OF_SCOPE: (Language.EN, _out_of_scope),
    ExampleCase.SMALL_AMOUNT: (Language.DE, _small_amount),
    ExampleCase.CREDIT_NOTE: (Language.DE, _credit_note),
    ExampleCase.FOREIGN_CURRENCY: (Language.EN, _foreign_currency),
}


def example_snapshot(case: ExampleCase, language: Language | None = None) -> InvoiceSnapshot:
    """The example of ``case`` (each in its natural language unless ``language`` is given)."""
    natural, build = _BUILDERS[case]
    return build(language or natural)


def all_examples() -> dict[ExampleCase, InvoiceSnapshot]:
    """Every example in its natural language."""
    return {case: example_snapshot(case) for case in ExampleCase}
