"""The VAT decision for one electronically supplied service (SaaS subscription).

``decide(seller, counters, customer, supply, policy)`` is a pure function: no clock, no
network, no database; VAT ID checks and counters are passed in. Procedure (TAX_RULES.md
§2.4):

1. **Customer status** (Art. 18 Reg. 282/2011): a business only with a VAT ID whose check
   returned ``valid``; ``invalid``, ``unavailable`` or no VAT ID → consumer. For electronic
   services a consumer treatment is always defensible without a communicated VAT ID.
2. **Customer location**: business → establishment; consumer → residence, from two
   items of Art. 24f evidence (one under the 100,000 EUR simplification) when evidence is
   given, else the country given. Special territories by postal code, Monaco as France,
   Northern Ireland as United Kingdom (:mod:`tax.territories`).
3. **Place of supply and treatment**:

   * outside the EU VAT area → ``out_of_scope`` (Art. 44/58, Art. 6 VAT Directive);
   * business in the seller's member state → ``domestic`` (Art. 44, § 3a Abs. 2 UStG);
   * business in another member state → ``reverse_charge`` (Art. 44 + 196, § 13b UStG);
   * consumer in the seller's member state → ``domestic`` (Art. 58, § 3a Abs. 5 UStG);
   * consumer in another member state: below the 10,000 EUR threshold (Art. 59c,
     § 3a Abs. 5 S. 3 UStG; previous and current year, crossing supply already at
     destination; unless opted in) → ``domestic``; otherwise destination VAT:
     ``eu_sme_exempt`` (EU SME ``EX`` registration), ``oss_destination`` (OSS-registered,
     § 18j UStG) or ``destination_no_oss`` (compliance alert: register for OSS or locally).

4. **Kleinunternehmer overlay** (§ 19 UStG): only supplies whose place is Germany become
   ``kleinunternehmer_exempt`` (:mod:`tax.kleinunternehmer`).
5. **Rate and VAT**: standard rate of the taxing country on the supply date
   (:mod:`tax.rates`); VAT = round half-up(net × rate / 100) to the currency's minor unit.

Counters are in EUR; ``supply.net_eur`` is needed only when the supply is in another
currency and a threshold is tested.

Performance: apart from the decision itself, the common paths build no objects; rates
are pre-indexed with ``rate / 100`` precomputed, quanta are cached per currency, and the
constant parts of each branch (legal basis, notes, reasons) are module constants.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from tax.errors import (
    LocationConflictError,
    LocationUnprovenError,
    MissingEurAmountError,
    UnsupportedSellerError,
)
from tax.kleinunternehmer import assess_kleinunternehmer, eu_sme_status
from tax.location import resolve_country
from tax.model import (
    DEFAULT_POLICY,
    Alert,
    Counters,
    CustomerFacts,
    SellerProfile,
    Supply,
    TaxDecision,
    TaxPolicy,
    Treatment,
    VatCategory,
    VatIdStatus,
)
from tax.notes import NoteKey
from tax.rates import rate_period
from tax.rounding import quantum
from tax.territories import EU_MEMBER_STATES, Territory, locate, normalise_country
from tax.thresholds import ThresholdName, threshold

_ZERO = Decimal(0)
_ZERO_RATE = Decimal(0)
_EUR = "EUR"
_NO_NOTES: tuple[NoteKey, ...] = ()
_NO_ALERTS: tuple[Alert, ...] = ()
_NOTES_REVERSE_CHARGE = (NoteKey.REVERSE_CHARGE,)
_NOTES_NOT_TAXABLE_IN_GERMANY = (NoteKey.NOT_TAXABLE_IN_GERMANY,)
_NOTES_OUT_OF_SCOPE = (NoteKey.OUT_OF_SCOPE,)
_NOTES_EU_SME = (NoteKey.EU_SME_EXEMPT,)
_ALERTS_KU_REVERSE_CHARGE = (Alert.KLEINUNTERNEHMER_REVERSE_CHARGE_UNCONFIRMED,)

_BASIS_DOMESTIC_B2B = (
    "Art. 44 VAT Directive / § 3a Abs. 2 UStG: customer business established in the "
    "seller's member state"
)
_BASIS_DOMESTIC_B2C = (
    "Art. 58 VAT Directive / § 3a Abs. 5 S. 1 UStG: consumer resident in the seller's member state"
)
_BASIS_BELOW_THRESHOLD = (
    "Art. 59c VAT Directive / § 3a Abs. 5 S. 3 UStG: EU cross-border B2C within "
    "10,000 EUR, place of supply stays with the seller"
)
_BASIS_REVERSE_CHARGE = (
    "Art. 44, 196 VAT Directive / § 3a Abs. 2, § 13b UStG: reverse charge by the business "
    "customer; invoice per § 14a Abs. 1 UStG"
)
_BASIS_OSS = (
    "Art. 58 VAT Directive / § 3a Abs. 5 S. 1 UStG: destination VAT, declared in the OSS "
    "return (Art. 369a ff. VAT Directive, § 18j UStG)"
)
_BASIS_NO_OSS = (
    "Art. 58 VAT Directive / § 3a Abs. 5 S. 1 UStG: destination VAT due; seller not "
    "OSS-registered, register for OSS (§ 18j UStG) or in the member state"
)
_BASIS_EU_SME = (
    "Art. 284 Abs. 2 VAT Directive (Directive (EU) 2020/285) / § 19a UStG: exempt under "
    "the EU SME scheme of the member state of supply"
)
_BASIS_OUT_B2B = (
    "Art. 44 VAT Directive / § 3a Abs. 2 UStG: customer business established outside the "
    "EU, not taxable in the EU"
)
_BASIS_OUT_B2C = (
    "Art. 58 VAT Directive / § 3a Abs. 5 UStG: consumer resident outside the EU, not "
    "taxable in the EU"
)

_VATEX_AE = "VATEX-EU-AE"
_VATEX_O = "VATEX-EU-O"
_REASON_AE = "Reverse charge"
_REASON_O = "Not subject to VAT"
_REASON_EU_SME = "Exempt under the small enterprise scheme (Article 284 Directive 2006/112/EC)"


def destination_option_binding_until(since: date) -> date:
    """Last day on which an Art. 59c(3) opt-in made on ``since`` still binds: it binds for
    at least two calendar years (§ 3a Abs. 5 S. 5 UStG), read here as the year of the
    option and the following one (⚠️ counting not confirmed by the reference)."""
    return date(since.year + 1, 12, 31)


def _net_eur(supply: Supply) -> Decimal:
    if supply.currency == _EUR:
        return supply.net
    if supply.net_eur is None:
        raise MissingEurAmountError(
            f"the supply is in {supply.currency}; a threshold test needs its net in EUR",
            field="net_eur",
        )
    return supply.net_eur


def _consumer_country(
    seller: SellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    supply: Supply,
    policy: TaxPolicy,
) -> str:
    def simplification() -> bool:
        limit = threshold(ThresholdName.EVIDENCE_SINGLE_ITEM, supply.supplied_on)
        return (
            limit is not None
            and seller.established_in_one_member_state
            and counters.eu_b2c_previous_year <= limit
            and counters.eu_b2c_current_year + _net_eur(supply) <= limit
        )

    country = resolve_country(
        customer.evidence,
        single_item_allowed=simplification,
        needs_third_party=policy.single_evidence_needs_third_party,
    )
    if customer.country is not None and normalise_country(customer.country) != country:
        raise LocationConflictError(
            f"customer country {customer.country} contradicts the location evidence ({country})",
            field="customer.country",
        )
    return country


def _vat_id_alerts(customer: CustomerFacts) -> tuple[Alert, ...]:
    # Only a claimed business treated as consumer is worth an alert: it may be re-checked.
    if not customer.is_business:
        return _NO_ALERTS
    if not customer.vat_id:
        return (Alert.VAT_ID_MISSING,)
    status = customer.vat_id_status
    if status is None:
        return (Alert.VAT_ID_UNCHECKED,)
    if status is VatIdStatus.UNAVAILABLE:
        return (Alert.VAT_ID_CHECK_UNAVAILABLE,)
    return (Alert.VAT_ID_INVALID,)


def _charged(
    treatment: Treatment,
    country: str,
    supply: Supply,
    *,
    basis: str,
    alerts: tuple[Alert, ...],
    business: bool,
    oss: bool = False,
    turnover: bool = False,
    eu_b2c: bool = False,
) -> TaxDecision:
    """A decision that charges ``country``'s standard VAT."""
    period = rate_period(country, supply.supplied_on)
    net = supply.net
    vat = (net * period.fraction).quantize(quantum(supply.currency), ROUND_HALF_UP)
    return TaxDecision(
        treatment=treatment,
        taxing_country=country,
        place_of_supply=country,
        rate=period.rate,
        net=net,
        vat=vat,
        gross=net + vat,
        currency=supply.currency,
        category=VatCategory.STANDARD,
        exemption_reason_code=None,
        exemption_reason=None,
        legal_basis=basis,
        note_keys=_NO_NOTES,
        alerts=alerts,
        customer_is_business=business,
        oss_reportable=oss,
        ec_sales_list=False,
        counts_toward_turnover=turnover,
        counts_toward_eu_b2c=eu_b2c,
        counts_toward_union_turnover=True,
    )


