"""Invariants for any set of lines (mixed rates and categories, EUR and a currency without
minor unit): VAT per (category, rate) = round half-up(sum of line nets × rate / 100)
(BR-CO-17), net + VAT = gross, and the totals in the XML and in the PDF text are the
snapshot's computed totals."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from billing.documents.cii import render_xml
from billing.documents.examples import ExampleCase, example_snapshot
from billing.documents.model import (
    DocumentKind,
    DocumentReference,
    EurConversion,
    InvoiceLine,
    InvoiceSnapshot,
    LineTax,
    to_decimal,
)
from billing.documents.pdf import render_pdf
from billing.documents.wording import money, text_for
from tax.model import Treatment, VatCategory
from tax.notes import NoteKey
from tests.unit.documents.en16931 import NS, parse, run_schematron, xsd_errors

D = Decimal
TAXES = (
    LineTax(Treatment.DOMESTIC, VatCategory.STANDARD, D("19"), taxing_country="DE"),
    LineTax(Treatment.DOMESTIC, VatCategory.STANDARD, D("7"), taxing_country="DE"),
    LineTax(Treatment.OSS_DESTINATION, VatCategory.STANDARD, D("20"), taxing_country="FR"),
    LineTax(Treatment.OSS_DESTINATION, VatCategory.STANDARD, D("25.5"), taxing_country="FI"),
    LineTax(
        Treatment.REVERSE_CHARGE,
        VatCategory.REVERSE_CHARGE,
        D("0"),
        "VATEX-EU-AE",
        "Reverse charge",
        (NoteKey.REVERSE_CHARGE,),
        "AT",
    ),
)
BASE = example_snapshot(ExampleCase.REVERSE_CHARGE)  # both VAT IDs, so AE lines may mix in


@st.composite
def snapshots(draw: st.DrawFn) -> InvoiceSnapshot:
    currency = draw(st.sampled_from(["EUR", "EUR", "JPY"]))
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        places = draw(st.integers(0, 3))
        quantity = D(draw(st.integers(1, 5000))).scaleb(-places)
        lines.append(
            InvoiceLine(
                description=draw(st.sampled_from(["Plan", "Seats", "API calls", "Prorated plan"])),
                quantity=quantity,
                unit_price_minor=draw(st.integers(0, 2_000_000)),
                currency=currency,
                tax=draw(st.sampled_from(TAXES)),
            )
        )
    credit_note = draw(st.booleans())
    snapshot = replace(
        BASE,
        kind=DocumentKind.CREDIT_NOTE if credit_note else DocumentKind.INVOICE,
        credit_note_of=DocumentReference("RE-2026-00001", date(2026, 11, 2))
        if credit_note
        else None,
        currency=currency,
        lines=tuple(lines),
        eur_conversion=EurConversion(D("161.37"), date(2026, 11, 30))
        if currency != "EUR"
        else None,
        language=draw(st.sampled_from(list(BASE.language.__class__))),
    )
    if credit_note or not draw(st.booleans()):
        return snapshot
    # part or all of it paid at checkout (BT-113)
    return replace(snapshot, paid_minor=draw(st.integers(0, snapshot.totals.gross_minor)))


def _expected_vat(snapshot: InvoiceSnapshot) -> dict[tuple[str, Decimal], tuple[Decimal, Decimal]]:
    """Independent oracle: per (category, rate), summed net and half-up VAT in currency units."""
    quantum = D(1) if snapshot.currency == "JPY" else D("0.01")
    sums: dict[tuple[str, Decimal], Decimal] = {}
    for line in snapshot.lines:
        unit = to_decimal(line.unit_price_minor, snapshot.currency)
        net = (line.quantity * unit).quantize(quantum, ROUND_HALF_UP)
        key = (line.tax.category.value, line.tax.rate)
        sums[key] = sums.get(key, D(0)) + net
    return {
        key: (net, (net * key[1] / 100).quantize(quantum, ROUND_HALF_UP))
        for key, net in sums.items()
    }


@settings(max_examples=150, deadline=None)
@given(snapshots())
def test_vat_per_rate_is_half_up_of_summed_net_when_lines_mix_rates(
    snapshot: InvoiceSnapshot,
) -> None:
    totals = snapshot.totals
    currency = snapshot.currency
    computed = {
        (g.category.value, g.rate): (
            to_decimal(g.taxable_minor, currency),
            to_decimal(g.vat_minor, currency),
        )
        for g in totals.groups
    }
    assert computed == _expected_vat(snapshot)
    assert (
        totals.net_minor
        == sum(totals.line_net_minor)
        == sum(g.taxable_minor for g in totals.groups)
    )
    assert totals.vat_minor == sum(g.vat_minor for g in totals.groups)
    assert totals.net_minor + totals.vat_minor == totals.gross_minor
    assert totals.gross_minor - totals.paid_minor == totals.due_minor >= 0
    assert min(totals.line_net_minor) >= 0  # credit notes stay positive (type 381)


@settings(max_examples=60, deadline=None)
@given(snapshots())
def test_xml_totals_equal_snapshot_totals_when_parsed_back(snapshot: InvoiceSnapshot) -> None:
    tree = parse(render_xml(snapshot))
    currency = snapshot.currency
    totals = snapshot.totals

    def amounts(path: str) -> list[Decimal]:
        return [D(node.text) for node in tree.xpath(path, namespaces=NS)]

    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert amounts(f"{summation}/ram:LineTotalAmount") == [to_decimal(totals.net_minor, currency)]
    assert amounts(f"{summation}/ram:TaxBasisTotalAmount") == [
        to_decimal(totals.net_minor, currency)
    ]
    assert amounts(f"{summation}/ram:TaxTotalAmount[@currencyID='{currency}']") == [
        to_decimal(totals.vat_minor, currency)
    ]
    assert amounts(f"{summation}/ram:GrandTotalAmount") == [
        to_decimal(totals.gross_minor, currency)
    ]
    assert amounts(f"{summation}/ram:DuePayableAmount") == [to_decimal(totals.due_minor, currency)]
    paid = [to_decimal(totals.paid_minor, currency)] if totals.paid_minor else []
    assert amounts(f"{summation}/ram:TotalPrepaidAmount") == paid
    assert amounts("//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount") == [
        to_decimal(net, currency) for net in totals.line_net_minor
    ]
    groups = [
        (
            node.findtext("ram:CategoryCode", namespaces=NS),
            D(node.findtext("ram:RateApplicablePercent", namespaces=NS)),
            D(node.findtext("ram:BasisAmount", namespaces=NS)),
            D(node.findtext("ram:CalculatedAmount", namespaces=NS)),
        )
        for node in tree.xpath(
            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS
        )
    ]
    assert groups == [
        (
            g.category.value,
            g.rate,
            to_decimal(g.taxable_minor, currency),
            to_decimal(g.vat_minor, currency),
        )
        for g in totals.groups
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_xml_passes_xsd_and_schematron_when_lines_are_arbitrary(snapshot: InvoiceSnapshot) -> None:
    xml = render_xml(snapshot)
    assert xsd_errors(xml) == []
    assert run_schematron(xml).failures == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots())
def test_pdf_text_prints_the_snapshot_totals_when_lines_are_arbitrary(
    snapshot: InvoiceSnapshot,
) -> None:
    reader = PdfReader(io.BytesIO(render_pdf(snapshot)))
    text = "\n".join(page.extract_text() for page in reader.pages)
    lang = snapshot.language.value
    currency = snapshot.currency
    totals = snapshot.totals
    assert f"{text_for(lang, 'total')} {money(totals.gross_minor, currency, lang)}" in text
    if totals.paid_minor:
        assert f"{text_for(lang, 'amount_due')} {money(totals.due_minor, currency, lang)}" in text
    if any(g.category is VatCategory.STANDARD for g in totals.groups):
        assert f"{text_for(lang, 'net_total')} {money(totals.net_minor, currency, lang)}" in text
    for group in totals.groups:
        if group.category is VatCategory.STANDARD:
            assert money(group.vat_minor, currency, lang) in text
