"""Customer location evidence (Art. 24b, 24f Reg. 282/2011; TAX_RULES.md §2.3)."""

from __future__ import annotations

import pytest

from tax.errors import LocationConflictError, LocationUnprovenError
from tax.location import resolve_country
from tax.model import EvidenceKind as K
from tests.unit.tax.tax_factories import evidence

BILLING = K.BILLING_ADDRESS
IP = K.IP_ADDRESS
BANK = K.BANK


def _allowed() -> bool:
    return True


def _not_allowed() -> bool:
    return False


@pytest.mark.parametrize(
    ("items", "country"),
    [
        (((BILLING, "FR", False), (IP, "FR", False)), "FR"),
        (((BILLING, "FR", False), (BANK, "FR", True)), "FR"),
        (((IP, "GR", False), (BANK, "EL", True)), "GR"),
        (((BILLING, "AT", False), (IP, "AT", False), (BANK, "AT", True)), "AT"),
        (((K.SIM_COUNTRY, "IT", False), (K.OTHER, "IT", False)), "IT"),
        (((K.LANDLINE, "ES", False), (K.OTHER, "ES", False)), "ES"),
    ],
)
def test_two_non_contradictory_items_decide_when_of_different_kinds(
    items: tuple[tuple[K, str, bool], ...], country: str
) -> None:
    assert resolve_country(evidence(*items), single_item_allowed=_not_allowed) == country


@pytest.mark.parametrize(
    "items",
    [
        ((BILLING, "FR", False), (IP, "DE", False)),
        ((BILLING, "FR", False), (IP, "FR", False), (BANK, "BE", True)),
        ((BANK, "AT", True), (BANK, "DE", True)),
    ],
)
def test_conflict_is_reported_when_items_point_to_different_countries(
    items: tuple[tuple[K, str, bool], ...],
) -> None:
    with pytest.raises(LocationConflictError) as info:
        resolve_country(evidence(*items), single_item_allowed=_allowed)
    assert info.value.kind == "conflict"
    assert info.value.field == "customer.evidence"


@pytest.mark.parametrize(
    ("items", "simplification", "needs_third_party", "resolved"),
    [
        # One third-party item suffices under the 100,000 EUR simplification ...
        (((BANK, "FR", True),), True, True, True),
        # ... but not without the simplification,
        (((BANK, "FR", True),), False, True, False),
        # not when the seller itself produced it,
        (((IP, "FR", False),), True, True, False),
        # unless the policy drops the third-party condition,
        (((IP, "FR", False),), True, False, True),
        # and never for "other commercially relevant information" (only items (a)-(e)).
        (((K.OTHER, "FR", True),), True, True, False),
        # Two items of the same kind are one kind of evidence.
        (((BILLING, "FR", False), (BILLING, "FR", False)), True, True, False),
    ],
)
def test_single_item_decides_only_when_the_simplification_applies_to_a_third_party_item(
    items: tuple[tuple[K, str, bool], ...],
    simplification: bool,
    needs_third_party: bool,
    resolved: bool,
) -> None:
    def allowed() -> bool:
        return simplification

    given = evidence(*items)
    if resolved:
        assert (
            resolve_country(given, single_item_allowed=allowed, needs_third_party=needs_third_party)
            == "FR"
        )
    else:
        with pytest.raises(LocationUnprovenError):
            resolve_country(given, single_item_allowed=allowed, needs_third_party=needs_third_party)


def test_no_evidence_is_unproven_when_resolved() -> None:
    with pytest.raises(LocationUnprovenError):
        resolve_country((), single_item_allowed=_allowed)


def test_simplification_is_not_asked_when_two_kinds_agree() -> None:
    calls: list[int] = []

    def allowed() -> bool:
        calls.append(1)
        return False

    resolve_country(
        evidence((BILLING, "FR", False), (IP, "FR", False)), single_item_allowed=allowed
    )
    assert calls == []