def _uncharged(
    treatment: Treatment,
    taxing_country: str | None,
    supply: Supply,
    *,
    place: str,
    category: VatCategory,
    reason_code: str | None,
    reason: str | None,
    basis: str,
    notes: tuple[NoteKey, ...],
    alerts: tuple[Alert, ...],
    business: bool,
    ec_sales_list: bool = False,
    turnover: bool = False,
    eu_b2c: bool = False,
    union: bool = True,
) -> TaxDecision:
    """A decision that charges no VAT (reverse charge, exemption, out of scope)."""
    net = supply.net
    return TaxDecision(
        treatment=treatment,
        taxing_country=taxing_country,
        place_of_supply=place,
        rate=_ZERO_RATE,
        net=net,
        vat=quantum(supply.currency) * _ZERO,
        gross=net,
        currency=supply.currency,
        category=category,
        exemption_reason_code=reason_code,
        exemption_reason=reason,
        legal_basis=basis,
        note_keys=notes,
        alerts=alerts,
        customer_is_business=business,
        oss_reportable=False,
        ec_sales_list=ec_sales_list,
        counts_toward_turnover=turnover,
        counts_toward_eu_b2c=eu_b2c,
        counts_toward_union_turnover=union,
    )


def _seller_place(
    seller: SellerProfile,
    counters: Counters,
    supply: Supply,
    policy: TaxPolicy,
    *,
    basis: str,
    alerts: tuple[Alert, ...],
    business: bool,
    eu_b2c: bool,
) -> TaxDecision:
    """Place of supply in the seller's member state: domestic VAT or § 19 exemption."""
    country = seller.country
    if not seller.kleinunternehmer:
        # § 1 Abs. 1 Nr. 1 UStG: taxable supply at the seller's standard rate.
        return _charged(
            Treatment.DOMESTIC,
            country,
            supply,
            basis=basis,
            alerts=alerts,
            business=business,
            turnover=True,
            eu_b2c=eu_b2c,
        )
    outcome = assess_kleinunternehmer(
        seller, counters, supply.supplied_on, _net_eur(supply), policy
    )
    if not outcome.exempt:
        # § 19 Abs. 1 UStG limit exceeded: regular taxation (§ 1 Abs. 1 Nr. 1 UStG).
        return _charged(
            Treatment.DOMESTIC,
            country,
            supply,
            basis=f"{basis}; {outcome.legal_basis}",
            alerts=alerts + outcome.alerts,
            business=business,
            turnover=True,
            eu_b2c=eu_b2c,
        )
    # § 19 Abs. 1 UStG: exempt (from 2025) / not levied (until 2024); § 34a UStDV invoice.
    return _uncharged(
        Treatment.KLEINUNTERNEHMER_EXEMPT,
        country,
        supply,
        place=country,
        category=VatCategory.EXEMPT,
        reason_code=None,
        reason=outcome.reason,
        basis=f"{basis}; {outcome.legal_basis}",
        notes=outcome.notes,
        alerts=alerts,
        business=business,
        turnover=True,
        eu_b2c=eu_b2c,
    )


