"""Invoice notes in German and English (TAX_RULES.md §1.1, §1.2, §2.1)."""

from __future__ import annotations

import pytest

from tax import notes
from tax.errors import NoteNotFoundError
from tax.notes import LANGUAGES, NoteKey


@pytest.mark.parametrize("key", list(NoteKey))
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_note_has_a_text_when_rendered_in_each_language(key: NoteKey, lang: str) -> None:
    assert notes.text(key, lang).strip()
    assert notes.text(key.value, lang) == notes.text(key, lang)


@pytest.mark.parametrize(
    ("key", "lang", "wording"),
    [
        (NoteKey.REVERSE_CHARGE, "de", "Steuerschuldnerschaft des Leistungsempfängers"),
        (NoteKey.REVERSE_CHARGE, "en", "Reverse charge"),
        (NoteKey.KLEINUNTERNEHMER_FROM_2025, "de", "Steuerfreie Leistung nach § 19 Abs. 1 UStG"),
        (NoteKey.KLEINUNTERNEHMER_UNTIL_2024, "de", "Gemäß § 19 UStG wird keine Umsatzsteuer"),
        (NoteKey.OUT_OF_SCOPE, "de", "Nicht im Inland steuerbar"),
        (NoteKey.EU_SME_EXEMPT, "de", "Kleinunternehmerregelung des Mitgliedstaats"),
        (NoteKey.NOT_TAXABLE_IN_GERMANY, "en", "Not taxable in Germany"),
    ],
)
def test_note_contains_the_required_wording_when_rendered(
    key: NoteKey, lang: str, wording: str
) -> None:
    assert wording in notes.text(key, lang)


def test_note_defaults_to_german_when_no_language_is_given() -> None:
    assert notes.text(NoteKey.REVERSE_CHARGE).startswith("Steuerschuldnerschaft")


@pytest.mark.parametrize(("key", "lang"), [("nope", "de"), ("reverse_charge", "fr")])
def test_unknown_note_raises_not_found_when_rendered(key: str, lang: str) -> None:
    with pytest.raises(NoteNotFoundError) as info:
        notes.text(key, lang)
    assert info.value.kind == "not_found"


def test_texts_render_several_keys_in_order_when_asked() -> None:
    keys = (NoteKey.OUT_OF_SCOPE.value, NoteKey.REVERSE_CHARGE.value)
    assert notes.texts(keys, "en") == (
        notes.text(NoteKey.OUT_OF_SCOPE, "en"),
        notes.text(NoteKey.REVERSE_CHARGE, "en"),
    )
