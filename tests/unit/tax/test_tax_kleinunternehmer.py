"""Kleinunternehmer (§ 19 UStG, both regimes) and the EU SME scheme (§ 19a UStG)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from tax.decide import decide
from tax.errors import MissingEurAmountError, RuleNotFoundError
from tax.kleinunternehmer import Regime, all_rules, eu_sme_status, rules_on
from tax.model import (
    DEFAULT_POLICY,
    Alert,
    Counters,
    CustomerFacts,
    FoundingYearCrossing,
    SellerProfile,
    TaxPolicy,
    Treatment,
    VatCategory,
)
from tax.notes import NoteKey
from tests.unit.tax.tax_factories import business, consumer, counters_k, day, seller_k, supply

D = Decimal
T = Treatment
EXEMPT = T.KLEINUNTERNEHMER_EXEMPT
LIMIT = (Alert.KLEINUNTERNEHMER_LIMIT_EXCEEDED,)
STRICT = TaxPolicy(exempt_at_exact_limit=False)
FROM_START = TaxPolicy(founding_year_crossing=FoundingYearCrossing.FROM_START_OF_YEAR)
FORECAST = TaxPolicy(founding_year_crossing=FoundingYearCrossing.FORECAST)
FOUNDED_2025 = seller_k(founded_on=date(2025, 3, 1))
FOUNDED_2024 = seller_k(founded_on=date(2024, 2, 1))


@pytest.mark.parametrize(
    ("seller", "counters", "on", "net", "policy", "treatment", "alerts"),
    [
        # From 2025: previous year ≤ 25,000 and current incl. this supply ≤ 100,000 (net).
        (seller_k(), counters_k("99000.00"), "2025-06-01", "500.00", DEFAULT_POLICY, EXEMPT, ()),
        # Vector 31: exactly 100,000.00 is still exempt (default) ...
        (seller_k(), counters_k("99000.00"), "2025-06-01", "1000.00", DEFAULT_POLICY, EXEMPT, ()),
        # ... or taxable when the adviser reads "does not exceed" strictly.
        (seller_k(), counters_k("99000.00"), "2025-06-01", "1000.00", STRICT, T.DOMESTIC, LIMIT),
        # The supply that crosses 100,000 is already taxable, and every later one.
        (seller_k(), counters_k("99500.01"), "2025-06-01", "500.00", DEFAULT_POLICY,
         T.DOMESTIC, LIMIT),
        (seller_k(), counters_k("101000.00"), "2025-06-01", "500.00", DEFAULT_POLICY,
         T.DOMESTIC, LIMIT),
        # Previous year: 25,000.00 is within, one cent more is not.
        (seller_k(), counters_k(previous="25000.00"), "2025-06-01", "500.00", DEFAULT_POLICY,
         EXEMPT, ()),
        (seller_k(), counters_k(previous="25000.01"), "2025-06-01", "500.00", DEFAULT_POLICY,
         T.DOMESTIC, LIMIT),
        # Vector 41: 23,500 in 2024 fails the old 22,000 test but passes the new 25,000.
        (seller_k(), counters_k("1000.00", previous="23500.00"), "2025-02-01", "100.00",
         DEFAULT_POLICY, EXEMPT, ()),
        # Unknown previous year outside the founding year counts as zero.
        (seller_k(), counters_k("1000.00", previous=None), "2025-02-01", "100.00",
         DEFAULT_POLICY, EXEMPT, ()),
        # Founded in the previous year: the normal 25,000/100,000 test, no annualisation.
        (FOUNDED_2024, counters_k("50000.00", previous="15000.00"), "2025-06-01", "100.00",
         DEFAULT_POLICY, EXEMPT, ()),
        # Founding year (vector 37): cap 25,000 incl. this supply.
        (FOUNDED_2025, counters_k("24900.00", previous=None), "2025-09-01", "100.00",
         DEFAULT_POLICY, EXEMPT, ()),
        (FOUNDED_2025, counters_k("24900.00", previous=None), "2025-09-01", "100.01",
         DEFAULT_POLICY, T.DOMESTIC, LIMIT),
        (FOUNDED_2025, counters_k("24900.00", previous=None), "2025-09-01", "100.00",
         STRICT, T.DOMESTIC, LIMIT),
        # Founding year, lost from the start: the crossing supply asks for corrections ...
        (FOUNDED_2025, counters_k("24900.00", previous=None), "2025-09-01", "200.00",
         FROM_START, T.DOMESTIC,
         (Alert.KLEINUNTERNEHMER_LIMIT_EXCEEDED, Alert.KLEINUNTERNEHMER_RETROACTIVE_CORRECTION)),
        # ... later supplies are simply taxable,
        (FOUNDED_2025, counters_k("26000.00", previous=None), "2025-09-01", "100.00",
         FROM_START, T.DOMESTIC, LIMIT),
        # and below the cap nothing changes.
        (FOUNDED_2025, counters_k("1000.00", previous=None), "2025-09-01", "100.00",
         FROM_START, EXEMPT, ()),
        # Founding year by forecast: the whole year follows the forecast.
        (FOUNDED_2025, counters_k("30000.00", previous=None, forecast="20000.00"),
         "2025-09-01", "100.00", FORECAST, EXEMPT, ()),
        (FOUNDED_2025, counters_k("0.00", previous=None, forecast="30000.00"),
         "2025-09-01", "100.00", FORECAST, T.DOMESTIC, LIMIT),
        (FOUNDED_2025, counters_k("0.00", previous=None), "2025-09-01", "100.00",
         FORECAST, EXEMPT, ()),
        # Until 2024 (vector 39): previous year ≤ 22,000 and forecast ≤ 50,000 → whole year.
        (seller_k(), counters_k("55000.00", previous="21000.00", forecast="40000.00"),
         "2024-12-15", "1000.00", DEFAULT_POLICY, EXEMPT, ()),
        (seller_k(), counters_k("0.00", previous="22000.00", forecast="50000.00"),
         "2024-06-01", "100.00", DEFAULT_POLICY, EXEMPT, ()),
        (seller_k(), counters_k("0.00", previous="22000.01", forecast="1000.00"),
         "2024-06-01", "100.00", DEFAULT_POLICY, T.DOMESTIC, LIMIT),
        (seller_k(), counters_k("0.00", previous="1000.00", forecast="50000.01"),
         "2024-06-01", "100.00", DEFAULT_POLICY, T.DOMESTIC, LIMIT),
        (seller_k(), counters_k("0.00", previous="1000.00"), "2024-06-01", "100.00",
         DEFAULT_POLICY, EXEMPT, ()),
        # Before 2020 the previous-year limit was 17,500.
        (seller_k(), counters_k("0.00", previous="17500.00", forecast="1000.00"),
         "2019-06-01", "100.00", DEFAULT_POLICY, EXEMPT, ()),
        (seller_k(), counters_k("0.00", previous="18000.00", forecast="1000.00"),
         "2019-06-01", "100.00", DEFAULT_POLICY, T.DOMESTIC, LIMIT),
        # Old-law founding year: only the forecast, against 22,000.
        (FOUNDED_2024, counters_k("0.00", previous=None, forecast="22000.00"),
         "2024-06-01", "100.00", DEFAULT_POLICY, EXEMPT, ()),
        (FOUNDED_2024, counters_k("0.00", previous=None, forecast="22000.01"),
         "2024-06-01", "100.00", DEFAULT_POLICY, T.DOMESTIC, LIMIT),
    ],
)  # fmt: skip
def test_kleinunternehmer_status_follows_the_limits_when_the_place_is_germany(
    seller: SellerProfile,
    counters: Counters,
    on: str,
    net: str,
    policy: TaxPolicy,
    treatment: Treatment,
    alerts: tuple[Alert, ...],
) -> None:
    decision = decide(seller, counters, consumer("DE"), supply(on, net), policy)
    assert decision.treatment is treatment
    assert decision.alerts == alerts
    assert decision.taxing_country == "DE"
    assert decision.counts_toward_turnover
    if treatment is EXEMPT:
        assert (decision.rate, decision.vat, decision.category) == (
            D(0),
            D("0.00"),
            VatCategory.EXEMPT,
        )
        assert decision.exemption_reason
        expected_note = (
            NoteKey.KLEINUNTERNEHMER_FROM_2025
            if day(on) >= date(2025, 1, 1)
            else NoteKey.KLEINUNTERNEHMER_UNTIL_2024
        )
        assert decision.note_keys == (expected_note,)
    else:
        assert decision.rate == D(19)
        assert decision.vat == (D(net) * D("0.19")).quantize(D("0.01"))
        assert decision.note_keys == ()


@pytest.mark.parametrize(
    ("customer", "counters", "policy", "expected"),
    [
        # Vector 33: EU B2C within 10,000 → place Germany → § 19 exempt.
        (consumer("FR"), counters_k("40000.00", eu_b2c_current_year=D("3000.00")),
         DEFAULT_POLICY, (EXEMPT, "DE", (), (NoteKey.KLEINUNTERNEHMER_FROM_2025,))),
        # Above 10,000 the place is France: § 19 does not cover it.
        (consumer("FR"), counters_k("40000.00", eu_b2c_current_year=D("10000.00")),
         DEFAULT_POLICY, (T.DESTINATION_NO_OSS, "FR",
                          (Alert.EU_B2C_THRESHOLD_CROSSED,
                           Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED), ())),
        # Vector 35: B2B to Austria → reverse charge with the default wording ...
        (business("AT"), counters_k("40000.00"), DEFAULT_POLICY,
         (T.REVERSE_CHARGE, "AT", (Alert.KLEINUNTERNEHMER_REVERSE_CHARGE_UNCONFIRMED,),
          (NoteKey.REVERSE_CHARGE,))),
        # ... or "not taxable in Germany" when the adviser rejects the wording.
        (business("AT"), counters_k("40000.00"),
         TaxPolicy(kleinunternehmer_reverse_charge_wording=False),
         (T.REVERSE_CHARGE, "AT", (Alert.KLEINUNTERNEHMER_REVERSE_CHARGE_UNCONFIRMED,),
          (NoteKey.NOT_TAXABLE_IN_GERMANY,))),
        # Third-country customers are out of scope for a Kleinunternehmer too.
        (consumer("US"), counters_k("40000.00"), DEFAULT_POLICY,
         (T.OUT_OF_SCOPE, None, (), (NoteKey.OUT_OF_SCOPE,))),
        # Vector 31: a German business customer: still exempt.
        (business("DE", "DE136695976"), counters_k("99000.00"), DEFAULT_POLICY,
         (EXEMPT, "DE", (), (NoteKey.KLEINUNTERNEHMER_FROM_2025,))),
    ],
)  # fmt: skip
def test_kleinunternehmer_exemption_applies_only_when_the_place_of_supply_is_germany(
    customer: CustomerFacts,
    counters: Counters,
    policy: TaxPolicy,
    expected: tuple[Treatment, str | None, tuple[Alert, ...], tuple[NoteKey, ...]],
) -> None:
    decision = decide(seller_k(), counters, customer, supply("2025-09-01", "100.00"), policy)
    assert (
        decision.treatment,
        decision.taxing_country,
        decision.alerts,
        decision.note_keys,
    ) == expected
    assert decision.ec_sales_list is (decision.note_keys == (NoteKey.REVERSE_CHARGE,))


def test_kleinunternehmer_with_oss_charges_destination_vat_when_above_the_threshold() -> None:
    decision = decide(
        seller_k(oss_registered=True),
        counters_k(eu_b2c_previous_year=D("12000.00")),
        consumer("FR"),
        supply("2025-09-01"),
    )
    assert (decision.treatment, decision.taxing_country, str(decision.vat)) == (
        T.OSS_DESTINATION,
        "FR",
        "20.00",
    )


def test_kleinunternehmer_needs_the_eur_amount_when_invoicing_in_another_currency() -> None:
    with pytest.raises(MissingEurAmountError):
        decide(
            seller_k(),
            counters_k("99900.00"),
            consumer("DE"),
            supply("2025-06-01", "220.00", currency="USD"),
        )
    decision = decide(
        seller_k(),
        counters_k("99900.00"),
        consumer("DE"),
        supply("2025-06-01", "220.00", currency="USD", net_eur="200.00"),
    )
    assert (decision.treatment, decision.currency, str(decision.vat)) == (
        T.DOMESTIC,
        "USD",
        "41.80",
    )


def test_rules_are_contiguous_and_switch_regime_in_2025_when_loaded() -> None:
    rules = all_rules()
    assert [r.regime for r in rules] == [Regime.FORECAST, Regime.FORECAST, Regime.RUNNING]
    for earlier, later in pairwise(rules):
        assert earlier.valid_to is not None
        assert earlier.valid_to + timedelta(days=1) == later.valid_from
    assert rules[-1].valid_to is None
    assert (rules_on(date(2025, 1, 1)).previous_year_limit, rules_on(date(2025, 1, 1))
            .current_year_limit) == (D(25000), D(100000))  # fmt: skip
    assert rules_on(date(2024, 12, 31)).previous_year_limit == D(22000)


def test_rules_are_not_found_when_before_2016() -> None:
    with pytest.raises(RuleNotFoundError):
        rules_on(date(2015, 12, 31))


SME_SELLER = seller_k(eu_sme_countries=frozenset({"AT"}), eu_sme_id="DE123456789EX")


@pytest.mark.parametrize(
    ("seller", "state", "on", "previous", "current", "amount", "policy", "status"),
    [
        (SME_SELLER, "AT", "2026-04-01", "50000", "20000", "100", DEFAULT_POLICY, True),
        (SME_SELLER, "FR", "2026-04-01", "50000", "20000", "100", DEFAULT_POLICY, None),
        (SME_SELLER, "AT", "2024-04-01", "50000", "20000", "100", DEFAULT_POLICY, None),
        (SME_SELLER, "AT", "2026-04-01", "100000.01", "0", "100", DEFAULT_POLICY, False),
        (SME_SELLER, "AT", "2026-04-01", "0", "99900", "100", DEFAULT_POLICY, True),
        (SME_SELLER, "AT", "2026-04-01", "0", "99900", "100", STRICT, False),
        (SME_SELLER, "AT", "2026-04-01", "0", "99900.01", "100", DEFAULT_POLICY, False),
    ],
)
def test_eu_sme_exemption_holds_only_when_registered_and_within_the_union_cap(
    seller: SellerProfile,
    state: str,
    on: str,
    previous: str,
    current: str,
    amount: str,
    policy: TaxPolicy,
    status: bool | None,
) -> None:
    counters = Counters(
        union_turnover_previous_year=D(previous), union_turnover_current_year=D(current)
    )
    result = eu_sme_status(seller, counters, state, on=day(on), amount_eur=D(amount), policy=policy)
    assert result is status


@pytest.mark.parametrize(
    ("customer", "union_previous", "on", "treatment", "alerts"),
    [
        # Vector 43: KU with an EX number for Austria, B2C above 10,000 → AT exemption.
        (consumer("AT"), "50000", "2026-04-01", T.EU_SME_EXEMPT, ()),
        # Union cap exceeded: destination VAT, with an alert.
        (consumer("AT"), "100000.01", "2026-04-01", T.DESTINATION_NO_OSS,
         (Alert.EU_SME_UNION_LIMIT_EXCEEDED, Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED)),
        # No EX registration for France.
        (consumer("FR"), "50000", "2026-04-01", T.DESTINATION_NO_OSS,
         (Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED,)),
        # The scheme exists from 2025 only.
        (consumer("AT"), "50000", "2024-04-01", T.DESTINATION_NO_OSS,
         (Alert.OSS_OR_LOCAL_REGISTRATION_REQUIRED,)),
    ],
)  # fmt: skip
def test_eu_sme_scheme_exempts_the_supply_abroad_when_it_applies(
    customer: CustomerFacts,
    union_previous: str,
    on: str,
    treatment: Treatment,
    alerts: tuple[Alert, ...],
) -> None:
    counters = counters_k(
        eu_b2c_previous_year=D("20000"), union_turnover_previous_year=D(union_previous)
    )
    decision = decide(SME_SELLER, counters, customer, supply(on))
    assert decision.treatment is treatment
    assert decision.alerts == alerts
    if treatment is T.EU_SME_EXEMPT:
        assert (decision.taxing_country, decision.rate, str(decision.vat)) == ("AT", D(0), "0.00")
        assert decision.category is VatCategory.EXEMPT
        assert decision.note_keys == (NoteKey.EU_SME_EXEMPT,)
        assert decision.counts_toward_union_turnover