def _destination_applies(
    seller: SellerProfile, counters: Counters, supply: Supply
) -> tuple[bool, bool]:
    """(destination taxation applies, this supply is the one that crosses the threshold)."""
    if seller.destination_option:
        # Art. 59c(3) / § 3a Abs. 5 S. 4 UStG: opted in to destination taxation.
        return True, False
    limit = threshold(ThresholdName.EU_B2C_SERVICES, supply.supplied_on)
    if limit is None or not seller.established_in_one_member_state:
        # Before 2019 no threshold existed; Art. 59c(1)(a) needs one establishment only.
        return True, False
    if counters.eu_b2c_previous_year > limit:
        # Art. 59c(1)(c): exceeded in the previous year → destination from 1 January.
        return True, False
    before = counters.eu_b2c_current_year
    if before + _net_eur(supply) > limit:
        # Art. 59c(2): destination from the supply that makes the total exceed the limit.
        return True, before <= limit
    return False, False


def _out_of_scope(
    territory: Territory, customer: CustomerFacts, supply: Supply, business: bool
) -> TaxDecision:
    if territory.legal_basis is not None:
        basis = territory.legal_basis
    elif customer.is_business:
        basis = _BASIS_OUT_B2B
    else:
        basis = _BASIS_OUT_B2C
    return _uncharged(
        Treatment.OUT_OF_SCOPE,
        None,
        supply,
        place=territory.country,
        category=VatCategory.NOT_SUBJECT,
        reason_code=_VATEX_O,
        reason=_REASON_O,
        basis=basis,
        notes=_NOTES_OUT_OF_SCOPE,
        alerts=_NO_ALERTS,
        business=business,
        union=False,
    )


