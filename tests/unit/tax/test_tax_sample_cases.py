"""The shared sample cases (/work/shared/tax/sample_cases.json) through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tax.cli import tax_cli

REPO = Path(__file__).resolve().parents[3]
SAMPLE_CASES = REPO / ".." / "shared" / "tax" / "sample_cases.json"
CHECKED = ("treatment", "taxing_country", "rate", "vat")


def _samples() -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = json.loads(SAMPLE_CASES.read_text(encoding="utf-8"))
    return samples


def test_sample_file_has_all_24_cases_when_read_from_beside_the_repository() -> None:
    assert len(_samples()) == 24


def test_every_sample_case_gives_the_expected_decision_when_decided_through_the_cli() -> None:
    samples = _samples()
    # The sample file wraps each case as {"id", "input", "expect"}: feed the inputs.
    cases = json.dumps([{"id": s["id"], **s["input"]} for s in samples])
    result = CliRunner().invoke(tax_cli, ["decide"], input=cases)
    assert result.exit_code == 0, result.output
    decisions = json.loads(result.output)
    got = {d["id"]: {key: d.get(key) for key in CHECKED} for d in decisions}
    want = {s["id"]: {key: s["expect"][key] for key in CHECKED} for s in samples}
    assert got == want


@pytest.mark.parametrize("sample", _samples(), ids=lambda s: f"case-{s['id']}")
def test_sample_case_matches_when_decided_alone(sample: dict[str, Any]) -> None:
    result = CliRunner().invoke(tax_cli, ["decide"], input=json.dumps([sample["input"]]))
    (decision,) = json.loads(result.output)
    assert {key: decision[key] for key in CHECKED} == sample["expect"]


def test_module_entry_point_decides_the_sample_cases_when_run_with_python_m(
    tmp_path: Path,
) -> None:
    samples = _samples()
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([s["input"] for s in samples]), encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "tax.cli", "decide", str(cases)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    decisions = json.loads(completed.stdout)
    assert [{key: d[key] for key in CHECKED} for d in decisions] == [s["expect"] for s in samples]
