"""The ``abowerk tax`` CLI and its JSON case format (tax.cases)."""

from __future__ import annotations

import json
import runpy
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tax.cases import decide_case, decision_to_json, parse_case
from tax.cli import tax_cli
from tax.decide import decide
from tests.unit.tax.tax_factories import consumer, counters_a, seller_a, supply

GOOD: dict[str, Any] = {
    "id": "good",
    "seller": {"country": "DE", "vat_id": "DE811907980", "oss_registered": True,
               "eu_b2c_previous_year": "25000.00"},
    "customer": {"country": "FR"},
    "supplied_on": "2026-03-10",
    "net": "100.00",
}  # fmt: skip


def _with(**changes: Any) -> dict[str, Any]:
    case = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        target = case
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is ...:
            del target[leaf]
        else:
            target[leaf] = value
    return case


def _run(cases: object, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(tax_cli, ["decide", *args], input=json.dumps(cases))
    return result.exit_code, json.loads(result.output) if result.exit_code == 0 else result.output


@pytest.mark.parametrize(
    ("case", "code", "field"),
    [
        (42, "tax.case_format", "case"),
        (_with(netto="1"), "tax.case_format", "case"),
        (_with(seller=...), "tax.case_format", "seller"),
        (_with(seller="DE"), "tax.case_format", "seller"),
        (_with(seller__oss_registerd=True), "tax.case_format", "seller"),
        (_with(seller__country=...), "tax.case_format", "seller.country"),
        (_with(seller__country="XX"), "tax.case_format", "seller.country"),
        (_with(seller__country="US"), "tax.unsupported_seller", "seller.country"),
        (_with(seller__kleinunternehmer="yes"), "tax.case_format", "seller.kleinunternehmer"),
        (_with(seller__turnover_current_year="abc"), "tax.case_format",
         "seller.turnover_current_year"),
        (_with(seller__turnover_current_year=True), "tax.case_format",
         "seller.turnover_current_year"),
        (_with(seller__turnover_current_year=[1]), "tax.case_format",
         "seller.turnover_current_year"),
        (_with(seller__forecast_current_year="NaN"), "tax.case_format",
         "seller.forecast_current_year"),
        (_with(seller__eu_b2c_current_year="1e20"), "tax.case_format",
         "seller.eu_b2c_current_year"),
        (_with(seller__founded_on="2025-13-01"), "tax.case_format", "seller.founded_on"),
        (_with(seller__founded_on=20250301), "tax.case_format", "seller.founded_on"),
        (_with(seller__eu_sme_countries="AT"), "tax.case_format", "seller.eu_sme_countries"),
        (_with(seller__eu_sme_countries=["XX"]), "tax.case_format", "seller.eu_sme_countries"),
        (_with(customer=...), "tax.case_format", "customer"),
        (_with(customer__name="ACME"), "tax.case_format", "customer"),
        (_with(customer__country=49), "tax.case_format", "customer.country"),
        (_with(customer__vat_id_status="maybe"), "tax.case_format", "customer.vat_id_status"),
        (_with(customer__evidence="FR"), "tax.case_format", "customer.evidence"),
        (_with(customer__evidence=["FR"]), "tax.case_format", "customer.evidence[0]"),
        (_with(customer__evidence=[{"kind": "bank", "country": "FR", "source": "psp"}]),
         "tax.case_format", "customer.evidence[0]"),
        (_with(customer__evidence=[{"kind": "cookie", "country": "FR"}]), "tax.case_format",
         "customer.evidence[0].kind"),
        (_with(customer__evidence=[{"kind": "bank", "country": "XX"}]), "tax.case_format",
         "customer.evidence[0].country"),
        (_with(customer__evidence=[{"kind": "bank", "country": "FR", "third_party": "yes"}]),
         "tax.case_format", "customer.evidence[0].third_party"),
        (_with(customer__country=...), "tax.location_unproven", "customer.country"),
        (_with(customer__evidence=[{"kind": "billing_address", "country": "FR"},
                                   {"kind": "ip_address", "country": "BE"}]),
         "tax.location_conflict", "customer.evidence"),
        (_with(supplied_on=...), "tax.case_format", "supplied_on"),
        (_with(net=...), "tax.case_format", "net"),
        (_with(currency="eur"), "tax.case_format", "currency"),
        (_with(currency=5), "tax.case_format", "case.currency"),
        (_with(kind="consulting"), "tax.case_format", "kind"),
        (_with(supplied_on="2015-06-01"), "tax.rate_not_found", None),
    ],
)  # fmt: skip
def test_malformed_case_yields_an_error_object_while_others_are_decided_when_run(
    case: object, code: str, field: str | None
) -> None:
    exit_code, output = _run([GOOD, case, GOOD])
    assert exit_code == 0
    first, bad, last = output
    assert first == last
    assert first["treatment"] == "oss_destination"
    assert bad["error"]["code"] == code
    assert bad["error"].get("field") == field
    assert bad["error"]["message"]
    assert bad["error"]["kind"] in {"invalid", "not_found", "conflict"}
    if isinstance(case, dict) and "id" in case:
        assert bad["id"] == case["id"]


def test_decision_lists_every_field_with_notes_in_both_languages_when_printed() -> None:
    case = _with(customer={"country": "AT", "vat_id": "ATU13585627", "vat_id_status": "valid"})
    exit_code, (decision,) = _run([case])
    assert exit_code == 0
    assert decision == {
        "id": "good",
        "treatment": "reverse_charge",
        "taxing_country": "AT",
        "place_of_supply": "AT",
        "rate": "0",
        "net": "100.00",
        "vat": "0.00",
        "gross": "100.00",
        "currency": "EUR",
        "category": "AE",
        "exemption_reason_code": "VATEX-EU-AE",
        "exemption_reason": "Reverse charge",
        "legal_basis": decision["legal_basis"],
        "notes": ["reverse_charge"],
        "note_texts": {
            "de": ["Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)."],
            "en": [
                "Reverse charge: the recipient is liable for the VAT "
                "(Article 196 Council Directive 2006/112/EC)."
            ],
        },
        "alerts": [],
        "customer_is_business": True,
        "oss_reportable": False,
        "ec_sales_list": True,
        "counts_toward_turnover": False,
        "counts_toward_eu_b2c": False,
        "counts_toward_union_turnover": True,
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # JSON numbers are read as Decimal, never float.
        ({"net": 10.5, "customer": {"country": "FI"}}, ("25.5", "2.68")),
        ({"net": 100}, ("20", "20.00")),
        ({"net": " 100.00 ", "currency": "USD", "net_eur": "90.00"}, ("20", "20.00")),
        ({"kind": "electronic", "customer": {"country": "GR", "postal_code": "10431"}},
         ("24", "24.00")),
        ({"customer": {"country": None, "evidence": [
            {"kind": "billing_address", "country": "FR"},
            {"kind": "bank", "country": "FR", "third_party": True}]}}, ("20", "20.00")),
        ({"customer": {"country": "AT", "is_business": True}}, ("20", "20.00")),
        ({"seller": {**GOOD["seller"], "country": "el", "vat_id": "  "}}, ("20", "20.00")),
    ],
)  # fmt: skip
def test_well_formed_variants_are_decided_when_fields_are_optional_or_numbers(
    changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    exit_code, (decision,) = _run([{**GOOD, **changes}])
    assert exit_code == 0, decision
    assert (decision["rate"], decision["vat"]) == expected


KU_CASE: dict[str, Any] = {
    "seller": {"country": "DE", "tax_number": "21/815/08150", "kleinunternehmer": True,
               "turnover_previous_year": "20000.00", "turnover_current_year": "99000.00",
               "founded_on": None, "eu_sme_countries": ["AT"], "eu_sme_id": "DE123456789EX",
               "destination_option_since": "2025-01-01", "forecast_current_year": "30000"},
    "customer": {"country": "DE"},
    "supplied_on": "2025-06-01",
    "net": "1000.00",
}  # fmt: skip


@pytest.mark.parametrize(
    ("args", "case", "treatment", "notes"),
    [
        ((), KU_CASE, "kleinunternehmer_exempt", ["kleinunternehmer_from_2025"]),
        (("--taxable-at-exact-limit",), KU_CASE, "domestic", []),
        (("--no-ku-reverse-charge-wording",),
         {**KU_CASE, "customer": {"country": "AT", "vat_id": "ATU13585627",
                                  "vat_id_status": "valid"}},
         "reverse_charge", ["not_taxable_in_germany"]),
        (("--founding-year-crossing", "forecast"),
         {**KU_CASE, "seller": {**KU_CASE["seller"], "founded_on": "2025-02-01",
                                "turnover_previous_year": None}},
         "domestic", []),
    ],
)  # fmt: skip
def test_policy_options_change_the_unsettled_defaults_when_given(
    args: tuple[str, ...], case: dict[str, Any], treatment: str, notes: list[str]
) -> None:
    exit_code, (decision,) = _run([case], *args)
    assert exit_code == 0
    assert (decision["treatment"], decision["notes"]) == (treatment, notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not valid JSON"), ('{"seller": {}}', "must be a JSON array")],
)
def test_input_is_refused_when_not_a_json_array(text: str, message: str) -> None:
    result = CliRunner().invoke(tax_cli, ["decide"], input=text)
    assert result.exit_code == 1
    assert message in result.output


def test_cases_are_read_from_a_file_when_a_path_is_given(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([GOOD]), encoding="utf-8")
    result = CliRunner().invoke(tax_cli, ["decide", str(path)])
    assert json.loads(result.output)[0]["treatment"] == "oss_destination"


def test_module_runs_the_group_when_executed_as_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([GOOD]), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["tax.cli", "decide", str(path)])
    # Run a fresh copy as __main__ (the imported module stays untouched).
    monkeypatch.delitem(sys.modules, "tax.cli")
    with pytest.raises(SystemExit) as info:
        runpy.run_module("tax.cli", run_name="__main__")
    assert info.value.code == 0
    assert json.loads(capsys.readouterr().out)[0]["vat"] == "20.00"


