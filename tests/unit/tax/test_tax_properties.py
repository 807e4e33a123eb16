"""Hypothesis properties of the decision and of the money helpers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tax.decide import decide
from tax.model import (
    Counters,
    CustomerFacts,
    FoundingYearCrossing,
    SellerProfile,
    Supply,
    TaxPolicy,
    Treatment,
    VatIdStatus,
)
from tax.rounding import exponent, from_gross, from_net
from tax.territories import EU_MEMBER_STATES

EU = sorted(EU_MEMBER_STATES)
COUNTRIES = [*EU, "US", "CH", "GB", "XI", "MC", "NO", "JP", "AX", "EL"]
POSTAL_CODES = [None, "10115", "35001", "22100", "97400", "27498", "23041", "75001"]
CURRENCIES = ["EUR", "USD", "JPY", "KWD", "CHF"]
UNCHARGED = {
    Treatment.REVERSE_CHARGE,
    Treatment.OUT_OF_SCOPE,
    Treatment.KLEINUNTERNEHMER_EXEMPT,
    Treatment.EU_SME_EXEMPT,
}


def money(low: str = "0", high: str = "250000") -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=2)


dates = st.dates(min_value=date(2016, 1, 1), max_value=date(2027, 12, 31))


@st.composite
def sellers(draw: st.DrawFn) -> SellerProfile:
    kleinunternehmer = draw(st.booleans())
    country = "DE" if kleinunternehmer else draw(st.sampled_from(EU))
    return SellerProfile(
        country=country,
        kleinunternehmer=kleinunternehmer,
        oss_registered=draw(st.booleans()),
        destination_option=draw(st.booleans()),
        founded_on=draw(st.none() | dates),
        eu_sme_countries=frozenset(draw(st.lists(st.sampled_from(EU), max_size=3))),
        established_in_one_member_state=draw(st.booleans()),
    )


counters = st.builds(
    Counters,
    turnover_previous_year=st.none() | money(),
    turnover_current_year=money(),
    forecast_current_year=st.none() | money(),
    eu_b2c_previous_year=money(),
    eu_b2c_current_year=money(),
    union_turnover_previous_year=money(),
    union_turnover_current_year=money(),
)

customers = st.builds(
    CustomerFacts,
    country=st.sampled_from(COUNTRIES),
    postal_code=st.sampled_from(POSTAL_CODES),
    is_business=st.booleans(),
    vat_id=st.sampled_from([None, "ATU13585627"]),
    vat_id_status=st.sampled_from([None, *VatIdStatus]),
)


@st.composite
def supplies(draw: st.DrawFn, low: str = "-100000", high: str = "100000") -> Supply:
    currency = draw(st.sampled_from(CURRENCIES))
    places = exponent(currency)
    net = draw(st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=places))
    return Supply(draw(dates), net, currency, net_eur=draw(money("-100000", "100000")))


policies = st.builds(
    TaxPolicy,
    founding_year_crossing=st.sampled_from(FoundingYearCrossing),
    exempt_at_exact_limit=st.booleans(),
    kleinunternehmer_reverse_charge_wording=st.booleans(),
    single_evidence_needs_third_party=st.booleans(),
)


@settings(max_examples=400)
@given(sellers(), counters, customers, supplies(), policies)
def test_net_plus_vat_equals_gross_when_rounded_to_the_currency(
    seller: SellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    supply: Supply,
    policy: TaxPolicy,
) -> None:
    decision = decide(seller, counters, customer, supply, policy)
    assert decision.net + decision.vat == decision.gross
    assert decision.net == supply.net
    assert decision.vat.as_tuple().exponent == -exponent(supply.currency)
    if decision.treatment in UNCHARGED:
        assert (decision.rate, decision.vat) == (Decimal(0), Decimal(0))
    else:
        assert decision.rate > 0
        assert decision.taxing_country is not None


@settings(max_examples=300)
@given(sellers(), counters, customers, supplies(low="0.01"), policies)
def test_vat_is_never_negative_when_the_net_is_positive(
    seller: SellerProfile,
    counters: Counters,
    customer: CustomerFacts,
    supply: Supply,
    policy: TaxPolicy,
) -> None:
    assert decide(seller, counters, customer, supply, policy).vat >= 0


@settings(max_examples=200)
@given(
    st.tuples(sellers(), counters, customers, supplies(), policies),
    st.tuples(sellers(), counters, customers, supplies(), policies),
)
def test_decision_depends_only_on_its_inputs_when_repeated_among_other_decisions(
    first: tuple[SellerProfile, Counters, CustomerFacts, Supply, TaxPolicy],
    other: tuple[SellerProfile, Counters, CustomerFacts, Supply, TaxPolicy],
) -> None:
    before = decide(*first)
    decide(*other)
    # Equal but distinct input objects give an equal decision: nothing else is read.
    seller, state, customer, supply, policy = first
    copies = (replace(seller), replace(state), replace(customer), replace(supply))
    assert decide(*copies, replace(policy)) == before
    assert decide(*first) == before


@settings(max_examples=200)
@given(
    st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=2),
    st.sampled_from([Decimal(r) for r in ("0", "5", "7", "16", "19", "20", "21", "25.5", "27")]),
)
def test_net_first_and_gross_first_both_add_up_when_splitting_amounts(
    amount: Decimal, rate: Decimal
) -> None:
    for taxed in (from_net(amount, rate, "EUR"), from_gross(amount, rate, "EUR")):
        assert taxed.net + taxed.vat == taxed.gross
        # VAT has the sign of the amount and is never larger than it.
        assert taxed.vat * amount >= 0
        assert abs(taxed.vat) <= abs(amount)


@settings(max_examples=100)
@given(st.lists(money("0.01", "3000"), min_size=1, max_size=40))
def test_kleinunternehmer_never_regains_the_exemption_when_replaying_a_year(
    amounts: list[Decimal],
) -> None:
    """Received amounts are added up supply by supply: after the first taxable supply of
    2025 no later supply of the year is exempt again (no tolerance band)."""
    seller = SellerProfile("DE", kleinunternehmer=True)
    state = Counters(turnover_previous_year=Decimal(0), turnover_current_year=Decimal("95000"))
    customer = CustomerFacts("DE")
    lost = False
    for amount in amounts:
        decision = decide(seller, state, customer, Supply(date(2025, 6, 1), amount))
        exempt = decision.treatment is Treatment.KLEINUNTERNEHMER_EXEMPT
        assert not (lost and exempt)
        lost = lost or not exempt
        state = replace(state, turnover_current_year=state.turnover_current_year + amount)
    assert lost is (state.turnover_current_year > Decimal(100000))
