from __future__ import annotations

from pathlib import Path

ALLOWLIST = Path(__file__).resolve().parents[3] / "security" / "pip-audit-allowlist.txt"


def test_every_allowlisted_advisory_names_a_reason_when_listed() -> None:
    for number, line in enumerate(ALLOWLIST.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        advisory, _, reason = line.strip().partition(" ")
        assert advisory.startswith(("GHSA-", "PYSEC-", "CVE-")), f"line {number}: {advisory}"
        assert len(reason.strip()) >= 20, f"line {number}: {advisory} needs a reason"
