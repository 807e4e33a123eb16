"""The decision: place of supply, customer status, Art. 59c threshold, evidence, flags."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tax.decide import decide, destination_option_binding_until
from tax.errors import (
    LocationConflictError,
    LocationUnprovenError,
    MissingEurAmountError,
    RateNotFoundError,
    UnknownCountryError,
    UnsupportedSellerError,
)
from tax.model import (
    Alert,
    Counters,
    CustomerFacts,
    SellerProfile,
    Supply,
    TaxDecision,
    Treatment,
    VatCategory,
    VatIdStatus,
)
from tax.model import EvidenceKind as K
from tax.notes import NoteKey
from tax.territories import normalise_country
from tests.unit.tax.tax_factories import (
    AT_VAT_ID,
    DE_CUSTOMER_VAT_ID,
    business,
    consumer,
    counters_a,
    counters_b,
    evidence,
    seller_a,
    seller_b,
    supply,
)

D = Decimal
T = Treatment


def _summary(decision: TaxDecision) -> tuple[Treatment, str | None, str, str]:
    return (decision.treatment, decision.taxing_country, str(decision.rate), str(decision.vat))


@pytest.mark.parametrize(
    ("customer", "net", "expected"),
    [
        # Art. 58 / § 3a Abs. 5 S. 1: consumer in the seller's member state.
        (consumer("DE"), "100.00", (T.DOMESTIC, "DE", "19", "19.00")),
        # Art. 44 / § 3a Abs. 2: business in the seller's member state.
        (business("DE", DE_CUSTOMER_VAT_ID), "100.00", (T.DOMESTIC, "DE", "19", "19.00")),
        # Art. 44 + 196: business in another member state → reverse charge.
        (business("AT"), "1000.00", (T.REVERSE_CHARGE, "AT", "0", "0.00")),
        # Art. 58 + OSS: consumer in another member state above the threshold.
        (consumer("FR"), "100.00", (T.OSS_DESTINATION, "FR", "20", "20.00")),
        (consumer("GR"), "100.00", (T.OSS_DESTINATION, "GR", "24", "24.00")),
        (consumer("EL"), "100.00", (T.OSS_DESTINATION, "GR", "24", "24.00")),
        # Monaco is France (Art. 7).
        (consumer("MC"), "100.00", (T.OSS_DESTINATION, "FR", "20", "20.00")),
        # Outside the EU: B2B and B2C out of scope.
        (
            CustomerFacts("CH", is_business=True, vat_id="CHE-116.281.710 MWST"),
            "1000.00",
            (T.OUT_OF_SCOPE, None, "0", "0.00"),
        ),
        (consumer("US"), "100.00", (T.OUT_OF_SCOPE, None, "0", "0.00")),
        # Northern Ireland is the UK for services, even with a valid XI number.
        (business("XI", "XI980780684"), "100.00", (T.OUT_OF_SCOPE, None, "0", "0.00")),
        # Special territories by postal code (Art. 6).
        (consumer("ES", postal_code="35001"), "100.00", (T.OUT_OF_SCOPE, None, "0", "0.00")),
        (consumer("FR", postal_code="97400"), "100.00", (T.OUT_OF_SCOPE, None, "0", "0.00")),
        (consumer("DE", postal_code="27498"), "100.00", (T.OUT_OF_SCOPE, None, "0", "0.00")),
        (consumer("AX"), "100.00", (T.OUT_OF_SCOPE, None, "0", "0.00")),
    ],
)
def test_treatment_follows_the_place_of_supply_when_the_seller_is_profile_a(
    customer: CustomerFacts, net: str, expected: tuple[Treatment, str | None, str, str]
) -> None:
    decision = decide(seller_a(), counters_a(), customer, supply("2026-03-10", net))
    assert _summary(decision) == expected


@pytest.mark.parametrize(
    ("customer", "treatment", "alerts"),
    [
        (business("AT"), T.REVERSE_CHARGE, ()),
        (business("AT", status=VatIdStatus.INVALID), T.OSS_DESTINATION, (Alert.VAT_ID_INVALID,)),
        (
            business("AT", status=VatIdStatus.UNAVAILABLE),
            T.OSS_DESTINATION,
            (Alert.VAT_ID_CHECK_UNAVAILABLE,),
        ),
        (business("AT", status=None), T.OSS_DESTINATION, (Alert.VAT_ID_UNCHECKED,)),
        (CustomerFacts("AT", is_business=True), T.OSS_DESTINATION, (Alert.VAT_ID_MISSING,)),
        (
            CustomerFacts("AT", is_business=True, vat_id="", vat_id_status=VatIdStatus.VALID),
            T.OSS_DESTINATION,
            (Alert.VAT_ID_MISSING,),
        ),
        # A valid VAT ID without the business claim stays a consumer, silently.
        (
            CustomerFacts("AT", vat_id=AT_VAT_ID, vat_id_status=VatIdStatus.VALID),
            T.OSS_DESTINATION,
            (),
        ),
    ],
)
def test_customer_is_a_business_only_when_its_vat_id_was_confirmed_valid(
    customer: CustomerFacts, treatment: Treatment, alerts: tuple[Alert, ...]
) -> None:
    decision = decide(seller_a(), counters_a(), customer, supply())
    assert decision.treatment is treatment
    assert decision.alerts == alerts
    assert decision.customer_is_business is (treatment is T.REVERSE_CHARGE)


@pytest.mark.parametrize(
    ("seller", "counters", "on", "net", "treatment", "alerts"),
    [
        # Vector 23: 9,950 + 40 = 9,990 ≤ 10,000 → place stays in Germany.
        (seller_b(), counters_b("9950.00"), "2025-05-10", "40.00", T.DOMESTIC, ()),
        # Exactly 10,000.00 does not exceed the threshold.
        (seller_b(), counters_b("9960.00"), "2025-05-10", "40.00", T.DOMESTIC, ()),
        # The supply that makes the total exceed it is already taxed at destination.
        (
            seller_b(),
            counters_b("9960.01"),
            "2025-05-10",
            "40.00",
            T.DESTINATION_NO_OSS,
            (Alert.EU_B2C_THRESHOLD_CROSSED, Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED),
        ),
        (
            seller_a(),
            counters_b("9960.01"),
            "2025-05-10",
            "40.00",
            T.OSS_DESTINATION,
            (Alert.EU_B2C_THRESHOLD_CROSSED,),
        ),
        # Vector 25: already above → destination without OSS, an alert but no crossing.
        (
            seller_b(),
            counters_b("10090.00"),
            "2025-05-20",
            "50.00",
            T.DESTINATION_NO_OSS,
            (Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED,),
        ),
        # Vector 27: previous year above → destination from 1 January.
        (
            seller_b(),
            counters_b("0.00", previous="10090.00"),
            "2026-01-02",
            "10.00",
            T.DESTINATION_NO_OSS,
            (Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED,),
        ),
        # Previous year exactly 10,000.00 did not exceed it.
        (
            seller_b(),
            counters_b("0.00", previous="10000.00"),
            "2026-01-02",
            "10.00",
            T.DOMESTIC,
            (),
        ),
        # Art. 59c(3) opt-in: destination below the threshold.
        (
            seller_a(destination_option=True),
            counters_b("0.00", previous="0.00"),
            "2026-01-02",
            "10.00",
            T.OSS_DESTINATION,
            (),
        ),
        # Art. 59c(1)(a): a seller established in several member states has no threshold.
        (
            seller_a(established_in_one_member_state=False),
            counters_b("0.00", previous="0.00"),
            "2026-01-02",
            "10.00",
            T.OSS_DESTINATION,
            (),
        ),
        # Before 2019 no threshold existed (MOSS): always destination.
        (
            seller_a(),
            counters_b("0.00", previous="0.00"),
            "2018-06-01",
            "10.00",
            T.OSS_DESTINATION,
            (),
        ),
        # 2019-01-01..2021-06-30: the 10,000 EUR threshold of Art. 58(2).
        (seller_a(), counters_b("0.00", previous="0.00"), "2019-06-01", "10.00", T.DOMESTIC, ()),
    ],
)
def test_eu_b2c_threshold_moves_the_place_of_supply_when_exceeded(
    seller: SellerProfile,
    counters: Counters,
    on: str,
    net: str,
    treatment: Treatment,
    alerts: tuple[Alert, ...],
) -> None:
    decision = decide(seller, counters, consumer("FR"), supply(on, net))
    assert decision.treatment is treatment
    assert decision.alerts == alerts
    assert decision.taxing_country == ("DE" if treatment is T.DOMESTIC else "FR")
    assert decision.counts_toward_eu_b2c


@pytest.mark.parametrize(
    ("customer", "net", "currency", "vat"),
    [
        (consumer("DE"), "0.05", "EUR", "0.01"),  # R1: 0.0095 → 0.01
        (consumer("FI"), "10.50", "EUR", "2.68"),  # R3: 2.6775 → 2.68
        (consumer("DK"), "-0.10", "EUR", "-0.03"),  # R8: credit note, half-up away from 0
        (consumer("DK"), "0.10", "EUR", "0.03"),
        (consumer("DE"), "1000", "JPY", "190"),
        (consumer("DE"), "1.005", "KWD", "0.191"),
        (consumer("DE"), "2.675", "EUR", "0.51"),
    ],
)
def test_vat_is_rounded_half_up_to_the_minor_unit_when_computed(
    customer: CustomerFacts, net: str, currency: str, vat: str
) -> None:
    decision = decide(seller_a(), counters_a(), customer, supply(net=net, currency=currency))
    assert str(decision.vat) == vat
    assert decision.gross == decision.net + decision.vat


def test_foreign_currency_supply_needs_its_eur_amount_when_a_threshold_is_tested() -> None:
    with pytest.raises(MissingEurAmountError) as info:
        decide(seller_b(), counters_b("9950.00"), consumer("FR"), supply(net="50", currency="USD"))
    assert info.value.field == "net_eur"
    decision = decide(
        seller_b(),
        counters_b("9950.00"),
        consumer("FR"),
        supply(net="60.00", currency="USD", net_eur="55.00"),
    )
    assert decision.treatment is T.DESTINATION_NO_OSS
    assert (decision.currency, str(decision.vat)) == ("USD", "12.00")


def test_foreign_currency_supply_needs_no_eur_amount_when_no_threshold_is_tested() -> None:
    decision = decide(seller_a(), counters_a(), consumer("DE"), supply(currency="CHF"))
    assert (decision.currency, str(decision.vat)) == ("CHF", "19.00")


@pytest.mark.parametrize(
    ("seller", "error"),
    [
        (SellerProfile("US"), UnsupportedSellerError),
        (SellerProfile("CH", kleinunternehmer=True), UnsupportedSellerError),
        (SellerProfile("AT", kleinunternehmer=True), UnsupportedSellerError),
    ],
)
def test_decision_is_refused_when_the_seller_is_not_covered(
    seller: SellerProfile, error: type[Exception]
) -> None:
    with pytest.raises(error):
        decide(seller, Counters(), consumer("DE"), supply())


def test_other_member_state_seller_is_decided_when_not_a_kleinunternehmer() -> None:
    seller = SellerProfile("AT", oss_registered=True)
    assert _summary(decide(seller, counters_a(), consumer("AT"), supply())) == (
        T.DOMESTIC,
        "AT",
        "20",
        "20.00",
    )
    assert decide(seller, counters_a(), consumer("DE"), supply()).treatment is T.OSS_DESTINATION


@pytest.mark.parametrize(
    ("customer", "on", "error"),
    [
        (consumer(None), "2026-03-10", LocationUnprovenError),
        (consumer("XX"), "2026-03-10", UnknownCountryError),
        (consumer("DE"), "2015-06-01", RateNotFoundError),
    ],
)
def test_decision_raises_when_the_facts_are_insufficient(
    customer: CustomerFacts, on: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        decide(seller_a(), counters_a(), customer, supply(on))


@pytest.mark.parametrize(
    ("seller", "counters", "customer", "on", "treatment"),
    [
        # Two agreeing items decide, with or without a declared country.
        (seller_a(), counters_a(), consumer(None, evidence=evidence(
            (K.BILLING_ADDRESS, "FR", False), (K.IP_ADDRESS, "FR", False))),
         "2026-03-10", T.OSS_DESTINATION),
        (seller_a(), counters_a(), consumer("FR", evidence=evidence(
            (K.BILLING_ADDRESS, "FR", False), (K.IP_ADDRESS, "FR", False))),
         "2026-03-10", T.OSS_DESTINATION),
        (seller_a(), counters_a(), consumer("de", evidence=evidence(
            (K.BILLING_ADDRESS, "DE", False), (K.BANK, "DE", True))),
         "2026-03-10", T.DOMESTIC),
        # One bank item under the 100,000 EUR simplification (and below 10,000 EUR).
        (seller_b(), counters_b("100.00"), consumer(None, evidence=evidence(
            (K.BANK, "FR", True),)), "2026-03-10", T.DOMESTIC),
        # A business is located by its establishment; consumer evidence is irrelevant.
        (seller_a(), counters_a(), CustomerFacts(
            "AT", is_business=True, vat_id=AT_VAT_ID, vat_id_status=VatIdStatus.VALID,
            evidence=evidence((K.BILLING_ADDRESS, "FR", False), (K.IP_ADDRESS, "DE", False))),
         "2026-03-10", T.REVERSE_CHARGE),
    ],
)  # fmt: skip
def test_consumer_is_located_by_evidence_when_evidence_is_given(
    seller: SellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    on: str,
    treatment: Treatment,
) -> None:
    assert decide(seller, counters, customer, supply(on)).treatment is treatment


@pytest.mark.parametrize(
    ("seller", "counters", "on", "currency"),
    [
        # Previous year above 100,000 EUR of cross-border B2C.
        (seller_a(), counters_a(eu_b2c_previous_year=D("100000.01")), "2026-03-10", "EUR"),
        # This supply takes the current year above 100,000 EUR.
        (seller_a(), counters_a(eu_b2c_current_year=D("99950.01")), "2026-03-10", "EUR"),
        # Several establishments: no simplification.
        (seller_b(established_in_one_member_state=False), counters_b(), "2026-03-10", "EUR"),
        # Before 2019 the simplification did not exist.
        (seller_b(), counters_b(), "2018-06-01", "EUR"),
    ],
)
def test_single_item_is_not_enough_when_the_simplification_does_not_apply(
    seller: SellerProfile, counters: Counters, on: str, currency: str
) -> None:
    customer = consumer(None, evidence=evidence((K.BANK, "FR", True)))
    with pytest.raises(LocationUnprovenError):
        decide(seller, counters, customer, supply(on, currency=currency))


def test_single_item_simplification_is_exactly_100000_when_at_the_limit() -> None:
    customer = consumer(None, evidence=evidence((K.BANK, "FR", True)))
    counters = counters_a(eu_b2c_previous_year=D("100000.00"), eu_b2c_current_year=D("99900"))
    assert decide(seller_a(), counters, customer, supply()).taxing_country == "FR"


def test_simplification_needs_the_eur_amount_when_the_supply_is_in_another_currency() -> None:
    customer = consumer(None, evidence=evidence((K.BANK, "FR", True)))
    with pytest.raises(MissingEurAmountError):
        decide(seller_a(), counters_a(), customer, supply(currency="USD"))


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        (
            consumer(None, evidence=evidence((K.BILLING_ADDRESS, "FR", False),
                                             (K.IP_ADDRESS, "DE", False))),
            "customer.evidence",
        ),
        (
            consumer("DE", evidence=evidence((K.BILLING_ADDRESS, "FR", False),
                                             (K.IP_ADDRESS, "FR", False))),
            "customer.country",
        ),
    ],
)  # fmt: skip
def test_location_conflict_is_reported_when_evidence_or_country_disagree(
    customer: CustomerFacts, field: str
) -> None:
    with pytest.raises(LocationConflictError) as info:
        decide(seller_a(), counters_a(), customer, supply())
    assert info.value.field == field


@pytest.mark.parametrize(
    ("customer", "special"),
    [
        (consumer("ES", postal_code="35001"), "Art. 6 VAT Directive: Canary Islands"),
        (consumer("IC"), "Art. 6 VAT Directive: Canary Islands"),
        (CustomerFacts("XI", is_business=True), "Windsor Framework"),
        (CustomerFacts("US", is_business=True), "Art. 44 VAT Directive"),
        (consumer("US"), "Art. 58 VAT Directive"),
    ],
)
def test_out_of_scope_names_its_legal_basis_when_decided(
    customer: CustomerFacts, special: str
) -> None:
    decision = decide(seller_a(), counters_a(), customer, supply())
    assert decision.legal_basis.startswith(special)
    assert decision.category is VatCategory.NOT_SUBJECT
    assert decision.exemption_reason_code == "VATEX-EU-O"
    assert decision.note_keys == (NoteKey.OUT_OF_SCOPE,)
    assert customer.country is not None
    assert decision.place_of_supply == normalise_country(customer.country)


@pytest.mark.parametrize(
    ("customer", "category", "code", "notes", "flags"),
    [
        # flags: oss_reportable, ec_sales_list, turnover, eu_b2c, union
        (consumer("DE"), VatCategory.STANDARD, None, (), (False, False, True, False, True)),
        (business("AT"), VatCategory.REVERSE_CHARGE, "VATEX-EU-AE", (NoteKey.REVERSE_CHARGE,),
         (False, True, False, False, True)),
        (consumer("FR"), VatCategory.STANDARD, None, (), (True, False, False, True, True)),
        (consumer("US"), VatCategory.NOT_SUBJECT, "VATEX-EU-O", (NoteKey.OUT_OF_SCOPE,),
         (False, False, False, False, False)),
    ],
)  # fmt: skip
def test_decision_carries_category_notes_and_counter_flags_when_decided(
    customer: CustomerFacts,
    category: VatCategory,
    code: str | None,
    notes: tuple[NoteKey, ...],
    flags: tuple[bool, bool, bool, bool, bool],
) -> None:
    decision = decide(seller_a(), counters_a(), customer, supply())
    assert decision.category is category
    assert decision.exemption_reason_code == code
    assert decision.note_keys == notes
    assert (
        decision.oss_reportable,
        decision.ec_sales_list,
        decision.counts_toward_turnover,
        decision.counts_toward_eu_b2c,
        decision.counts_toward_union_turnover,
    ) == flags
    assert decision.legal_basis


def test_destination_option_binds_two_calendar_years_when_made() -> None:
    assert destination_option_binding_until(date(2025, 5, 1)) == date(2026, 12, 31)
    assert destination_option_binding_until(date(2025, 1, 1)) == date(2026, 12, 31)


def test_decision_keeps_the_supply_amount_and_currency_when_no_vat_is_charged() -> None:
    decision = decide(seller_a(), counters_a(), business("AT"), Supply(date(2026, 3, 10), D("7")))
    assert (decision.net, decision.vat, decision.gross, decision.currency) == (
        D("7"),
        D("0.00"),
        D("7"),
        "EUR",
    )
