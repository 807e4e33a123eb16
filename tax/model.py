"""Value objects of the tax decision: the seller's profile, its running counters, the
customer's tax facts, the supply, the policy for unsettled points, and the decision.

Vocabulary (German terms kept where they are the precise legal term):

* *Kleinunternehmer* (KU): a small business under § 19 UStG whose domestic supplies are
  exempt (from 2025) or carry no VAT (until 2024).
* *OSS* (One-Stop-Shop, § 18j UStG, Art. 369a ff. VAT Directive 2006/112/EC): one quarterly
  return in the seller's member state for B2C supplies taxed in other member states.
* *Reverse charge* (Art. 196 VAT Directive, § 13b UStG): the business customer owes the VAT.
* *EU SME scheme* (Art. 284 ff. VAT Directive as replaced by Directive (EU) 2020/285,
  § 19a UStG): a small business's exemption in another member state, with an ``EX`` number.

All amounts are ``Decimal``; countries are ISO 3166-1 alpha-2 codes (Greece is ``GR`` here
and becomes ``EL`` only where VAT forms demand it); dates are ``datetime.date``.
Every class is a frozen dataclass: a decision is a pure function of these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from tax.notes import NoteKey

_ZERO = Decimal(0)


class Treatment(StrEnum):
    """The VAT treatment of one supply. The values are part of the API and the CLI."""

    DOMESTIC = "domestic"
    OSS_DESTINATION = "oss_destination"
    DESTINATION_NO_OSS = "destination_no_oss"
    REVERSE_CHARGE = "reverse_charge"
    OUT_OF_SCOPE = "out_of_scope"
    KLEINUNTERNEHMER_EXEMPT = "kleinunternehmer_exempt"
    EU_SME_EXEMPT = "eu_sme_exempt"


class VatCategory(StrEnum):
    """EN 16931 VAT category code (UNCL5305 subset used by this package)."""

    STANDARD = "S"
    REVERSE_CHARGE = "AE"
    EXEMPT = "E"
    NOT_SUBJECT = "O"


class VatIdStatus(StrEnum):
    """Result of a VAT ID check. ``unavailable`` means the register did not answer."""

    VALID = "valid"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"


class ServiceKind(StrEnum):
    """Kind of service. Only electronically supplied services (Annex II VAT Directive,
    Art. 7 and Annex I Reg. 282/2011: software, SaaS, hosting) are covered by these rules."""

    ELECTRONIC = "electronic"


class EvidenceKind(StrEnum):
    """Items of customer-location evidence listed in Art. 24f Reg. 282/2011."""

    BILLING_ADDRESS = "billing_address"  # Art. 24f (a)
    IP_ADDRESS = "ip_address"  # Art. 24f (b), incl. any geolocation
    BANK = "bank"  # Art. 24f (c): bank account or card-issuing country
    SIM_COUNTRY = "sim_country"  # Art. 24f (d): mobile country code of the SIM
    LANDLINE = "landline"  # Art. 24f (e): location of the fixed landline
    OTHER = "other"  # Art. 24f (f): other commercially relevant information


class FoundingYearCrossing(StrEnum):
    """What crossing the 25,000 EUR cap in the founding year does (§ 19 UStG from 2025).

    The reference marks this as disputed (TAX_RULES.md §1.2, §9.2):

    * ``from_crossing_supply`` (default): the supply that makes the total exceed 25,000 EUR
      and all later ones are taxable, earlier ones stay exempt (same mechanics as the
      100,000 EUR rule; dasfinanzen, Haufe's reading of the system).
    * ``from_start_of_year``: the exemption is lost for the whole founding year; the crossing
      supply is taxable and the decision asks for earlier invoices to be corrected.
    * ``forecast``: the status of the whole founding year follows the forecast turnover
      (IHK Freiburg's wording "voraussichtlich").
    """

    FROM_CROSSING_SUPPLY = "from_crossing_supply"
    FROM_START_OF_YEAR = "from_start_of_year"
    FORECAST = "forecast"


class Alert(StrEnum):
    """Compliance alerts attached to a decision. They never change the decision itself."""

    OSS_OR_LOCAL_REGISTRATION_REQUIRED = "oss_or_local_registration_required"
    EU_B2C_THRESHOLD_CROSSED = "eu_b2c_threshold_crossed"
    VAT_ID_MISSING = "vat_id_missing"
    VAT_ID_UNCHECKED = "vat_id_unchecked"
    VAT_ID_INVALID = "vat_id_invalid"
    VAT_ID_CHECK_UNAVAILABLE = "vat_id_check_unavailable"
    KLEINUNTERNEHMER_LIMIT_EXCEEDED = "kleinunternehmer_limit_exceeded"
    KLEINUNTERNEHMER_RETROACTIVE_CORRECTION = "kleinunternehmer_retroactive_correction"
    KLEINUNTERNEHMER_REVERSE_CHARGE_UNCONFIRMED = "kleinunternehmer_reverse_charge_unconfirmed"
    EU_SME_UNION_LIMIT_EXCEEDED = "eu_sme_union_limit_exceeded"


@dataclass(frozen=True, slots=True)
class SellerProfile:
    """The seller's (tenant's) tax registration.

    ``destination_option`` is the Art. 59c(3) / § 3a Abs. 5 S. 4 UStG opt-in to destination
    taxation below 10,000 EUR; ``destination_option_since`` lets
    :func:`tax.decide.destination_option_binding_until` tell when it may be revoked.
    ``eu_sme_countries`` are the member states where the seller's ``EX`` number
    (``eu_sme_id``) grants the EU SME exemption (§ 19a UStG).
    ``established_in_one_member_state`` is condition (a) of Art. 59c and of the one-item
    evidence simplification; a seller with fixed establishments elsewhere sets it False.
    """

    country: str
    vat_id: str | None = None
    tax_number: str | None = None
    kleinunternehmer: bool = False
    oss_registered: bool = False
    destination_option: bool = False
    destination_option_since: date | None = None
    founded_on: date | None = None
    eu_sme_countries: frozenset[str] = frozenset()
    eu_sme_id: str | None = None
    established_in_one_member_state: bool = True


@dataclass(frozen=True, slots=True)
class Counters:
    """Running counters in EUR, all *before* the supply being decided.

    * ``turnover_*``: § 19 UStG Gesamtumsatz on **received** amounts (Ist); net from 2025,
      until 2024 the received amounts including any VAT. ``turnover_previous_year`` is
      ``None`` when unknown or when the business did not exist (treated as zero outside
      the founding year).
    * ``forecast_current_year``: the old-law (until 2024) forecast; ``None`` counts as zero.
    * ``eu_b2c_*``: net cross-border B2C electronic services and distance sales to other
      member states (Art. 59c), whatever their place of supply turned out to be.
    * ``union_turnover_*``: Union annual turnover for the EU SME scheme (Art. 284(2)).
    """

    turnover_previous_year: Decimal | None = None
    turnover_current_year: Decimal = _ZERO
    forecast_current_year: Decimal | None = None
    eu_b2c_previous_year: Decimal = _ZERO
    eu_b2c_current_year: Decimal = _ZERO
    union_turnover_previous_year: Decimal = _ZERO
    union_turnover_current_year: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class LocationEvidence:
    """One item of customer-location evidence (Art. 24f Reg. 282/2011).

    ``third_party`` is True when someone involved in the supply other than the seller
    provided it (bank, payment provider); only such an item can stand alone under the
    100,000 EUR simplification (Art. 24b Reg. 282/2011).
    """

    kind: EvidenceKind
    country: str
    third_party: bool = False


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What is known about the customer at the tax point.

    ``country`` is the establishment (business) or residence (consumer); it may be None for
    a consumer when ``evidence`` decides. ``postal_code`` finds special territories outside
    the EU VAT area. ``is_business`` is the customer's claim; it counts only together with
    a VAT ID whose check returned ``valid`` (Art. 18 Reg. 282/2011).
    """

    country: str | None
    postal_code: str | None = None
    is_business: bool = False
    vat_id: str | None = None
    vat_id_status: VatIdStatus | None = None
    evidence: tuple[LocationEvidence, ...] = ()


@dataclass(frozen=True, slots=True)
class Supply:
    """One supply (an invoice line or a single-line invoice).

    ``net`` is in ``currency``; ``net_eur`` is the same amount in EUR and is needed only when
    ``currency`` is not EUR and a threshold has to be tested (counters are kept in EUR).
    """

    supplied_on: date
    net: Decimal
    currency: str = "EUR"
    kind: ServiceKind = ServiceKind.ELECTRONIC
    net_eur: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TaxPolicy:
    """Configurable defaults for points the law or the reference leaves unsettled.

    * ``founding_year_crossing``: see :class:`FoundingYearCrossing` (default
      ``from_crossing_supply``, TAX_RULES.md §1.2 ❗).
    * ``exempt_at_exact_limit``: a total of exactly the limit (100,000.00 or 25,000.00 EUR
      for § 19, 100,000.00 EUR for the EU SME Union cap) is still exempt, derived from
      "nicht überschreitet" / "does not exceed" (default True, TAX_RULES.md §1.2 ⚠️).
    * ``kleinunternehmer_reverse_charge_wording``: a Kleinunternehmer's B2B supply to another
      member state carries the reverse-charge wording and goes into the EC sales list
      (default True, the reference's "safe default", TAX_RULES.md §1.4 ❗).
    * ``single_evidence_needs_third_party``: under the 100,000 EUR simplification the one
      item must come from someone other than the seller (default True, Art. 24b
      Reg. 282/2011 as summarised in TAX_RULES.md §2.3 ⚠️).
    """

    founding_year_crossing: FoundingYearCrossing = FoundingYearCrossing.FROM_CROSSING_SUPPLY
    exempt_at_exact_limit: bool = True
    kleinunternehmer_reverse_charge_wording: bool = True
    single_evidence_needs_third_party: bool = True


DEFAULT_POLICY = TaxPolicy()


@dataclass(frozen=True, slots=True)
class TaxDecision:
    """The outcome for one supply.

    ``rate`` is a percentage (``Decimal("19")``), zero where no VAT is charged;
    ``taxing_country`` is the member state whose VAT applies (None when out of scope);
    ``place_of_supply`` is where the supply is located (a non-EU country or None when out
    of scope). ``note_keys`` name the invoice notes (:mod:`tax.notes`). The ``counts_*``
    flags say which running counters a payment for this supply feeds.
    """

    treatment: Treatment
    taxing_country: str | None
    place_of_supply: str | None
    rate: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal
    currency: str
    category: VatCategory
    exemption_reason_code: str | None
    exemption_reason: str | None
    legal_basis: str
    note_keys: tuple[NoteKey, ...]
    alerts: tuple[Alert, ...]
    customer_is_business: bool
    oss_reportable: bool
    ec_sales_list: bool
    counts_toward_turnover: bool
    counts_toward_eu_b2c: bool
    counts_toward_union_turnover: bool
