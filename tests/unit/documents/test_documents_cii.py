"""EN 16931 CII XML: every kind of invoice passes the Factur-X EN 16931 XSD and the EN 16931
Schematron with zero failed assertions (warnings included), and codes its tax treatment as
TAX_RULES.md §2.1/§2.2 and docs/tax.md require."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

import pytest

from billing.documents.cii import CiiProfile, render_xml
from billing.documents.errors import InvoiceIncompleteError
from billing.documents.examples import ExampleCase, example_snapshot
from billing.documents.model import Address, InvoiceSnapshot, Language
from tests.unit.documents.en16931 import NS, parse, run_schematron, xsd_errors


def _text(tree: object, path: str) -> list[str]:
    return [node.text for node in tree.xpath(path, namespaces=NS)]  # type: ignore[attr-defined]


def _assert_valid(xml: bytes) -> None:
    assert xsd_errors(xml) == []
    report = run_schematron(xml)
    assert report.failures == []
    assert report.fired_rules > 50  # the Schematron really looked at the invoice


@pytest.mark.parametrize("case", list(ExampleCase), ids=str)
def test_xml_passes_en16931_xsd_and_schematron_when_rendered_for_each_treatment(
    case: ExampleCase,
) -> None:
    _assert_valid(render_xml(example_snapshot(case)))


@pytest.mark.parametrize("case", [ExampleCase.DOMESTIC, ExampleCase.OUT_OF_SCOPE], ids=str)
def test_xml_passes_en16931_when_rendered_in_the_other_language(case: ExampleCase) -> None:
    snapshot = example_snapshot(case)
    other = Language.EN if snapshot.language is Language.DE else Language.DE
    _assert_valid(render_xml(example_snapshot(case, other)))


def test_schematron_reports_br_co_15_when_grand_total_is_tampered() -> None:
    xml = render_xml(example_snapshot(ExampleCase.DOMESTIC))
    tampered = xml.replace(b"<ram:GrandTotalAmount>296.25<", b"<ram:GrandTotalAmount>296.24<")
    assert tampered != xml
    rules = {failure.rule for failure in run_schematron(tampered).failures}
    assert "BR-CO-15" in rules


def test_domestic_xml_carries_rate_and_vat_per_group_when_standard_rated() -> None:
    tree = parse(render_xml(example_snapshot(ExampleCase.DOMESTIC)))
    group = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _text(tree, f"{group}/ram:CategoryCode") == ["S"]
    assert _text(tree, f"{group}/ram:RateApplicablePercent") == ["19.00"]
    assert _text(tree, f"{group}/ram:BasisAmount") == ["248.95"]
    assert _text(tree, f"{group}/ram:CalculatedAmount") == ["47.30"]  # 248.95 × 19 % = 47.3005
    assert _text(tree, "//rsm:ExchangedDocumentContext//ram:ID") == ["urn:cen.eu:en16931:2017"]
    assert _text(tree, "//ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == [
        "DE811907980",
        "DE136695976",
    ]


def test_oss_xml_uses_destination_rate_when_consumer_lives_in_france() -> None:
    tree = parse(render_xml(example_snapshot(ExampleCase.OSS)))
    group = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _text(tree, f"{group}/ram:RateApplicablePercent") == ["20.00"]
    assert _text(tree, f"{group}/ram:CalculatedAmount") == ["2.40"]
    assert _text(tree, "//ram:BuyerTradeParty//ram:CountryID") == ["FR"]


def test_paid_invoice_xml_has_prepaid_amount_and_no_payment_means_when_paid_by_card() -> None:
    tree = parse(render_xml(example_snapshot(ExampleCase.OSS)))
    assert _text(tree, "//ram:TotalPrepaidAmount") == ["14.40"]
    assert _text(tree, "//ram:DuePayableAmount") == ["0.00"]
    assert _text(tree, "//ram:SpecifiedTradeSettlementPaymentMeans") == []


def test_reverse_charge_xml_has_vatex_ae_and_both_vat_ids_when_buyer_is_eu_business() -> None:
    tree = parse(render_xml(example_snapshot(ExampleCase.REVERSE_CHARGE)))
    group = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _text(tree, f"{group}/ram:CategoryCode") == ["AE"]
    assert _text(tree, f"{group}/ram:ExemptionReasonCode") == ["VATEX-EU-AE"]
    assert _text(tree, f"{group}/ram:ExemptionReason") == ["Reverse charge"]
    assert _text(tree, f"{group}/ram:CalculatedAmount") == ["0.00"]
    assert _text(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == [
        "DE811907980",
        "37/123/45678",
    ]
    assert _text(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == [
        "ATU13585627"
    ]
    notes = _text(tree, "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content")
    assert any("Steuerschuldnerschaft des Leistungsempfängers" in note for note in notes)


def test_out_of_scope_xml_omits_every_vat_id_when_category_is_o() -> None:
    xml = render_xml(example_snapshot(ExampleCase.OUT_OF_SCOPE))
    tree = parse(xml)
    assert _text(tree, "//ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == []  # BR-O-02
    assert _text(tree, "//ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']") == ["37/123/45678"]
    line_tax = "//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"
    assert _text(tree, f"{line_tax}/ram:RateApplicablePercent") == []  # BR-O-05
    group = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _text(tree, f"{group}/ram:ExemptionReasonCode") == ["VATEX-EU-O"]


def test_out_of_scope_xml_identifies_seller_by_steuernummer_when_no_register_entry() -> None:
    snapshot = example_snapshot(ExampleCase.OUT_OF_SCOPE)
    snapshot = replace(snapshot, seller=replace(snapshot.seller, legal_registration_id=None))
    xml = render_xml(snapshot)
    assert _text(parse(xml), "//ram:SellerTradeParty/ram:ID") == ["37/123/45678"]  # BR-CO-26
    _assert_valid(xml)


@pytest.mark.parametrize(
    ("case", "reason", "note"),
    [
        (
            ExampleCase.KLEINUNTERNEHMER_2024,
            "Kleinunternehmer nach § 19 Abs. 1 UStG: keine Umsatzsteuer erhoben",
            "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",
        ),
        (
            ExampleCase.KLEINUNTERNEHMER_2025,
            "Steuerbefreiung als Kleinunternehmer nach § 19 Abs. 1 UStG",
            "Steuerfreie Leistung nach § 19 Abs. 1 UStG (Kleinunternehmerregelung).",
        ),
    ],
    ids=str,
)
def test_kleinunternehmer_xml_is_category_e_with_section_19_reason_when_exempt(
    case: ExampleCase, reason: str, note: str
) -> None:
    tree = parse(render_xml(example_snapshot(case)))
    group = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _text(tree, f"{group}/ram:CategoryCode") == ["E"]
    assert _text(tree, f"{group}/ram:ExemptionReason") == [reason]
    assert _text(tree, f"{group}/ram:CalculatedAmount") == ["0.00"]
    assert _text(tree, "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == [note]
    # the seller has no USt-IdNr.: Steuernummer as tax registration and seller identifier
    assert _text(tree, "//ram:SellerTradeParty/ram:ID") == ["231/456/78901"]


def test_credit_note_xml_is_type_381_with_positive_amounts_when_correcting_an_invoice() -> None:
    tree = parse(render_xml(example_snapshot(ExampleCase.CREDIT_NOTE)))
    assert _text(tree, "//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    reference = "//ram:InvoiceReferencedDocument"
    assert _text(tree, f"{reference}/ram:IssuerAssignedID") == ["RE-2026-00042"]
    assert _text(tree, f"{reference}//*[local-name()='DateTimeString']") == ["20261201"]
    assert _text(tree, "//ram:GrandTotalAmount") == ["23.78"]  # 2 × 9.99 + 19 %
    assert _text(tree, "//ram:SpecifiedTradeSettlementPaymentMeans") == []


def test_foreign_currency_xml_states_vat_in_eur_when_invoice_is_in_usd() -> None:
    tree = parse(render_xml(example_snapshot(ExampleCase.FOREIGN_CURRENCY)))
    assert _text(tree, "//ram:InvoiceCurrencyCode") == ["USD"]
    assert _text(tree, "//ram:TaxCurrencyCode") == ["EUR"]
    totals = tree.xpath("//ram:TaxTotalAmount", namespaces=NS)
    assert [(t.get("currencyID"), t.text) for t in totals] == [("USD", "95.00"), ("EUR", "87.62")]
    expected = (Decimal("95.00") / Decimal("1.0842")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert expected == Decimal("87.62")


def test_xrechnung_variant_passes_en16931_and_has_cius_fields_when_requested() -> None:
    xml = render_xml(example_snapshot(ExampleCase.DOMESTIC), CiiProfile.XRECHNUNG)
    assert xsd_errors(xml) == []
    # The Factur-X code list admits only the plain EN 16931 guideline id (BT-24); every
    # EN 16931 business rule passes, that code-list check is the only expected finding.
    failures = run_schematron(xml).failures
    assert [
        (f.rule, "GuidelineSpecifiedDocumentContextParameter" in f.location) for f in failures
    ] == [("FX-SCH-A-000556", True)]
    tree = parse(xml)
    assert _text(tree, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == [
        "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
    ]
    # The BR-DE rules of the CIUS that are about presence (KoSIT's validator is not run):
    required = {
        "BR-DE-1": "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode",
        "BR-DE-2/5": "//ram:SellerTradeParty/ram:DefinedTradeContact/ram:PersonName",
        "BR-DE-6": "//ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/*",
        "BR-DE-7": "//ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/*",
        "BR-DE-3": "//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CityName",
        "BR-DE-4": "//ram:SellerTradeParty/ram:PostalTradeAddress/ram:PostcodeCode",
        "BR-DE-8": "//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CityName",
        "BR-DE-9": "//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:PostcodeCode",
        "BR-DE-15": "//ram:ApplicableHeaderTradeAgreement/ram:BuyerReference",
        "BT-34": "//ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']",
        "BT-49": "//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']",
        "BT-23": "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID",
    }
    missing = [rule for rule, path in required.items() if not _text(tree, path)]
    assert missing == []


def test_xrechnung_variant_refuses_snapshot_when_cius_fields_are_missing() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    snapshot = replace(
        snapshot,
        buyer_reference=None,
        buyer=replace(snapshot.buyer, electronic_address=None),
        seller=replace(snapshot.seller, contact=None),
    )
    render_xml(snapshot)  # a plain EN 16931 invoice needs none of them
    with pytest.raises(InvoiceIncompleteError) as caught:
        render_xml(snapshot, CiiProfile.XRECHNUNG)
    assert set(caught.value.fields) == {
        "buyer_reference",
        "seller.contact",
        "buyer.electronic_address",
    }


def test_render_xml_raises_invoice_incomplete_when_buyer_address_is_missing() -> None:
    snapshot: InvoiceSnapshot = example_snapshot(ExampleCase.DOMESTIC)
    snapshot = replace(snapshot, buyer=replace(snapshot.buyer, address=Address("DE")))
    with pytest.raises(InvoiceIncompleteError) as caught:
        render_xml(snapshot)
    assert caught.value.code == "invoice_incomplete"
    assert caught.value.fields == (
        "buyer.address.line1",
        "buyer.address.postal_code",
        "buyer.address.city",
    )
