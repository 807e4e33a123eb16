"""PDF/A-3b with the EN 16931 XML embedded as factur-x.xml; deterministic bytes; what each
kind of invoice prints (and what it must not print)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from facturx import get_facturx_xml_from_pdf
from lxml import etree
from pypdf import PdfReader

from billing.documents.cii import render_xml
from billing.documents.examples import ExampleCase, all_examples, example_snapshot
from billing.documents.model import InvoiceSnapshot, Language
from billing.documents.pdf import RenderedInvoice, render_html, render_invoice, render_pdf

ROOT = Path(__file__).resolve().parents[3]
XMP_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
}


@pytest.fixture(scope="module")
def rendered() -> dict[ExampleCase, RenderedInvoice]:
    return {case: render_invoice(snapshot) for case, snapshot in all_examples().items()}


def _reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in _reader(pdf).pages)


def _xmp(reader: PdfReader) -> etree._Element:
    metadata = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    return etree.fromstring(metadata.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])


@pytest.mark.parametrize("case", list(ExampleCase), ids=str)
def test_pdf_is_pdfa3b_with_factur_x_xml_embedded_when_rendered_for_each_treatment(
    case: ExampleCase, rendered: dict[ExampleCase, RenderedInvoice]
) -> None:
    result = rendered[case]
    reader = _reader(result.pdf)
    assert result.pdf.startswith(b"%PDF-1.7")
    # XMP: PDF/A-3b and the Factur-X extension schema with its properties
    assert reader.xmp_metadata is not None
    assert (reader.xmp_metadata.pdfaid_part, reader.xmp_metadata.pdfaid_conformance) == ("3", "B")
    xmp = _xmp(reader)
    assert xmp.xpath("string(//rdf:Description/@pdfaid:part)", namespaces=XMP_NS) == "3"
    fx = {
        name: xmp.xpath(f"string(//fx:{name})", namespaces=XMP_NS)
        for name in ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")
    }
    assert fx == {
        "DocumentType": "INVOICE",
        "DocumentFileName": "factur-x.xml",
        "Version": "1.0",
        "ConformanceLevel": "EN 16931",
    }
    assert xmp.xpath("string(//pdfaSchema:prefix)", namespaces=XMP_NS) == "fx"
    # the embedded file is the XML of the snapshot, associated with the document as /Data
    assert reader.attachments == {"factur-x.xml": [result.xml]}
    assert result.xml == render_xml(all_examples()[case])
    root = reader.trailer["/Root"]
    associated = [ref.get_object() for ref in root["/AF"]]
    assert [(spec["/F"], spec["/AFRelationship"]) for spec in associated] == [
        ("factur-x.xml", "/Data")
    ]
    assert associated[0]["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    assert root["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    # a third-party reader finds the Factur-X XML and accepts it against its XSD
    assert get_facturx_xml_from_pdf(result.pdf, check_xsd=True) == ("factur-x.xml", result.xml)


def test_pdf_dates_and_id_come_from_the_snapshot_when_rendered(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    result = rendered[ExampleCase.DOMESTIC]
    reader = _reader(result.pdf)
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20261201000000Z"  # issue date, 00:00 UTC
    assert reader.metadata["/ModDate"] == "D:20261201000000Z"
    assert reader.metadata["/Title"] == "Rechnung RE-2026-00042"
    assert reader.trailer["/ID"][0] == result.content_sha256[:32]


def test_rendering_gives_identical_bytes_when_the_same_snapshot_is_rendered_twice(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    for case, snapshot in all_examples().items():
        assert render_pdf(snapshot) == rendered[case].pdf, case


def test_rendering_gives_identical_bytes_when_run_in_another_process() -> None:
    script = (
        "import hashlib\n"
        "from billing.documents.examples import all_examples\n"
        "from billing.documents.pdf import render_pdf\n"
        "print(hashlib.sha256(b''.join(render_pdf(s) for s in all_examples().values()))"
        ".hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    here = hashlib.sha256(b"".join(render_pdf(s) for s in all_examples().values())).hexdigest()
    assert child.stdout.strip() == here


def test_rendering_differs_when_the_snapshot_differs() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    assert render_pdf(snapshot) != render_pdf(replace(snapshot, number="RE-2026-00043"))


def test_domestic_pdf_prints_rate_vat_and_totals_when_standard_rated(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.DOMESTIC].pdf)
    for expected in (
        "Rechnungsnummer RE-2026-00042",
        "Leistungszeitraum 01.11.2026 – 30.11.2026",
        "USt-IdNr. DE811907980",
        "Steuernummer 37/123/45678",
        "Summe netto 248,95 €",
        "Umsatzsteuer 19 % auf 248,95 € 47,30 €",
        "Gesamtbetrag 296,25 €",
        "IBAN DE89370400440532013000",
    ):
        assert expected in text


def test_oss_pdf_names_destination_country_and_rate_when_vat_is_french(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.OSS].pdf)
    assert "VAT FR 20% on €12.00 €2.40" in text
    assert "Total €14.40" in text
    assert "FRANCE" in text


def test_paid_invoice_shows_nothing_due_and_no_transfer_request_when_paid_by_card(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.OSS].pdf)
    assert "Already paid €14.40" in text
    assert "Amount due €0.00" in text
    assert "Please transfer" not in text


def test_reverse_charge_pdf_prints_wording_and_both_vat_ids_when_buyer_is_eu_business(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.REVERSE_CHARGE].pdf)
    assert "Steuerschuldnerschaft des Leistungsempfängers" in text
    assert "USt-IdNr. DE811907980" in text
    assert "USt-IdNr. Kunde ATU13585627" in text
    assert "Umsatzsteuer" not in text
    assert "Gesamtbetrag 1.490,00 €" in text


def test_reverse_charge_pdf_uses_english_wording_when_language_is_english() -> None:
    text = _text(render_pdf(example_snapshot(ExampleCase.REVERSE_CHARGE, Language.EN)))
    assert "Reverse charge" in text
    assert "Customer VAT ID ATU13585627" in text


@pytest.mark.parametrize(
    ("case", "note"),
    [
        (ExampleCase.KLEINUNTERNEHMER_2024, "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet."),
        (
            ExampleCase.KLEINUNTERNEHMER_2025,
            "Steuerfreie Leistung nach § 19 Abs. 1 UStG (Kleinunternehmerregelung).",
        ),
    ],
    ids=str,
)
def test_kleinunternehmer_pdf_shows_no_vat_amount_or_rate_when_exempt(
    case: ExampleCase, note: str, rendered: dict[ExampleCase, RenderedInvoice]
) -> None:
    text = _text(rendered[case].pdf)
    assert note in text
    assert "Gesamtbetrag 49,00 €" in text
    assert "%" not in text  # § 34a UStDV / § 14c UStG: no rate
    assert "Summe netto" not in text
    assert "Umsatzsteuer " not in text.replace(note, "")  # no VAT line, only the note
    assert "USt-IdNr" not in text  # the seller has none; the Steuernummer is printed
    assert "Steuernummer 231/456/78901" in text


def test_out_of_scope_pdf_shows_no_vat_id_when_category_is_o(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.OUT_OF_SCOPE].pdf)
    assert "Not subject to EU VAT: the place of supply is outside the EU." in text
    assert "DE811907980" not in text
    assert "CHE123456788" not in text
    assert "Tax number 37/123/45678" in text
    assert "SWITZERLAND" in text


def test_small_amount_pdf_is_marked_as_such_when_kind_is_small_amount(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.SMALL_AMOUNT].pdf)
    assert "Kleinbetragsrechnung (§ 33 UStDV)" in text
    assert "Umsatzsteuer 19 % auf 20,00 € 3,80 €" in text
    assert "Gesamtbetrag 23,80 €" in text
    assert "Bitte überweisen" not in text  # paid by card


def test_credit_note_pdf_names_the_corrected_invoice_when_kind_is_credit_note(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.CREDIT_NOTE].pdf)
    assert "Rechnungskorrektur" in text
    assert "Korrektur der Rechnung RE-2026-00042 vom 01.12.2026" in text
    assert "Gutschrift" not in text  # would mean self-billing in tax law
    assert "Gesamtbetrag 23,78 €" in text
    assert "Bitte überweisen" not in text


def test_foreign_currency_pdf_states_vat_in_eur_when_invoice_is_in_usd(
    rendered: dict[ExampleCase, RenderedInvoice],
) -> None:
    text = _text(rendered[ExampleCase.FOREIGN_CURRENCY].pdf)
    assert "Total USD 595.00" in text
    assert "VAT in EUR €87.62" in text
    assert "1 EUR = 1.0842 USD" in text


def test_tenant_text_is_escaped_when_it_contains_markup() -> None:
    snapshot: InvoiceSnapshot = example_snapshot(ExampleCase.DOMESTIC)
    hostile = '<img src="http://127.0.0.1:9/x"> & Co'
    snapshot = replace(snapshot, buyer=replace(snapshot.buyer, name=hostile))
    html = render_html(snapshot)
    assert "&lt;img src=&#34;http://127.0.0.1:9/x&#34;&gt; &amp; Co" in html
    assert hostile in _text(render_pdf(snapshot))