def _reverse_charge(
    seller: SellerProfile, member_state: str, supply: Supply, policy: TaxPolicy
) -> TaxDecision:
    if seller.kleinunternehmer:
        # § 14a / § 18a UStG duties of a Kleinunternehmer are unconfirmed (TAX_RULES §1.4).
        wording = policy.kleinunternehmer_reverse_charge_wording
        notes = _NOTES_REVERSE_CHARGE if wording else _NOTES_NOT_TAXABLE_IN_GERMANY
        alerts: tuple[Alert, ...] = _ALERTS_KU_REVERSE_CHARGE
    else:
        wording = True
        notes = _NOTES_REVERSE_CHARGE
        alerts = _NO_ALERTS
    return _uncharged(
        Treatment.REVERSE_CHARGE,
        member_state,
        supply,
        place=member_state,
        category=VatCategory.REVERSE_CHARGE,
        reason_code=_VATEX_AE,
        reason=_REASON_AE,
        basis=_BASIS_REVERSE_CHARGE,
        notes=notes,
        alerts=alerts,
        business=True,
        ec_sales_list=wording,
    )


def _check_seller(seller: SellerProfile) -> None:
    if seller.country not in EU_MEMBER_STATES:
        raise UnsupportedSellerError(
            f"seller country {seller.country!r} is not an EU member state",
            field="seller.country",
        )
    if seller.kleinunternehmer and seller.country != "DE":
        raise UnsupportedSellerError(
            "§ 19 UStG applies to sellers established in Germany only",
            field="seller.kleinunternehmer",
        )


def _customer_territory(
    seller: SellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    supply: Supply,
    policy: TaxPolicy,
    *,
    business: bool,
) -> Territory:
    if not business and customer.evidence:
        # Art. 24b(d) Reg. 282/2011: a consumer's residence from the evidence.
        country: str | None = _consumer_country(seller, counters, customer, supply, policy)
    else:
        country = customer.country
    if country is None:
        raise LocationUnprovenError(
            "the customer's country is missing and no location evidence was given",
            field="customer.country",
        )
    return locate(country, customer.postal_code)


