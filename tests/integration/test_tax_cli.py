"""`abowerk tax decide` through the installed console script, as a tax adviser runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "tax" / "sample_cases.json"
CHECKED = ("treatment", "taxing_country", "rate", "vat")


def _abowerk() -> str:
    found = shutil.which("abowerk", path=str(Path(os.sys.executable).parent))
    assert found, "the abowerk console script is not installed in this environment"
    return found


def test_console_script_decides_every_sample_case_when_given_the_file(tmp_path: Path) -> None:
    samples = json.loads(SAMPLES.read_text())
    cases = [s["input"] for s in samples]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    result = subprocess.run(
        [_abowerk(), "tax", "decide", str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "ABOWERK_VAR_DIR": str(tmp_path / "var")},
    )
    assert result.returncode == 0, result.stderr
    decisions = json.loads(result.stdout)
    assert len(decisions) == len(samples)
    for sample, decision in zip(samples, decisions, strict=True):
        got = {k: decision[k] for k in CHECKED}
        assert got == {k: sample["expect"][k] for k in CHECKED}, sample["id"]


def test_console_script_reads_stdin_and_reports_a_bad_case_without_stopping(
    tmp_path: Path,
) -> None:
    good = json.loads(SAMPLES.read_text())[0]["input"]
    result = subprocess.run(
        [_abowerk(), "tax", "decide"],
        input=json.dumps([{"seller": {"country": "DE"}, "net": "abc"}, good]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "ABOWERK_VAR_DIR": str(tmp_path / "var")},
    )
    decisions = json.loads(result.stdout)
    assert "error" in decisions[0]
    assert decisions[1]["treatment"] == "domestic"
