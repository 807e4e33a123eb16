"""The snapshot model: computed totals (BR-CO-17), credit-note amounts, canonical JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from billing.documents.errors import SnapshotIntegrityError
from billing.documents.examples import ExampleCase, all_examples, example_snapshot
from billing.documents.model import (
    DocumentKind,
    InvoiceLine,
    InvoiceSnapshot,
    LineTax,
    canonical_json,
    content_sha256,
    snapshot_from_json,
    snapshot_to_dict,
    with_number,
)
from tax.model import Treatment, VatCategory
from tax.notes import NoteKey

D = Decimal
S19 = LineTax(Treatment.DOMESTIC, VatCategory.STANDARD, D("19"))
S7 = LineTax(Treatment.DOMESTIC, VatCategory.STANDARD, D("7"))
AE = LineTax(
    Treatment.REVERSE_CHARGE,
    VatCategory.REVERSE_CHARGE,
    D("0"),
    "VATEX-EU-AE",
    "Reverse charge",
    (NoteKey.REVERSE_CHARGE,),
)


def _with_lines(*lines: InvoiceLine, currency: str = "EUR") -> InvoiceSnapshot:
    return replace(example_snapshot(ExampleCase.DOMESTIC), lines=lines, currency=currency)


def _line(quantity: str, unit_price_minor: int, tax: LineTax = S19) -> InvoiceLine:
    return InvoiceLine("Item", D(quantity), unit_price_minor, "EUR", tax)


@pytest.mark.parametrize(
    ("quantity", "unit_price_minor", "net_minor"),
    [
        ("1", 999, 999),
        ("0.5", 999, 500),
        ("0.5", 997, 499),
        ("3", 333, 999),
        ("0.3333", 3000, 1000),
    ],
)
def test_line_net_is_rounded_half_up_when_quantity_times_price_has_fractions(
    quantity: str, unit_price_minor: int, net_minor: int
) -> None:
    assert _line(quantity, unit_price_minor).net_minor == net_minor


def test_vat_is_rounded_on_summed_net_when_lines_share_a_rate() -> None:
    # three lines of 0.02 at 19 %: line by line 0.0038 rounds to 0.00 each; BR-CO-17
    # rounds 0.06 × 19 % = 0.0114 once, to 0.01
    totals = _with_lines(_line("1", 2), _line("1", 2), _line("1", 2)).totals
    assert totals.vat_minor == 1
    assert [(g.taxable_minor, g.vat_minor) for g in totals.groups] == [(6, 1)]


def test_groups_are_split_by_category_and_rate_when_lines_mix_them() -> None:
    totals = _with_lines(_line("1", 10000, S7), _line("2", 5000), _line("1", 12345, AE)).totals
    groups = [(g.category.value, g.rate, g.taxable_minor, g.vat_minor) for g in totals.groups]
    assert groups == [
        ("AE", D("0"), 12345, 0),
        ("S", D("7"), 10000, 700),
        ("S", D("19"), 10000, 1900),
    ]
    assert (totals.net_minor, totals.vat_minor, totals.gross_minor) == (32345, 2600, 34945)
    assert totals.groups[0].exemption_reason_code == "VATEX-EU-AE"


def test_totals_cannot_be_passed_in_when_constructing_a_snapshot() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    with pytest.raises(TypeError):
        InvoiceSnapshot(  # type: ignore[call-arg]
            kind=snapshot.kind,
            number=snapshot.number,
            issue_date=snapshot.issue_date,
            supply_date=snapshot.supply_date,
            seller=snapshot.seller,
            buyer=snapshot.buyer,
            lines=snapshot.lines,
            totals=snapshot.totals,
        )


def test_vat_in_eur_is_converted_per_group_when_invoice_currency_is_usd() -> None:
    totals = example_snapshot(ExampleCase.FOREIGN_CURRENCY).totals
    assert totals.vat_minor == 9500  # USD 95.00
    assert totals.vat_eur_minor == 8762  # 95.00 / 1.0842 = 87.6222 → 87.62
    assert [g.vat_eur_minor for g in totals.groups] == [8762]


def test_vat_in_eur_is_absent_when_invoice_is_in_eur() -> None:
    assert example_snapshot(ExampleCase.DOMESTIC).totals.vat_eur_minor is None


def test_credit_note_keeps_positive_amounts_and_a_negative_sign_when_correcting() -> None:
    note = example_snapshot(ExampleCase.CREDIT_NOTE)
    assert note.kind is DocumentKind.CREDIT_NOTE
    assert note.kind.type_code == "381"
    assert (note.totals.net_minor, note.totals.vat_minor, note.totals.gross_minor) == (
        1998,
        380,
        2378,
    )
    assert note.sign == -1
    assert example_snapshot(ExampleCase.DOMESTIC).sign == 1


def test_legal_note_keys_appear_once_when_several_lines_carry_the_same_note() -> None:
    snapshot = example_snapshot(ExampleCase.REVERSE_CHARGE)
    snapshot = replace(snapshot, note_keys=(NoteKey.REVERSE_CHARGE,))
    assert len(snapshot.lines) == 2
    assert snapshot.legal_note_keys == (NoteKey.REVERSE_CHARGE,)


def test_line_tax_copies_the_decision_when_built_from_it() -> None:
    tax = example_snapshot(ExampleCase.OSS).lines[0].tax
    assert (tax.treatment, tax.category, tax.rate, tax.taxing_country) == (
        Treatment.OSS_DESTINATION,
        VatCategory.STANDARD,
        D("20"),
        "FR",
    )


def test_canonical_json_is_identical_when_snapshots_differ_only_in_decimal_notation() -> None:
    first = _with_lines(_line("1", 999))
    second = _with_lines(InvoiceLine("Item", D("1.000"), 999, "EUR", replace(S19, rate=D("19.00"))))
    assert first == second
    assert canonical_json(first) == canonical_json(second)
    assert content_sha256(first) == content_sha256(second)


def test_canonical_json_has_sorted_keys_and_the_computed_totals_when_serialised() -> None:
    data = canonical_json(example_snapshot(ExampleCase.DOMESTIC))
    parsed = json.loads(data)
    assert list(parsed) == sorted(parsed)
    assert parsed["format"] == "abowerk.invoice_snapshot/1"
    assert parsed["totals"]["gross_minor"] == 29625
    assert parsed["lines"][0]["quantity"] == "1"
    assert b" " not in data.split(b'"logo"')[0][-2:]  # compact separators
    assert data == canonical_json(example_snapshot(ExampleCase.DOMESTIC))


@pytest.mark.parametrize("case", list(ExampleCase), ids=str)
def test_canonical_json_equals_one_sorted_dump_when_the_seller_is_spliced_in(
    case: ExampleCase,
) -> None:
    # canonical_json encodes the seller once per seller object and splices it in; the bytes
    # must stay those of one json.dumps of the whole snapshot, or stored hashes would break
    snapshot = all_examples()[case]
    reference = json.dumps(
        snapshot_to_dict(snapshot), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert canonical_json(snapshot) == reference
    other_seller = replace(snapshot, seller=replace(snapshot.seller, legal_name="Andere GmbH"))
    assert b'"legal_name":"Andere GmbH"' in canonical_json(other_seller)
    assert canonical_json(snapshot) == reference  # the cache keeps sellers apart


def test_with_number_keeps_the_totals_and_changes_only_the_numbering_fields() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    numbered = with_number(snapshot, "RE-2026-99999", payment_reference="RE-42", due_date=None)
    assert numbered == replace(
        snapshot, number="RE-2026-99999", payment_reference="RE-42", due_date=None
    )
    assert numbered.totals == snapshot.totals
    assert snapshot.number != "RE-2026-99999"  # the original is untouched


@pytest.mark.parametrize("case", list(ExampleCase), ids=str)
def test_snapshot_round_trips_when_read_back_from_canonical_json(case: ExampleCase) -> None:
    snapshot = all_examples()[case]
    restored = snapshot_from_json(canonical_json(snapshot))
    assert restored == snapshot
    assert restored.totals == snapshot.totals
    assert content_sha256(restored) == content_sha256(snapshot)


def test_snapshot_from_json_raises_integrity_error_when_totals_were_tampered() -> None:
    data = json.loads(canonical_json(example_snapshot(ExampleCase.DOMESTIC)))
    data["lines"][0]["unit_price_minor"] = 19800
    with pytest.raises(SnapshotIntegrityError) as caught:
        snapshot_from_json(json.dumps(data).encode())
    assert caught.value.code == "invoice_snapshot_corrupt"
    assert caught.value.fields == ("totals",)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"not json", "$"),
        (b'{"format": "something/else"}', "format"),
        (b'{"format": "abowerk.invoice_snapshot/1", "kind": "invoice"}', "$"),
    ],
)
def test_snapshot_from_json_raises_integrity_error_when_document_is_malformed(
    payload: bytes, field: str
) -> None:
    with pytest.raises(SnapshotIntegrityError) as caught:
        snapshot_from_json(payload)
    assert caught.value.fields == (field,)


def test_content_sha256_changes_when_any_shown_value_changes() -> None:
    snapshot = example_snapshot(ExampleCase.DOMESTIC)
    changed = replace(snapshot, issue_date=date(2026, 12, 2))
    assert content_sha256(changed) != content_sha256(snapshot)
    assert len(content_sha256(snapshot)) == 64
