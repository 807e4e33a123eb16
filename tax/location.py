"""Customer location from evidence (Reg. 282/2011, Art. 24b and 24f).

Rules (TAX_RULES.md §2.3):

* For electronically supplied services to consumers (Art. 24b(d)) the seller identifies
  the customer's country by **two items of non-contradictory evidence** from the Art. 24f
  list: billing address, IP address/geolocation, bank or card country, SIM country,
  landline location, other commercially relevant information. Two items of the same
  kind count once.
* **Simplification** (since 2019-01-01): a seller established in only one member state
  whose cross-border B2C electronic services stay within 100,000 EUR in the current and
  the previous year may rely on **one** item, provided by someone involved in the supply
  other than the seller (bank, payment provider), of kinds (a)–(e).
* Evidence that points to different countries is a **conflict**: it is reported
  (:class:`LocationConflictError`), never resolved by guessing or majority; the seller
  decides which item is reliable (or collects a third one, Art. 24d) and passes the
  resolved evidence again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tax.errors import LocationConflictError, LocationUnprovenError
from tax.model import EvidenceKind, LocationEvidence
from tax.territories import normalise_country


def _describe(evidence: Iterable[LocationEvidence]) -> str:
    return ", ".join(f"{item.kind.value}={item.country}" for item in evidence)


def resolve_country(
    evidence: tuple[LocationEvidence, ...],
    *,
    single_item_allowed: Callable[[], bool],
    needs_third_party: bool = True,
) -> str:
    """The customer's country (ISO code) proven by ``evidence``.

    ``single_item_allowed`` is asked only when exactly one kind of evidence is present and
    says whether the 100,000 EUR simplification applies to the seller.
    Raises :class:`LocationConflictError` when items disagree and
    :class:`LocationUnprovenError` when there is too little evidence.
    """
    countries = {normalise_country(item.country) for item in evidence}
    if len(countries) > 1:
        raise LocationConflictError(
            f"customer location evidence contradicts itself: {_describe(evidence)}",
            field="customer.evidence",
        )
    if not countries:
        raise LocationUnprovenError(
            "no customer location evidence given", field="customer.evidence"
        )
    (country,) = countries
    kinds = {item.kind for item in evidence}
    if len(kinds) >= 2:
        # Art. 24b(d): two non-contradictory items of different kinds.
        return country
    usable = [
        item
        for item in evidence
        if item.kind is not EvidenceKind.OTHER and (item.third_party or not needs_third_party)
    ]
    if usable and single_item_allowed():
        # Art. 24b 2nd subpara.: one third-party item under the 100,000 EUR simplification.
        return country
    raise LocationUnprovenError(
        "one item of location evidence is not enough "
        f"({_describe(evidence)}): two are needed unless the 100,000 EUR simplification "
        "applies to an item from a third party",
        field="customer.evidence",
    )