def test_case_helpers_round_trip_when_used_directly() -> None:
    case = parse_case(GOOD)
    assert case.case_id == "good"
    assert parse_case({**GOOD, "id": None}).case_id is None
    decision = decide(seller_a(), counters_a(), consumer("FR"), supply())
    assert decision_to_json(decision)["rate"] == "20"
    assert decide_case([1, 2])["error"]["field"] == "case"
    assert decide_case({**GOOD, "id": 7})["id"] == 7
    assert Decimal(decide_case(GOOD)["gross"]) == Decimal("120.00")


# --- oss-return ---------------------------------------------------------------------------

RECORDS = [
    {"supplied_on": "2026-03-10", "member_state": "FR", "rate": "20", "net": "100.00",
     "vat": "20.00"},
    {"supplied_on": "2026-03-10", "member_state": "AT", "rate": "20", "net": "1000.00",
     "vat": "200.00", "currency": "EUR", "rate_type": "STANDARD"},
    {"supplied_on": "2025-12-10", "member_state": "AT", "rate": "20", "net": "-10.00",
     "vat": "-2.00", "corrects": "2025-Q4"},
]  # fmt: skip


def test_oss_return_command_prints_the_bzst_csv_when_asked_for_csv() -> None:
    result = CliRunner().invoke(
        tax_cli,
        ["oss-return", "--quarter", "2026-Q1", "--format", "csv"],
        input=json.dumps(RECORDS),
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        "#v2.0\n1,AT,,,,\n2,AT,STANDARD,20.00,1000.00,200.00\n"
        "1,FR,,,,\n2,FR,STANDARD,20.00,100.00,20.00\n"
    )


