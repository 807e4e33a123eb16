"""JSON case format of the ``abowerk tax decide`` command, and decisions as JSON.

A case (amounts as decimal strings, countries ISO 3166-1 alpha-2, dates ISO 8601; fields
not given are unknown or zero)::

    {"id": "optional, echoed",
     "seller": {"country": "DE", "vat_id": "...", "tax_number": "...",
                "kleinunternehmer": false, "oss_registered": false,
                "destination_option": false, "destination_option_since": null,
                "founded_on": null, "established_in_one_member_state": true,
                "turnover_previous_year": null, "turnover_current_year": "0",
                "forecast_current_year": null,
                "eu_b2c_previous_year": "0", "eu_b2c_current_year": "0",
                "union_turnover_previous_year": "0", "union_turnover_current_year": "0",
                "eu_sme_countries": [], "eu_sme_id": null},
     "customer": {"country": "AT", "postal_code": "6020", "is_business": true,
                  "vat_id": "ATU13585627", "vat_id_status": "valid",
                  "evidence": [{"kind": "bank", "country": "AT", "third_party": true}]},
     "supplied_on": "2025-09-01", "net": "1000.00", "currency": "EUR",
     "net_eur": null, "kind": "electronic"}

``*_current_year`` counters are the amounts before this supply. ``is_business`` defaults
to whether a VAT ID is given. Unknown keys are rejected, so a misspelt field never
silently changes a decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tax.decide import decide
from tax.errors import CaseFormatError, TaxError
from tax.model import (
    DEFAULT_POLICY,
    Counters,
    CustomerFacts,
    EvidenceKind,
    LocationEvidence,
    SellerProfile,
    ServiceKind,
    Supply,
    TaxDecision,
    TaxPolicy,
    VatIdStatus,
)
from tax.notes import LANGUAGES, texts
from tax.rounding import exponent
from tax.territories import normalise_country

# Amounts beyond this are typing errors, and would exceed Decimal's default precision.
_MAX_AMOUNT = Decimal(10) ** 15

_CASE_KEYS = frozenset(
    {"id", "seller", "customer", "supplied_on", "net", "net_eur", "currency", "kind"}
)
_SELLER_KEYS = frozenset(
    {
        "country",
        "vat_id",
        "tax_number",
        "kleinunternehmer",
        "oss_registered",
        "destination_option",
        "destination_option_since",
        "founded_on",
        "established_in_one_member_state",
        "turnover_previous_year",
        "turnover_current_year",
        "forecast_current_year",
        "eu_b2c_previous_year",
        "eu_b2c_current_year",
        "union_turnover_previous_year",
        "union_turnover_current_year",
        "eu_sme_countries",
        "eu_sme_id",
    }
)
_CUSTOMER_KEYS = frozenset(
    {"country", "postal_code", "is_business", "vat_id", "vat_id_status", "evidence"}
)
_EVIDENCE_KEYS = frozenset({"kind", "country", "third_party"})


@dataclass(frozen=True, slots=True)
class Case:
    """The inputs of one decision."""

    seller: SellerProfile
    counters: Counters
    customer: CustomerFacts
    supply: Supply
    case_id: str | None = None


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise CaseFormatError(f"{field} must be a JSON object", field=field)
    return value


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], field: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise CaseFormatError(f"unknown field(s) in {field}: {', '.join(unknown)}", field=field)


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise CaseFormatError(f"{field} must be a decimal string", field=field)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise CaseFormatError(f"{field} is not a decimal number: {value!r}", field=field) from None
    if not amount.is_finite() or abs(amount) >= _MAX_AMOUNT:
        raise CaseFormatError(f"{field} is out of range: {value!r}", field=field)
    return amount


def _amount(obj: Mapping[str, Any], key: str, field: str) -> Decimal:
    value = obj.get(key)
    return Decimal(0) if value is None else _decimal(value, f"{field}.{key}")


def _optional_amount(obj: Mapping[str, Any], key: str, field: str) -> Decimal | None:
    value = obj.get(key)
    return None if value is None else _decimal(value, f"{field}.{key}")


def _bool(obj: Mapping[str, Any], key: str, field: str, default: bool = False) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CaseFormatError(f"{field}.{key} must be true or false", field=f"{field}.{key}")
    return value


def _text(obj: Mapping[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CaseFormatError(f"{field}.{key} must be a string", field=f"{field}.{key}")
    return value.strip() or None


def _date(obj: Mapping[str, Any], key: str, field: str) -> date | None:
    value = _text(obj, key, field)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CaseFormatError(
            f"{field}.{key} is not an ISO 8601 date: {value!r}", field=f"{field}.{key}"
        ) from None


def _country(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise CaseFormatError(f"{field} must be a country code", field=field)
    try:
        normalise_country(value)
    except TaxError as exc:
        raise CaseFormatError(exc.message, field=field) from None
    return value.strip().upper()


def _seller(obj: Mapping[str, Any]) -> tuple[SellerProfile, Counters]:
    field = "seller"
    _check_keys(obj, _SELLER_KEYS, field)
    sme = obj.get("eu_sme_countries") or []
    if not isinstance(sme, list):
        raise CaseFormatError(
            "seller.eu_sme_countries must be a list", field="seller.eu_sme_countries"
        )
    seller = SellerProfile(
        country=normalise_country(_country(obj.get("country"), "seller.country")),
        vat_id=_text(obj, "vat_id", field),
        tax_number=_text(obj, "tax_number", field),
        kleinunternehmer=_bool(obj, "kleinunternehmer", field),
        oss_registered=_bool(obj, "oss_registered", field),
        destination_option=_bool(obj, "destination_option", field),
        destination_option_since=_date(obj, "destination_option_since", field),
        founded_on=_date(obj, "founded_on", field),
        eu_sme_countries=frozenset(
            normalise_country(_country(c, "seller.eu_sme_countries")) for c in sme
        ),
        eu_sme_id=_text(obj, "eu_sme_id", field),
        established_in_one_member_state=_bool(
            obj, "established_in_one_member_state", field, default=True
        ),
    )
    counters = Counters(
        turnover_previous_year=_optional_amount(obj, "turnover_previous_year", field),
        turnover_current_year=_amount(obj, "turnover_current_year", field),
        forecast_current_year=_optional_amount(obj, "forecast_current_year", field),
        eu_b2c_previous_year=_amount(obj, "eu_b2c_previous_year", field),
        eu_b2c_current_year=_amount(obj, "eu_b2c_current_year", field),
        union_turnover_previous_year=_amount(obj, "union_turnover_previous_year", field),
        union_turnover_current_year=_amount(obj, "union_turnover_current_year", field),
    )
    return seller, counters


def _evidence(value: object) -> tuple[LocationEvidence, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CaseFormatError("customer.evidence must be a list", field="customer.evidence")
    items = []
    for index, raw in enumerate(value):
        field = f"customer.evidence[{index}]"
        item = _object(raw, field)
        _check_keys(item, _EVIDENCE_KEYS, field)
        kind = item.get("kind")
        if kind not in set(EvidenceKind):
            choices = ", ".join(EvidenceKind)
            raise CaseFormatError(f"{field}.kind must be one of {choices}", field=f"{field}.kind")
        items.append(
            LocationEvidence(
                kind=EvidenceKind(kind),
                country=_country(item.get("country"), f"{field}.country"),
                third_party=_bool(item, "third_party", field),
            )
        )
    return tuple(items)


def _customer(obj: Mapping[str, Any]) -> CustomerFacts:
    field = "customer"
    _check_keys(obj, _CUSTOMER_KEYS, field)
    raw_country = obj.get("country")
    status = obj.get("vat_id_status")
    if status is not None and status not in set(VatIdStatus):
        raise CaseFormatError(
            "customer.vat_id_status must be valid, invalid, unavailable or null",
            field="customer.vat_id_status",
        )
    vat_id = _text(obj, "vat_id", field)
    return CustomerFacts(
        country=None if raw_country is None else _country(raw_country, "customer.country"),
        postal_code=_text(obj, "postal_code", field),
        is_business=_bool(obj, "is_business", field, default=vat_id is not None),
        vat_id=vat_id,
        vat_id_status=None if status is None else VatIdStatus(status),
        evidence=_evidence(obj.get("evidence")),
    )


def parse_case(raw: object) -> Case:
    """A :class:`Case` from its JSON form; :class:`CaseFormatError` when malformed."""
    obj = _object(raw, "case")
    _check_keys(obj, _CASE_KEYS, "case")
    seller, counters = _seller(_object(obj.get("seller"), "seller"))
    customer = _customer(_object(obj.get("customer"), "customer"))
    supplied_on = _date(obj, "supplied_on", "case")
    if supplied_on is None:
        raise CaseFormatError("supplied_on is required", field="supplied_on")
    if obj.get("net") is None:
        raise CaseFormatError("net is required", field="net")
    currency = _text(obj, "currency", "case") or "EUR"
    try:
        exponent(currency)
    except TaxError as exc:
        raise CaseFormatError(exc.message, field="currency") from None
    kind = obj.get("kind", ServiceKind.ELECTRONIC.value)
    if kind not in set(ServiceKind):
        raise CaseFormatError(
            f"kind {kind!r} is not covered: only electronically supplied services",
            field="kind",
        )
    supply = Supply(
        supplied_on=supplied_on,
        net=_decimal(obj["net"], "net"),
        currency=currency,
        kind=ServiceKind(kind),
        net_eur=_optional_amount(obj, "net_eur", "case"),
    )
    case_id = obj.get("id")
    return Case(seller, counters, customer, supply, None if case_id is None else str(case_id))


def decision_to_json(decision: TaxDecision) -> dict[str, Any]:
    """A decision as a JSON-ready mapping (amounts and the rate as decimal strings)."""
    keys = tuple(key.value for key in decision.note_keys)
    return {
        "treatment": decision.treatment.value,
        "taxing_country": decision.taxing_country,
        "place_of_supply": decision.place_of_supply,
        "rate": format(decision.rate, "f"),
        "net": format(decision.net, "f"),
        "vat": format(decision.vat, "f"),
        "gross": format(decision.gross, "f"),
        "currency": decision.currency,
        "category": decision.category.value,
        "exemption_reason_code": decision.exemption_reason_code,
        "exemption_reason": decision.exemption_reason,
        "legal_basis": decision.legal_basis,
        "notes": list(keys),
        "note_texts": {lang: list(texts(keys, lang)) for lang in LANGUAGES},
        "alerts": [alert.value for alert in decision.alerts],
        "customer_is_business": decision.customer_is_business,
        "oss_reportable": decision.oss_reportable,
        "ec_sales_list": decision.ec_sales_list,
        "counts_toward_turnover": decision.counts_toward_turnover,
        "counts_toward_eu_b2c": decision.counts_toward_eu_b2c,
        "counts_toward_union_turnover": decision.counts_toward_union_turnover,
    }


def decide_case(raw: object, policy: TaxPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """The JSON decision for one JSON case, or ``{"error": {...}}`` when it cannot be
    decided (the case's ``id`` is echoed either way)."""
    case_id = raw.get("id") if isinstance(raw, dict) else None
    head: dict[str, Any] = {} if case_id is None else {"id": case_id}
    try:
        case = parse_case(raw)
        decision = decide(case.seller, case.counters, case.customer, case.supply, policy)
    except TaxError as exc:
        return {**head, "error": exc.to_dict()}
    return {**head, **decision_to_json(decision)}


def decide_cases(cases: Iterable[object], policy: TaxPolicy = DEFAULT_POLICY) -> list[Any]:
    """Decisions for several JSON cases, in order; a bad case does not stop the others."""
    return [decide_case(raw, policy) for raw in cases]