def _cross_border_consumer(
    seller: SellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    supply: Supply,
    policy: TaxPolicy,
    *,
    member_state: str,
) -> TaxDecision:
    """A consumer in another member state: Art. 59c threshold, then destination VAT."""
    alerts = _vat_id_alerts(customer)
    destination, crossed = _destination_applies(seller, counters, supply)
    if not destination:
        # Art. 59c VAT Directive / § 3a Abs. 5 S. 3 UStG: within 10,000 EUR, seller's place.
        return _seller_place(
            seller,
            counters,
            supply,
            policy,
            basis=_BASIS_BELOW_THRESHOLD,
            alerts=alerts,
            business=False,
            eu_b2c=True,
        )
    if crossed:
        alerts = (*alerts, Alert.EU_B2C_THRESHOLD_CROSSED)
    if seller.eu_sme_countries:
        sme = eu_sme_status(
            seller,
            counters,
            member_state,
            on=supply.supplied_on,
            amount_eur=_net_eur(supply),
            policy=policy,
        )
        if sme:
            # Art. 284(2) VAT Directive / § 19a UStG: exempt under the EU SME scheme.
            return _uncharged(
                Treatment.EU_SME_EXEMPT,
                member_state,
                supply,
                place=member_state,
                category=VatCategory.EXEMPT,
                reason_code=None,
                reason=_REASON_EU_SME,
                basis=_BASIS_EU_SME,
                notes=_NOTES_EU_SME,
                alerts=alerts,
                business=False,
                eu_b2c=True,
            )
        if sme is False:
            alerts = (*alerts, Alert.EU_SME_UNION_LIMIT_EXCEEDED)
    if seller.oss_registered:
        # Art. 58, 369a ff. VAT Directive / § 3a Abs. 5, § 18j UStG: destination VAT via OSS.
        return _charged(
            Treatment.OSS_DESTINATION,
            member_state,
            supply,
            basis=_BASIS_OSS,
            alerts=alerts,
            business=False,
            oss=True,
            eu_b2c=True,
        )
    # Art. 58 VAT Directive / § 3a Abs. 5 UStG: destination VAT due without OSS → alert.
    return _charged(
        Treatment.DESTINATION_NO_OSS,
        member_state,
        supply,
        basis=_BASIS_NO_OSS,
        alerts=(*alerts, Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED),
        business=False,
        eu_b2c=True,
    )


def decide(
    seller: SellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    supply: Supply,
    policy: TaxPolicy = DEFAULT_POLICY,
) -> TaxDecision:
    """Decide the VAT treatment of ``supply`` by ``seller`` to ``customer``.

    ``counters`` hold the seller's running totals before this supply. Raises a
    :class:`tax.errors.TaxError` when the facts do not allow a decision (unknown country,
    contradictory location evidence, no rate for the date, ...).
    """
    _check_seller(seller)
    # Art. 18(1) Reg. 282/2011: a business only with a VAT ID confirmed valid.
    business = (
        customer.is_business
        and customer.vat_id_status is VatIdStatus.VALID
        and bool(customer.vat_id)
    )
    territory = _customer_territory(seller, counters, customer, supply, policy, business=business)
    member_state = territory.member_state
    if member_state is None:
        # Art. 44 / 58 (and Art. 6) VAT Directive: place of supply outside the EU VAT area.
        return _out_of_scope(territory, customer, supply, business)
    domestic = member_state == seller.country
    if business and domestic:
        # Art. 44 VAT Directive / § 3a Abs. 2 UStG: business in the seller's member state.
        basis = _BASIS_DOMESTIC_B2B
    elif business:
        # Art. 44 + 196 VAT Directive / § 3a Abs. 2, § 13b UStG: reverse charge.
        return _reverse_charge(seller, member_state, supply, policy)
    elif domestic:
        # Art. 58 VAT Directive / § 3a Abs. 5 S. 1 UStG: consumer in the seller's state.
        basis = _BASIS_DOMESTIC_B2C
    else:
        # Art. 58 / 59c VAT Directive: consumer in another member state.
        return _cross_border_consumer(
            seller, counters, customer, supply, policy, member_state=member_state
        )
    return _seller_place(
        seller,
        counters,
        supply,
        policy,
        basis=basis,
        alerts=_NO_ALERTS,
        business=business,
        eu_b2c=False,
    )
