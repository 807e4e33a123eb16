"""Input text must be printable in an XML e-invoice (XML 1.0 Char) and storable in
PostgreSQL text."""

from __future__ import annotations

import marshmallow as ma
import pytest

from saas.kernel.text import printable


@pytest.mark.parametrize(
    "text", ["Müller GmbH", "Hof 2\nHinterhaus", "a\tb\r\nc", "山田 🚀", "\ue000\ufffd"]
)
def test_printable_accepts_text_an_xml_document_can_carry(text: str) -> None:
    printable(text)


@pytest.mark.parametrize(
    "text", ["a\x00b", "bell\x07", "esc\x1b[0m", "\x0b", "\ud800", "\ufffe", "\uffff"]
)
def test_printable_refuses_control_characters_and_non_characters(text: str) -> None:
    with pytest.raises(ma.ValidationError):
        printable(text)
