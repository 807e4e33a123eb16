"""`abowerk metrics movements`: the pure command over an event file."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from billing.metrics.cli import metrics_cli
from billing.metrics.eventfile import EventFileError, read_events


def line(customer: str, sub: str, at: str, mrr: Any, ccy: str = "EUR") -> str:
    return json.dumps(
        {"customer_id": customer, "subscription_id": sub, "at": at, "mrr": mrr, "currency": ccy}
    )


EVENTS = [
    line("c1", "s1", "2025-01-15T10:00:00Z", "49.00"),
    line("c2", "s2", "2025-01-20T10:00:00Z", "19.00"),
    line("c1", "s1", "2025-02-15T10:00:00Z", "99.00"),
    # 00:30 on 1 March in Berlin: a March churn, whatever UTC says
    line("c2", "s2", "2025-02-28T23:30:00Z", "0"),
    line("c2", "s3", "2025-04-01T10:00:00Z", "19.00"),
    # plan switch as cancel + create at one instant: one contraction
    line("c1", "s1", "2025-04-20T08:00:00Z", "0.00"),
    line("c1", "s4", "2025-04-20T08:00:00Z", "79.00"),
]


def run(lines: list[str], *args: str) -> Any:
    return CliRunner().invoke(
        metrics_cli, ["movements", "--from", "2025-01", "--to", "2025-04", *args],
        input="\n".join(lines) + "\n",
    )  # fmt: skip


def test_movements_prints_each_month_with_decimal_amounts_when_file_is_valid() -> None:
    result = run(list(reversed(EVENTS)))  # unsorted on purpose
    assert result.exit_code == 0, result.output
    months = json.loads(result.output)["months"]
    assert [m["month"] for m in months] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert months[0] == {
        "month": "2025-01",
        "starting_mrr": "0.00",
        "new": "68.00",
        "expansion": "0.00",
        "contraction": "0.00",
        "churn": "0.00",
        "reactivation": "0.00",
        "ending_mrr": "68.00",
        "customers_start": 0,
        "customers_end": 2,
        "churned_customers": 0,
        "logo_churn_rate": None,
        "gross_mrr_churn_rate": None,
        "net_mrr_churn_rate": None,
    }
    feb, mar, apr = months[1:]
    assert (feb["expansion"], feb["ending_mrr"], feb["churn"]) == ("50.00", "118.00", "0.00")
    assert (mar["churn"], mar["churned_customers"], mar["logo_churn_rate"]) == (
        "-19.00",
        1,
        "0.5000",
    )
    assert mar["gross_mrr_churn_rate"] == "0.1610"  # 19 / 118
    assert (apr["reactivation"], apr["contraction"], apr["ending_mrr"]) == (
        "19.00",
        "-20.00",
        "98.00",
    )
    assert apr["net_mrr_churn_rate"] == "0.0101"  # −(−20 + 19) / 99
    kinds = ("new", "expansion", "contraction", "churn", "reactivation")
    for m in months:  # the identity, exactly, in the printed decimals
        moved = sum(Decimal(m[k]) for k in kinds)
        assert Decimal(m["starting_mrr"]) + moved == Decimal(m["ending_mrr"])


def test_timezone_option_moves_boundary_events_when_given() -> None:
    result = run(EVENTS, "--timezone", "UTC")
    months = json.loads(result.output)["months"]
    assert months[1]["churn"] == "-19.00" and months[2]["churn"] == "0.00"


def test_events_before_from_count_for_start_when_range_begins_later() -> None:
    result = CliRunner().invoke(
        metrics_cli, ["movements", "--from", "2025-04", "--to", "2025-04"],
        input="\n".join(EVENTS),
    )  # fmt: skip
    (april,) = json.loads(result.output)["months"]
    assert (april["starting_mrr"], april["customers_start"]) == ("99.00", 1)
    assert april["reactivation"] == "19.00"  # c2 had MRR before: not new


def test_bad_lines_are_reported_by_number_and_nothing_computed_when_file_has_errors() -> None:
    lines = [
        EVENTS[0],
        "{not json",
        line("c1", "s9", "2025-01-15T10:00:00", "1.00"),  # no offset
        line("c1", "s9", "2025-01-15T10:00:00Z", "1.001"),  # sub-cent
        line("c1", "s9", "2025-01-15T10:00:00Z", "-1"),
        line("c1", "s9", "2025-01-15T10:00:00Z", 1.5, "euro"),
        json.dumps({"customer_id": "c1"}),
        "",
        line("c2", "s1", "2025-01-16T10:00:00Z", "1.00"),  # s1 belongs to c1
        "[1, 2]",
    ]
    result = run(lines)
    assert result.exit_code == 1
    assert result.stdout == ""
    for number in (2, 3, 4, 5, 6, 7, 9, 10):
        assert f"line {number}:" in result.stderr
    assert "line 1:" not in result.stderr and "line 8:" not in result.stderr
    assert "8 bad line(s), nothing computed" in result.stderr
    assert "missing subscription_id, at, mrr, currency" in result.stderr


def test_numbers_in_json_are_read_as_decimals_when_mrr_is_not_a_string() -> None:
    (change,) = read_events([line("c1", "s1", "2025-01-15T10:00:00+01:00", 49.9)])
    assert change.mrr == 4990
    (yen,) = read_events([line("c1", "s1", "2025-01-15T10:00:00Z", "4900", "JPY")])
    assert yen.mrr == 4900
    with pytest.raises(EventFileError, match="more than 0 decimal places"):
        read_events([line("c1", "s1", "2025-01-15T10:00:00Z", "49.5", "JPY")])


def test_several_currencies_need_a_choice_when_file_mixes_them() -> None:
    lines = [*EVENTS, line("c9", "s9", "2025-02-01T10:00:00Z", "59.00", "USD")]
    result = run(lines)
    assert result.exit_code == 2 and "--currency" in result.output
    usd = json.loads(run(lines, "--currency", "USD").output)
    assert usd["currency"] == "USD" and usd["months"][1]["new"] == "59.00"


def test_empty_file_gives_zero_months_when_nothing_happened() -> None:
    result = run([])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["currency"] is None
    assert {m["ending_mrr"] for m in document["months"]} == {"0.00"}


def test_options_are_checked_when_invalid() -> None:
    runner = CliRunner()
    bad_month = runner.invoke(
        metrics_cli, ["movements", "--from", "2025-13", "--to", "2025-12"], input=""
    )
    assert bad_month.exit_code == 2 and "--from" in bad_month.output
    backwards = runner.invoke(
        metrics_cli, ["movements", "--from", "2025-05", "--to", "2025-01"], input=""
    )
    assert backwards.exit_code == 2
    args = ["movements", "--from", "2025-01", "--to", "2025-01", "--timezone", "Mars/Base"]
    zone = runner.invoke(metrics_cli, args, input="")
    assert zone.exit_code == 2 and "Mars/Base" in zone.output
