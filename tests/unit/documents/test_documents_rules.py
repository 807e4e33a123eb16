"""Content rules by document kind and treatment (§ 14 Abs. 4 UStG, § 14a UStG, § 33 and
§ 34a UStDV, EN 16931 / XRechnung)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from billing.documents.errors import InvoiceIncompleteError, InvoiceInvalidError
from billing.documents.examples import ExampleCase, example_snapshot
from billing.documents.model import (
    Address,
    DocumentKind,
    InvoiceSnapshot,
    LineTax,
)
from billing.documents.rules import (
    InvoiceProfile,
    check_invoice,
    small_amount_limit,
    validate_invoice,
)
from saas.kernel.errors import DomainError, ErrorKind
from tax.model import Treatment, VatCategory
from tax.notes import NoteKey

D = Decimal


def _errors(snapshot: InvoiceSnapshot) -> dict[str, bool]:
    """field → missing?"""
    return {problem.field: problem.missing for problem in check_invoice(snapshot)}


def _with_line_tax(snapshot: InvoiceSnapshot, **changes: object) -> InvoiceSnapshot:
    lines = tuple(replace(line, tax=replace(line.tax, **changes)) for line in snapshot.lines)
    return replace(snapshot, lines=lines)


def _small(gross_net_minor: int, *, issued: date = date(2026, 11, 20)) -> InvoiceSnapshot:
    snapshot = example_snapshot(ExampleCase.SMALL_AMOUNT)
    line = replace(snapshot.lines[0], unit_price_minor=gross_net_minor)
    return replace(snapshot, lines=(line,), issue_date=issued)


@pytest.mark.parametrize("case", list(ExampleCase), ids=str)
def test_examples_have_no_problem_when_checked(case: ExampleCase) -> None:
    assert check_invoice(example_snapshot(case)) == ()


@pytest.mark.parametrize(
    ("case", "profile"),
    [
        (ExampleCase.DOMESTIC, InvoiceProfile.FULL),
        (ExampleCase.OSS, InvoiceProfile.FULL),
        (ExampleCase.REVERSE_CHARGE, InvoiceProfile.FULL),
        (ExampleCase.OUT_OF_SCOPE, InvoiceProfile.FULL),
        (ExampleCase.CREDIT_NOTE, InvoiceProfile.FULL),
        (ExampleCase.KLEINUNTERNEHMER_2024, InvoiceProfile.KLEINUNTERNEHMER),
        (ExampleCase.KLEINUNTERNEHMER_2025, InvoiceProfile.KLEINUNTERNEHMER),
        (ExampleCase.SMALL_AMOUNT, InvoiceProfile.SMALL_AMOUNT),
    ],
    ids=str,
)
def test_profile_follows_kind_and_treatment_when_validated(
    case: ExampleCase, profile: InvoiceProfile
) -> None:
    assert validate_invoice(example_snapshot(case)) is profile


def test_full_invoice_is_incomplete_with_field_names_when_buyer_address_is_missing() -> None:
    snapshot = example_snapshot(ExampleCase.OSS)  # a consumer invoice is a full invoice too
    snapshot = replace(snapshot, buyer=replace(snapshot.buyer, address=Address("FR")))
    with pytest.raises(InvoiceIncompleteError) as caught:
        validate_invoice(snapshot)
    error = caught.value
    assert isinstance(error, DomainError)
    assert (error.code, error.kind) == ("invoice_incomplete", ErrorKind.INVALID)
    assert error.errors == {
        "buyer.address.line1": "§ 14 Abs. 4 Nr. 1 UStG",
        "buyer.address.postal_code": "§ 14 Abs. 4 Nr. 1 UStG",
        "buyer.address.city": "§ 14 Abs. 4 Nr. 1 UStG",
    }


def test_seller_is_incomplete_when_neither_steuernummer_nor_vat_id_is_given() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    snapshot = replace(snapshot, seller=replace(snapshot.seller, tax_number=None, vat_id=None))
    assert _errors(snapshot) == {"seller.tax_number": True, "seller.vat_id": True}


def test_number_is_required_when_any_kind_is_issued() -> None:
    assert _errors(replace(example_snapshot(ExampleCase.SMALL_AMOUNT), number=" ")) == {
        "number": True
    }


def test_small_amount_invoice_needs_no_buyer_address_when_gross_is_at_most_250_eur() -> None:
    snapshot = _small(21008)  # 210.08 + 19 % = 250.00
    assert snapshot.totals.gross_minor == 25000
    assert snapshot.buyer.address == Address("DE")
    assert validate_invoice(snapshot) is InvoiceProfile.SMALL_AMOUNT


def test_small_amount_invoice_is_invalid_when_gross_exceeds_250_eur() -> None:
    snapshot = _small(21009)  # 250.01
    with pytest.raises(InvoiceInvalidError) as caught:
        validate_invoice(snapshot)
    assert caught.value.fields == ("kind",)
    assert "250" in caught.value.errors["kind"]


def test_small_amount_limit_is_150_eur_when_issued_before_2017() -> None:
    assert small_amount_limit(date(2016, 12, 31)) == D(150)
    assert small_amount_limit(date(2017, 1, 1)) == D(250)
    assert _errors(_small(15000, issued=date(2016, 6, 1))) == {"kind": False}


def test_small_amount_invoice_is_invalid_when_supply_is_reverse_charge() -> None:
    snapshot = replace(example_snapshot(ExampleCase.REVERSE_CHARGE), kind=DocumentKind.SMALL_AMOUNT)
    snapshot = replace(snapshot, lines=(replace(snapshot.lines[0], unit_price_minor=1000),))
    assert _errors(snapshot) == {"kind": False}  # § 33 S. 3 UStDV


def test_small_amount_invoice_needs_eur_rate_when_invoiced_in_usd() -> None:
    snapshot = replace(
        example_snapshot(ExampleCase.FOREIGN_CURRENCY), kind=DocumentKind.SMALL_AMOUNT
    )
    snapshot = replace(snapshot, lines=(replace(snapshot.lines[0], unit_price_minor=1000),))
    assert check_invoice(snapshot) == ()  # USD 11.90 = 10.98 EUR
    assert _errors(replace(snapshot, eur_conversion=None)) == {"eur_conversion": True}


def test_reverse_charge_is_incomplete_when_a_vat_id_is_missing() -> None:
    snapshot = example_snapshot(ExampleCase.REVERSE_CHARGE)
    snapshot = replace(
        snapshot,
        seller=replace(snapshot.seller, vat_id=None),
        buyer=replace(snapshot.buyer, vat_id=None),
    )
    assert _errors(snapshot) == {"seller.vat_id": True, "buyer.vat_id": True}


def test_reverse_charge_is_incomplete_when_the_wording_is_missing() -> None:
    snapshot = _with_line_tax(example_snapshot(ExampleCase.REVERSE_CHARGE), note_keys=())
    assert _errors(snapshot) == {"lines[0].tax.note_keys": True, "lines[1].tax.note_keys": True}


def test_kleinunternehmer_needs_old_note_when_supplied_in_2024() -> None:
    snapshot = _with_line_tax(
        example_snapshot(ExampleCase.KLEINUNTERNEHMER_2024),
        note_keys=(NoteKey.KLEINUNTERNEHMER_FROM_2025,),
    )
    problems = check_invoice(snapshot)
    assert [(p.field, p.missing) for p in problems] == [("lines[0].tax.note_keys", True)]
    assert "kleinunternehmer_until_2024" in problems[0].reason


def test_kleinunternehmer_needs_exemption_note_when_supplied_from_2025() -> None:
    snapshot = _with_line_tax(
        example_snapshot(ExampleCase.KLEINUNTERNEHMER_2025),
        note_keys=(NoteKey.KLEINUNTERNEHMER_UNTIL_2024,),
    )
    assert _errors(snapshot) == {"lines[0].tax.note_keys": True}


def test_kleinunternehmer_line_is_invalid_when_it_shows_a_rate() -> None:
    snapshot = _with_line_tax(example_snapshot(ExampleCase.KLEINUNTERNEHMER_2025), rate=D(19))
    with pytest.raises(InvoiceInvalidError) as caught:
        validate_invoice(snapshot)
    assert caught.value.fields == ("lines[0].tax.rate",)


def test_kleinunternehmer_line_is_invalid_when_seller_is_not_flagged() -> None:
    snapshot = example_snapshot(ExampleCase.KLEINUNTERNEHMER_2025)
    snapshot = replace(snapshot, seller=replace(snapshot.seller, kleinunternehmer=False))
    assert _errors(snapshot) == {"seller.kleinunternehmer": False}


def test_out_of_scope_is_incomplete_when_seller_has_no_steuernummer() -> None:
    snapshot = example_snapshot(ExampleCase.OUT_OF_SCOPE)
    snapshot = replace(snapshot, seller=replace(snapshot.seller, tax_number=None))
    assert _errors(snapshot) == {"seller.tax_number": True}  # BR-O-02: VAT ID not allowed


def test_out_of_scope_is_invalid_when_mixed_with_another_category() -> None:
    snapshot = example_snapshot(ExampleCase.OUT_OF_SCOPE)
    domestic = example_snapshot(ExampleCase.DOMESTIC).lines[0]
    snapshot = replace(snapshot, lines=(*snapshot.lines, domestic))
    assert _errors(snapshot) == {"lines": False}  # BR-O-11


def test_treatment_and_category_are_invalid_when_they_disagree() -> None:
    snapshot = _with_line_tax(
        example_snapshot(ExampleCase.REVERSE_CHARGE), category=VatCategory.EXEMPT
    )
    assert _errors(snapshot) == {"lines[0].tax.category": False, "lines[1].tax.category": False}


def test_standard_rated_line_is_invalid_when_rate_is_zero_or_reason_given() -> None:
    snapshot = _with_line_tax(
        example_snapshot(ExampleCase.DOMESTIC), rate=D(0), exemption_reason="Exempt"
    )
    assert _errors(snapshot) == {
        "lines[0].tax.rate": False,
        "lines[0].tax.exemption_reason": False,
        "lines[1].tax.rate": False,
        "lines[1].tax.exemption_reason": False,
    }


def test_exempt_lines_are_invalid_when_one_group_has_two_reasons() -> None:
    snapshot = example_snapshot(ExampleCase.KLEINUNTERNEHMER_2025)
    other = replace(snapshot.lines[0], tax=replace(snapshot.lines[0].tax, exemption_reason="X"))
    assert _errors(replace(snapshot, lines=(snapshot.lines[0], other))) == {
        "lines[1].tax.exemption_reason": False
    }


def test_eu_sme_line_is_incomplete_when_seller_has_no_ex_number() -> None:
    snapshot = example_snapshot(ExampleCase.KLEINUNTERNEHMER_2025)
    tax = LineTax(
        Treatment.EU_SME_EXEMPT,
        VatCategory.EXEMPT,
        D(0),
        exemption_reason="Exempt under the small enterprise scheme",
        note_keys=(NoteKey.EU_SME_EXEMPT,),
        taxing_country="AT",
    )
    snapshot = replace(snapshot, lines=(replace(snapshot.lines[0], tax=tax),))
    assert _errors(snapshot) == {"seller.eu_sme_id": True}
    seller = replace(snapshot.seller, eu_sme_id="DE123456789EX")
    assert _errors(replace(snapshot, seller=seller)) == {}


def test_credit_note_is_incomplete_when_it_names_no_corrected_invoice() -> None:
    snapshot = replace(example_snapshot(ExampleCase.CREDIT_NOTE), credit_note_of=None)
    assert _errors(snapshot) == {"credit_note_of": True}


def test_invoice_is_incomplete_when_amount_is_due_without_due_date_or_terms() -> None:
    snapshot = replace(example_snapshot(ExampleCase.DOMESTIC), due_date=None, payment_terms=None)
    assert _errors(snapshot) == {"due_date": True}  # BR-CO-25


@pytest.mark.parametrize("paid_minor", [-1, 2381])
def test_paid_amount_is_invalid_when_outside_zero_and_gross(paid_minor: int) -> None:
    snapshot = replace(example_snapshot(ExampleCase.SMALL_AMOUNT), paid_minor=paid_minor)
    assert _errors(snapshot) == {"paid_minor": False}


def test_due_date_is_not_needed_when_everything_is_paid() -> None:
    snapshot = replace(example_snapshot(ExampleCase.SMALL_AMOUNT), payment_terms=None)
    assert snapshot.totals.due_minor == 0
    assert _errors(snapshot) == {}


def test_foreign_currency_invoice_is_incomplete_when_vat_has_no_eur_rate() -> None:
    snapshot = replace(example_snapshot(ExampleCase.FOREIGN_CURRENCY), eur_conversion=None)
    assert _errors(snapshot) == {"eur_conversion": True}


def test_line_is_invalid_when_its_currency_differs_from_the_document() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    line = replace(snapshot.lines[0], currency="USD")
    assert _errors(replace(snapshot, lines=(line,))) == {"lines[0].currency": False}


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("lines[0].quantity", {"quantity": D(0)}),
        ("lines[0].unit_price_minor", {"unit_price_minor": -1}),
        ("lines[0].description", {"description": ""}),
    ],
)
def test_line_is_rejected_when_its_values_are_out_of_range(
    field: str, changes: dict[str, object]
) -> None:
    snapshot = example_snapshot(ExampleCase.KLEINUNTERNEHMER_2025)
    line = replace(snapshot.lines[0], **changes)  # type: ignore[arg-type]
    assert field in _errors(replace(snapshot, lines=(line,)))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"accent_color": "red;}body{display:none"}, "seller.accent_color"),
        ({"logo": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}, "seller.logo"),
        ({"vat_id": "811907980"}, "seller.vat_id"),
        (
            {"address": Address("Deutschland", "Str. 1", None, "10115", "Berlin")},
            "seller.address.country",
        ),
    ],
)
def test_seller_branding_and_ids_are_invalid_when_malformed(
    changes: dict[str, object], field: str
) -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    snapshot = replace(snapshot, seller=replace(snapshot.seller, **changes))  # type: ignore[arg-type]
    assert _errors(snapshot) == {field: False}


@pytest.mark.parametrize("bad", ["\x03", "\x00", "\ud800", "\ufffe"], ids=repr)
def test_text_is_invalid_with_its_field_when_xml_cannot_carry_a_character(bad: str) -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    line = replace(snapshot.lines[0], description=f"Hosting{bad}")
    buyer = replace(snapshot.buyer, name=f"Erika{bad}")
    errors = _errors(replace(snapshot, lines=(line,), buyer=buyer))
    assert errors == {"lines[0].description": False, "buyer.name": False}
    with pytest.raises(InvoiceInvalidError):
        validate_invoice(replace(snapshot, lines=(line,)))


def test_tabs_line_breaks_and_any_script_are_fine_when_checked() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    line = replace(snapshot.lines[0], description="Zeile 1\r\n\tZeile 2 — 中文 😀")
    assert check_invoice(replace(snapshot, lines=(line,))) == ()
