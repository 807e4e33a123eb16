"""Loading of the CSV rule tables shipped in :mod:`tax.data` (read once at import)."""

from __future__ import annotations

import csv
import io
from datetime import date
from importlib.resources import files


def read_table(name: str) -> list[dict[str, str]]:
    """The rows of ``tax/data/<name>`` as dictionaries keyed by the header line."""
    raw = files("tax.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(raw)))


def parse_date(text: str) -> date:
    """An ISO 8601 calendar date."""
    return date.fromisoformat(text)


def parse_optional_date(text: str) -> date | None:
    """An ISO 8601 date, or None for an empty cell (open-ended validity)."""
    return date.fromisoformat(text) if text else None
