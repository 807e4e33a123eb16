"""Invoice notes (German and English), keyed so that invoices render them.

A decision lists the keys (:attr:`tax.model.TaxDecision.note_keys`); an invoice renders
``text(key, lang)``. Wording and sources:

* ``reverse_charge``: § 14a Abs. 1 / Abs. 5 UStG require the words
  "Steuerschuldnerschaft des Leistungsempfängers"; UStAE 14a.1 Abs. 2 allows the
  equivalent foreign wording "Reverse charge" (Art. 226 Nr. 11a VAT Directive).
  The invoice must also show both VAT IDs (§ 14a Abs. 1 S. 3 UStG).
* ``kleinunternehmer_from_2025``: § 34a UStDV requires "a note that the supply is exempt";
  the wording is the reference's suggestion (TAX_RULES.md §1.2 ⚠️). No rate and no VAT
  amount may be shown (§ 14c UStG otherwise).
* ``kleinunternehmer_until_2024``: customary wording under old § 19 Abs. 1 UStG
  (TAX_RULES.md §1.1).
* ``out_of_scope``: place of supply outside the EU (Art. 44 / 58 VAT Directive,
  § 3a Abs. 2 / Abs. 5 UStG); the invoice shows no VAT (EN 16931 category O).
* ``eu_sme_exempt``: exemption under the small-enterprise scheme of the member state of
  supply (Art. 284 ff. VAT Directive, § 19a UStG); the invoice also shows the ``EX``
  number. The member state's own wording is unverified (TAX_RULES.md §8 vector 43).
* ``not_taxable_in_germany``: a Kleinunternehmer's B2B supply abroad when the tenant's
  adviser rejects the reverse-charge wording (:class:`tax.model.TaxPolicy`).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from tax.errors import NoteNotFoundError

LANGUAGES = ("de", "en")


class NoteKey(StrEnum):
    """Keys of invoice notes."""

    REVERSE_CHARGE = "reverse_charge"
    OUT_OF_SCOPE = "out_of_scope"
    KLEINUNTERNEHMER_FROM_2025 = "kleinunternehmer_from_2025"
    KLEINUNTERNEHMER_UNTIL_2024 = "kleinunternehmer_until_2024"
    EU_SME_EXEMPT = "eu_sme_exempt"
    NOT_TAXABLE_IN_GERMANY = "not_taxable_in_germany"


_TEXTS: MappingProxyType[str, MappingProxyType[str, str]] = MappingProxyType(
    {
        NoteKey.REVERSE_CHARGE: MappingProxyType(
            {
                "de": "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge).",
                "en": "Reverse charge: the recipient is liable for the VAT "
                "(Article 196 Council Directive 2006/112/EC).",
            }
        ),
        NoteKey.OUT_OF_SCOPE: MappingProxyType(
            {
                "de": "Nicht im Inland steuerbare Leistung: Leistungsort außerhalb der EU "
                "(§ 3a UStG).",
                "en": "Not subject to EU VAT: the place of supply is outside the EU.",
            }
        ),
        NoteKey.KLEINUNTERNEHMER_FROM_2025: MappingProxyType(
            {
                "de": "Steuerfreie Leistung nach § 19 Abs. 1 UStG (Kleinunternehmerregelung).",
                "en": "VAT-exempt supply under section 19(1) of the German VAT Act "
                "(small business scheme).",
            }
        ),
        NoteKey.KLEINUNTERNEHMER_UNTIL_2024: MappingProxyType(
            {
                "de": "Gemäß § 19 UStG wird keine Umsatzsteuer berechnet.",
                "en": "No VAT is charged under section 19 of the German VAT Act "
                "(small business scheme).",
            }
        ),
        NoteKey.EU_SME_EXEMPT: MappingProxyType(
            {
                "de": "Steuerfreie Leistung nach der Kleinunternehmerregelung des "
                "Mitgliedstaats der Leistung (Art. 284 MwStSystRL, § 19a UStG).",
                "en": "VAT-exempt supply under the small enterprise scheme of the member "
                "state of supply (Article 284 Council Directive 2006/112/EC).",
            }
        ),
        NoteKey.NOT_TAXABLE_IN_GERMANY: MappingProxyType(
            {
                "de": "Nicht im Inland steuerbare Leistung (§ 3a Abs. 2 UStG).",
                "en": "Not taxable in Germany: the place of supply is in the customer's "
                "member state.",
            }
        ),
    }
)


def text(key: str, lang: str = "de") -> str:
    """The note ``key`` in language ``lang`` (``de`` or ``en``).

    Raises :class:`NoteNotFoundError` for an unknown key or language.
    """
    try:
        return _TEXTS[key][lang]
    except KeyError:
        raise NoteNotFoundError(f"no invoice note {key!r} in language {lang!r}") from None


def texts(keys: tuple[str, ...], lang: str = "de") -> tuple[str, ...]:
    """The notes for several keys, in order."""
    return tuple(text(key, lang) for key in keys)
