"""The pure rules of the tax counters: stored treatment → counter flags (checked against
the tax engine's own decisions), ledger + entered figures → Counters, threshold status."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.taxcounters.rules import (
    EnteredFigures,
    Flags,
    Regime19,
    Status,
    ThresholdKey,
    YearTotals,
    combine,
    flags_for,
    threshold_states,
)
from tax import decide
from tax.model import Counters, CustomerFacts, SellerProfile, Supply, VatIdStatus

KU = SellerProfile(country="DE", tax_number="37/123/45678", kleinunternehmer=True)
KU_OSS = SellerProfile(
    country="DE", tax_number="37/123/45678", kleinunternehmer=True, oss_registered=True
)
REGULAR = SellerProfile(country="DE", vat_id="DE811907980", oss_registered=True)
KU_SME = SellerProfile(
    country="DE",
    tax_number="37/123/45678",
    kleinunternehmer=True,
    eu_sme_countries=frozenset({"AT"}),
    eu_sme_id="DE123456789EX",
)
SMALL = Counters(turnover_previous_year=Decimal(20000))
OVER_EU_B2C = Counters(turnover_previous_year=Decimal(20000), eu_b2c_current_year=Decimal(20000))
OVER_KU = Counters(turnover_previous_year=Decimal(20000), turnover_current_year=Decimal(100000))


def consumer(country: str, postal_code: str | None = None) -> CustomerFacts:
    return CustomerFacts(country=country, postal_code=postal_code)


def business(country: str, vat_id: str) -> CustomerFacts:
    return CustomerFacts(
        country=country, is_business=True, vat_id=vat_id, vat_id_status=VatIdStatus.VALID
    )


# (seller, counters, customer, the buyer is a consumer in another member state)
CASES = [
    (KU, SMALL, consumer("DE"), False),
    (KU, OVER_KU, consumer("DE"), False),
    (KU, SMALL, business("DE", "DE136695976"), False),
    (KU, SMALL, consumer("FR"), True),  # below 10,000: German place, exempt
    (KU_OSS, OVER_EU_B2C, consumer("FR"), True),  # OSS destination
    (KU, OVER_EU_B2C, consumer("FR"), True),  # destination without OSS
    (KU, SMALL, business("AT", "ATU13585627"), False),  # reverse charge
    (KU, SMALL, consumer("US"), False),
    (KU, SMALL, consumer("ES", "35001"), False),  # Canary Islands: outside EU VAT
    (KU, SMALL, CustomerFacts(country="AT", is_business=True, vat_id="ATU13585627"), True),
    (KU_SME, OVER_EU_B2C, consumer("AT"), True),  # EU SME exempt
    (REGULAR, SMALL, consumer("DE"), False),
    (REGULAR, OVER_EU_B2C, consumer("IT"), True),
    (REGULAR, SMALL, business("CH", "CHE123"), False),
]


@pytest.mark.parametrize(("seller", "counters", "customer", "cross_border"), CASES)
def test_flags_of_stored_treatment_equal_engine_flags_when_replayed(
    seller: SellerProfile, counters: Counters, customer: CustomerFacts, cross_border: bool
) -> None:
    decision = decide(seller, counters, customer, Supply(date(2026, 6, 1), Decimal("100.00")))
    assert flags_for(decision.treatment.value, cross_border_consumer=cross_border) == Flags(
        decision.counts_toward_turnover,
        decision.counts_toward_eu_b2c,
        decision.counts_toward_union_turnover,
    )


def test_flags_refuse_unknown_treatment_when_stored_value_is_garbage() -> None:
    with pytest.raises(ValueError, match="bogus"):
        flags_for("bogus", cross_border_consumer=False)


ENTERED = EnteredFigures(
    opening_year=2026,
    turnover_previous_year=2_000_000,
    turnover_current_year=500_000,
    eu_b2c_previous_year=300_000,
    eu_b2c_current_year=100_000,
    union_turnover_previous_year=2_100_000,
    union_turnover_current_year=550_000,
)


def test_opening_year_adds_entered_current_figures_when_combined_with_ledger() -> None:
    current = YearTotals(received_turnover=1_000, eu_b2c=2_000, union_turnover=3_000, entries=2)
    counters = combine(2026, current, YearTotals(), ENTERED)
    assert counters.turnover_current_year == Decimal("5010.00")
    assert counters.eu_b2c_current_year == Decimal("1020.00")
    assert counters.union_turnover_current_year == Decimal("5530.00")
    # the year before abowerk: only the entered figures
    assert counters.turnover_previous_year == Decimal("20000.00")
    assert counters.eu_b2c_previous_year == Decimal("3000.00")
    assert counters.union_turnover_previous_year == Decimal("21000.00")


def test_next_year_takes_previous_year_from_ledger_plus_opening_when_combined() -> None:
    previous = YearTotals(received_turnover=1_000, eu_b2c=2_000, union_turnover=3_000, entries=1)
    counters = combine(2027, YearTotals(received_turnover=7), previous, ENTERED)
    assert counters.turnover_current_year == Decimal("0.07")  # no opening balance in 2027
    assert counters.turnover_previous_year == Decimal("5010.00")
    assert counters.eu_b2c_previous_year == Decimal("1020.00")
    assert counters.union_turnover_previous_year == Decimal("5530.00")


def test_previous_year_is_unknown_when_neither_ledger_nor_profile_knows_it() -> None:
    entered = EnteredFigures(opening_year=2026)
    assert combine(2026, YearTotals(), YearTotals(), entered).turnover_previous_year is None
    assert combine(2024, YearTotals(), YearTotals(), entered).turnover_previous_year is None


def test_ledger_of_previous_year_wins_when_it_has_entries_before_opening_year() -> None:
    previous = YearTotals(received_turnover=4_200, entries=3)
    counters = combine(2026, YearTotals(), previous, ENTERED)
    assert counters.turnover_previous_year == Decimal("42.00")


def _state(states: list, key: ThresholdKey):  # type: ignore[no-untyped-def]
    return next(s for s in states if s.key is key)


KU_REGIME = Regime19(kleinunternehmer=True, founded_on=date(2019, 1, 1), eu_sme=False)


@pytest.mark.parametrize(
    ("turnover", "status"),
    [
        ("79999.99", Status.OK),
        ("80000.00", Status.APPROACHING),
        ("100000.00", Status.APPROACHING),  # "does not exceed": exactly the limit is fine
        ("100000.01", Status.CROSSED),
    ],
)
def test_kleinunternehmer_status_follows_100k_limit_when_turnover_grows(
    turnover: str, status: Status
) -> None:
    counters = Counters(turnover_current_year=Decimal(turnover))
    state = _state(
        threshold_states(2026, counters, KU_REGIME), ThresholdKey.KLEINUNTERNEHMER_CURRENT_YEAR
    )
    assert (state.limit, state.status) == (Decimal(100000), status)


def test_next_year_limit_is_crossed_above_25k_when_kleinunternehmer() -> None:
    counters = Counters(turnover_current_year=Decimal("25000.01"))
    states = threshold_states(2026, counters, KU_REGIME)
    assert _state(states, ThresholdKey.KLEINUNTERNEHMER_NEXT_YEAR).status is Status.CROSSED
    assert _state(states, ThresholdKey.KLEINUNTERNEHMER_CURRENT_YEAR).status is Status.OK


def test_founding_year_cap_is_25k_and_single_when_founded_this_year() -> None:
    regime = Regime19(kleinunternehmer=True, founded_on=date(2026, 3, 1), eu_sme=False)
    states = threshold_states(2026, Counters(turnover_current_year=Decimal(21000)), regime)
    keys = {s.key for s in states}
    assert ThresholdKey.KLEINUNTERNEHMER_NEXT_YEAR not in keys
    current = _state(states, ThresholdKey.KLEINUNTERNEHMER_CURRENT_YEAR)
    assert (current.limit, current.status) == (Decimal(25000), Status.APPROACHING)


def test_exact_limit_is_crossed_when_policy_says_so() -> None:
    regime = Regime19(
        kleinunternehmer=True, founded_on=None, eu_sme=False, exempt_at_exact_limit=False
    )
    states = threshold_states(2026, Counters(turnover_current_year=Decimal(100000)), regime)
    assert _state(states, ThresholdKey.KLEINUNTERNEHMER_CURRENT_YEAR).status is Status.CROSSED


def test_only_eu_b2c_applies_when_regular_seller_without_ex_number() -> None:
    regime = Regime19(kleinunternehmer=False, founded_on=None, eu_sme=False)
    states = threshold_states(2026, Counters(eu_b2c_current_year=Decimal(9000)), regime)
    assert [(s.key, s.status) for s in states] == [
        (ThresholdKey.EU_B2C_SERVICES, Status.APPROACHING)
    ]


def test_union_turnover_applies_when_seller_has_ex_registration() -> None:
    regime = Regime19(kleinunternehmer=True, founded_on=None, eu_sme=True)
    states = threshold_states(
        2026, Counters(union_turnover_current_year=Decimal("100000.01")), regime
    )
    assert _state(states, ThresholdKey.EU_SME_UNION_TURNOVER).status is Status.CROSSED


def test_approaching_level_is_configurable_when_given() -> None:
    counters = Counters(eu_b2c_current_year=Decimal(8500))
    regime = Regime19(kleinunternehmer=False, founded_on=None, eu_sme=False)
    at_90 = threshold_states(2026, counters, regime, approaching_percent=Decimal(90))
    at_80 = threshold_states(2026, counters, regime)
    assert at_90[0].status is Status.OK
    assert at_80[0].status is Status.APPROACHING


def test_old_law_year_has_no_running_kleinunternehmer_threshold_when_before_2025() -> None:
    states = threshold_states(2024, Counters(turnover_current_year=Decimal(90000)), KU_REGIME)
    assert ThresholdKey.KLEINUNTERNEHMER_CURRENT_YEAR not in {s.key for s in states}
