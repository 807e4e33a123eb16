"""Countries, the EU VAT area and its special territories.

Rules (TAX_RULES.md §2.2; VAT Directive Art. 5-7):

* The EU VAT area is the 27 member states, **minus** territories excluded by Art. 6:
  Canary Islands, Ceuta and Melilla (ES); Åland (FI); Mount Athos (GR); Heligoland and
  Büsingen am Hochrhein (DE); Livigno and Campione d'Italia (IT); the French overseas
  departments (Guadeloupe, Martinique, French Guiana, Réunion, Mayotte) and Saint-Martin,
  plus the French overseas collectivities, which are outside the EU altogether. They are
  recognised by the customer's postal code (and by their own ISO codes such as ``AX``,
  ``GP``, ``RE``). Supplies there are outside the scope of EU VAT.
* Monaco (``MC``) is treated as France (Art. 7 VAT Directive).
* Northern Ireland (``XI``) belongs to the EU VAT area for goods only; services go to the
  United Kingdom, i.e. outside the EU.
* Greece is ``GR`` in ISO 3166 but ``EL`` on VAT forms; both are accepted, ``GR`` is used
  internally and :func:`vat_code` gives the form code.

The postal-code table is from memory in the reference (⚠️, TAX_RULES.md §9.2); each entry
names the territory so a tax adviser can check it. Performance: countries without postal
rules resolve with one dictionary lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from tax._tables import read_table
from tax.errors import UnknownCountryError

EU_MEMBER_STATES: frozenset[str] = frozenset(
    {
        *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR"),
        *("HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
    }
)

ISO_COUNTRIES: frozenset[str] = frozenset(row["code"] for row in read_table("iso3166.csv"))


@dataclass(frozen=True, slots=True)
class Territory:
    """Where a customer is, for VAT.

    ``country`` is the ISO country; ``member_state`` the EU member state whose VAT area
    contains the place (None outside the EU VAT area); ``special`` names a special
    territory or treatment (e.g. "Canary Islands", "Monaco (treated as France)");
    ``legal_basis`` says why a place inside an EU country is outside the EU VAT area.
    """

    country: str
    member_state: str | None
    special: str | None = None
    legal_basis: str | None = None


def _art6(name: str) -> str:
    return f"Art. 6 VAT Directive: {name} is outside the EU VAT area, not taxable in the EU"


# Codes that are not (or not only) ISO 3166-1 country codes but appear in VAT practice.
_ALIASES: MappingProxyType[str, Territory] = MappingProxyType(
    {
        "EL": Territory("GR", "GR"),
        "UK": Territory("GB", None),
        "XI": Territory(
            "GB",
            None,
            "Northern Ireland (EU VAT area for goods only)",
            "Windsor Framework (Protocol on Ireland/Northern Ireland): EU VAT applies in "
            "Northern Ireland to goods only; services are UK supplies, not taxable in the EU",
        ),
        "IC": Territory("ES", None, "Canary Islands", _art6("Canary Islands")),
        "EA": Territory("ES", None, "Ceuta and Melilla", _art6("Ceuta and Melilla")),
        "MC": Territory("MC", "FR", "Monaco (treated as France)"),
    }
)

# Postal-code prefixes of territories excluded from the EU VAT area (Art. 6 VAT Directive).
_EXCLUDED_POSTAL_PREFIXES: MappingProxyType[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "ES": (
            ("35", "Canary Islands"),
            ("38", "Canary Islands"),
            ("51", "Ceuta"),
            ("52", "Melilla"),
        ),
        "FI": (("22", "Åland"),),
        "GR": (("63086", "Mount Athos"), ("63087", "Mount Athos")),
        "DE": (("27498", "Heligoland"), ("78266", "Büsingen am Hochrhein")),
        "IT": (("23041", "Livigno"), ("22061", "Campione d'Italia")),
        "FR": (
            ("971", "Guadeloupe, Saint-Martin or Saint-Barthélemy"),
            ("972", "Martinique"),
            ("973", "French Guiana"),
            ("974", "Réunion"),
            ("975", "Saint-Pierre-et-Miquelon"),
            ("976", "Mayotte"),
            ("977", "Saint-Barthélemy"),
            ("978", "Saint-Martin"),
            ("984", "French Southern Territories"),
            ("986", "Wallis and Futuna"),
            ("987", "French Polynesia"),
            ("988", "New Caledonia"),
        ),
    }
)


def _plain_index() -> MappingProxyType[str, Territory]:
    index = {
        code: Territory(code, code if code in EU_MEMBER_STATES else None) for code in ISO_COUNTRIES
    }
    index.update(_ALIASES)
    return MappingProxyType(index)


_PLAIN = _plain_index()


def normalise_country(code: str) -> str:
    """The ISO 3166-1 code for ``code`` (case-insensitive; ``EL`` → ``GR``, ``UK``/``XI`` →
    ``GB``). Raises :class:`UnknownCountryError` for anything else."""
    territory = _PLAIN.get(code.strip().upper())
    if territory is None:
        raise UnknownCountryError(f"unknown country code {code!r}")
    return territory.country


def _postal_digits(postal_code: str) -> str:
    # Customers write "FI-22100", "AX 22100", "630 86": keep what follows a country prefix.
    text = postal_code.strip().upper()
    if "-" in text:
        text = text.rsplit("-", 1)[1]
    return "".join(ch for ch in text if ch.isdigit())


def locate(country: str, postal_code: str | None = None) -> Territory:
    """The VAT territory of a customer in ``country`` with ``postal_code``.

    Raises :class:`UnknownCountryError` for an unknown country code.
    """
    territory = _PLAIN.get(country)
    if territory is None:
        normalised = country.strip().upper()
        territory = _PLAIN.get(normalised)
        if territory is None:
            raise UnknownCountryError(f"unknown country code {country!r}")
    if postal_code and territory.member_state is not None:
        prefixes = _EXCLUDED_POSTAL_PREFIXES.get(territory.member_state)
        if prefixes is not None:
            digits = _postal_digits(postal_code)
            for prefix, name in prefixes:
                if digits.startswith(prefix):
                    # Art. 6 VAT Directive: inside the member state, outside its VAT area.
                    return Territory(territory.country, None, name, _art6(name))
    return territory


def vat_code(country: str) -> str:
    """The code VAT forms use for ``country`` (Greece ``EL``, else unchanged)."""
    return "EL" if country == "GR" else country
