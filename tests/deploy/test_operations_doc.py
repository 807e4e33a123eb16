"""docs/operations.md is the configuration reference: every `ABOWERK_*` variable that the
code, the deployment files or the scripts read has a row in one of its tables."""

from __future__ import annotations

import re

from tests.deploy.files import OPERATIONS, ROOT

VARIABLE = re.compile(r"\bABOWERK_[A-Z0-9_]+\b")
# Where variables are read: the packages, the deployment files, the scripts and CI.
SOURCES = ("saas", "billing", "compliance", "tax", "deploy", "scripts", ".ci")
# "" covers Dockerfile and the scripts without an extension
SUFFIXES = {".py", ".yaml", ".yml", ".service", ".toml", ".ini", ".sh", ""}
# Names that look like variables but are not read from the environment.
NOT_ENVIRONMENT = {
    "ABOWERK_SETTINGS",  # the Flask config key holding the parsed Settings object
}


def _variables_in_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for top in SOURCES:
        base = ROOT / top
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in paths:
            if not path.is_file() or path.suffix not in SUFFIXES or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue  # data files
            for name in VARIABLE.findall(text):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return {k: v for k, v in found.items() if k not in NOT_ENVIRONMENT}


def _documented() -> set[str]:
    """Variables named in the first cell of a table row: | `ABOWERK_X` | default | meaning |."""
    rows = re.findall(r"^\|\s*`(ABOWERK_[A-Z0-9_]+)`\s*\|", OPERATIONS.read_text(), re.MULTILINE)
    return set(rows)


def test_every_abowerk_variable_has_a_row_in_the_configuration_reference() -> None:
    in_code = _variables_in_code()
    assert "ABOWERK_DATABASE_URL" in in_code  # the scan does see the code
    missing = {name: where for name, where in in_code.items() if name not in _documented()}
    assert missing == {}, f"document these in docs/operations.md (name: first file): {missing}"


def test_documented_variables_still_exist_when_the_code_changes() -> None:
    stale = _documented() - set(_variables_in_code())
    assert stale == set(), f"docs/operations.md documents variables nothing reads: {stale}"
