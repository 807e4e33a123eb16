"""The German catalog of the portal and dashboard: complete and compiled.

The pages' source strings are English; every one needs a German translation, and the
committed `.mo` (what Flask-Babel reads) must say what the `.po` says, so that nothing has to
be built at start-up.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "saas/portal/translations/de/LC_MESSAGES"
METHODS = [
    ("**/portal/**.py", "python"),
    ("**/dashboard/**.py", "python"),
    ("**/portal/templates/**.html", "jinja2"),
    ("**/dashboard/templates/**.html", "jinja2"),
]


def _source_ids() -> set[str]:
    ids: set[str] = set()
    for _name, _line, message, _comments, _context in extract_from_dir(str(ROOT / "saas"), METHODS):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_every_page_string_has_a_german_translation_when_extracted() -> None:
    with (CATALOG / "messages.po").open("rb") as fh:
        po = read_po(fh)
    translated = {m.id for m in po if m.id and m.string}
    missing = sorted(_source_ids() - translated)
    assert not missing, f"translate these in {CATALOG / 'messages.po'}: {missing}"


def test_compiled_catalog_matches_the_po_file_when_committed() -> None:
    with (CATALOG / "messages.po").open("rb") as fh:
        po = {m.id: m.string for m in read_po(fh) if m.id}
    with (CATALOG / "messages.mo").open("rb") as fh:
        mo = {m.id: m.string for m in read_mo(fh) if m.id}
    assert mo == po, "run: pybabel compile -d saas/portal/translations"