def test_oss_return_command_prints_json_when_no_format_is_given() -> None:
    result = CliRunner().invoke(tax_cli, ["oss-return", "--quarter", "2026-q1"],
                                input=json.dumps(RECORDS))  # fmt: skip
    data = json.loads(result.output)
    assert (data["total_vat"], data["total_vat_due"]) == ("220.00", "218.00")
    assert data["corrections"][0]["period"] == "2025-Q4"


@pytest.mark.parametrize(
    ("args", "records", "exit_code", "message"),
    [
        (["--quarter", "2026-Q9"], RECORDS, 2, "quarter"),
        (["--quarter", "2026-Q1"], ["x"], 1, "records[0] must be a JSON object"),
        (["--quarter", "2026-Q1"], [{"supplied_on": "2026-01-01"}], 1, "missing field"),
        (["--quarter", "2026-Q1"], [{**RECORDS[0], "net": "abc"}], 1, "records[0]"),
        (["--quarter", "2026-Q1"], [{**RECORDS[0], "rate_type": "SUPER"}], 1, "records[0]"),
        (["--quarter", "2026-Q1"], [{**RECORDS[0], "corrects": "Q4"}], 1, "records[0]"),
        (["--quarter", "2026-Q1"], [{**RECORDS[0], "member_state": "DE"}], 1,
         "tax.oss_record_invalid"),
    ],
)  # fmt: skip
def test_oss_return_command_reports_bad_input_when_records_are_malformed(
    args: list[str], records: list[object], exit_code: int, message: str
) -> None:
    result = CliRunner().invoke(tax_cli, ["oss-return", *args], input=json.dumps(records))
    assert result.exit_code == exit_code
    assert message in result.output
