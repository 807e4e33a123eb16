"""EU VAT area, special territories by postal code, aliases (TAX_RULES.md §2.2)."""

from __future__ import annotations

import pytest

from tax.errors import UnknownCountryError
from tax.territories import EU_MEMBER_STATES, ISO_COUNTRIES, locate, normalise_country, vat_code


@pytest.mark.parametrize(
    ("country", "postal_code", "territory"),
    [
        ("ES", "35001", "Canary Islands"),
        ("ES", "38001", "Canary Islands"),
        ("ES", "51001", "Ceuta"),
        ("ES", "52001", "Melilla"),
        ("FI", "22100", "Åland"),
        ("FI", "AX-22100", "Åland"),
        ("GR", "630 86", "Mount Athos"),
        ("EL", "63087", "Mount Athos"),
        ("DE", "27498", "Heligoland"),
        ("DE", "78266", "Büsingen am Hochrhein"),
        ("IT", "23041", "Livigno"),
        ("IT", "22061", "Campione d'Italia"),
        ("FR", "97110", "Guadeloupe, Saint-Martin or Saint-Barthélemy"),
        ("FR", "97200", "Martinique"),
        ("FR", "97300", "French Guiana"),
        ("FR", "97400", "Réunion"),
        ("FR", "97600", "Mayotte"),
        ("FR", "F-97150", "Guadeloupe, Saint-Martin or Saint-Barthélemy"),
        ("FR", "98800", "New Caledonia"),
        ("fr", "97400", "Réunion"),
    ],
)
def test_postal_code_puts_the_customer_outside_the_eu_vat_area_when_in_a_special_territory(
    country: str, postal_code: str, territory: str
) -> None:
    located = locate(country, postal_code)
    assert located.member_state is None
    assert located.special == territory


@pytest.mark.parametrize(
    ("country", "postal_code", "member_state"),
    [
        ("ES", "28001", "ES"),  # Madrid
        ("ES", "07001", "ES"),  # Balearic Islands are inside
        ("FI", "00100", "FI"),  # Helsinki
        ("GR", "10431", "GR"),  # Athens
        ("DE", "10115", "DE"),  # Berlin
        ("DE", "27499", "DE"),  # next to Heligoland's code
        ("IT", "20121", "IT"),  # Milan
        ("FR", "75001", "FR"),  # Paris
        ("FR", "20000", "FR"),  # Corsica is inside
        ("FR", "98000", "FR"),  # Monaco's postal codes are French and inside
        ("AT", "6020", "AT"),
        ("DE", None, "DE"),
        ("DE", "", "DE"),
    ],
)
def test_postal_code_keeps_the_member_state_when_not_in_a_special_territory(
    country: str, postal_code: str | None, member_state: str
) -> None:
    assert locate(country, postal_code).member_state == member_state


@pytest.mark.parametrize(
    ("code", "country", "member_state", "special"),
    [
        ("MC", "MC", "FR", "Monaco (treated as France)"),
        ("XI", "GB", None, "Northern Ireland (EU VAT area for goods only)"),
        ("GB", "GB", None, None),
        ("UK", "GB", None, None),
        ("EL", "GR", "GR", None),
        ("IC", "ES", None, "Canary Islands"),
        ("EA", "ES", None, "Ceuta and Melilla"),
        ("AX", "AX", None, None),
        ("RE", "RE", None, None),
        ("GP", "GP", None, None),
        ("CH", "CH", None, None),
        ("US", "US", None, None),
        ("SM", "SM", None, None),
    ],
)
def test_code_maps_to_its_vat_territory_when_an_alias_or_non_member(
    code: str, country: str, member_state: str | None, special: str | None
) -> None:
    located = locate(code)
    assert (located.country, located.member_state, located.special) == (
        country,
        member_state,
        special,
    )


def test_xi_postal_code_is_ignored_when_the_territory_is_outside_already() -> None:
    assert locate("XI", "BT1 1AA").member_state is None


@pytest.mark.parametrize("code", ["XX", "France", "", "D"])
def test_unknown_country_is_rejected_when_located_or_normalised(code: str) -> None:
    with pytest.raises(UnknownCountryError):
        locate(code)
    with pytest.raises(UnknownCountryError):
        normalise_country(code)


@pytest.mark.parametrize(
    ("code", "normalised"), [("de", "DE"), (" el ", "GR"), ("XI", "GB"), ("MC", "MC")]
)
def test_country_is_normalised_when_given_in_another_spelling(code: str, normalised: str) -> None:
    assert normalise_country(code) == normalised


def test_vat_code_is_el_only_when_the_country_is_greece() -> None:
    assert vat_code("GR") == "EL"
    assert vat_code("DE") == "DE"


def test_country_list_holds_the_iso_codes_when_loaded() -> None:
    assert len(ISO_COUNTRIES) == 249
    assert EU_MEMBER_STATES <= ISO_COUNTRIES
    assert len(EU_MEMBER_STATES) == 27
