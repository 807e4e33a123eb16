"""German small-business exemption (Kleinunternehmer, § 19 UStG) and the EU SME scheme.

Rules (TAX_RULES.md §1; limits as data in ``tax/data/kleinunternehmer.csv``):

* Only supplies whose place is Germany are covered; the caller applies this module only
  then. Counters are **received** amounts (vereinnahmte Entgelte, Ist), in EUR.
* **Until 2024** (old § 19 Abs. 1 UStG, regime ``forecast``): VAT is not levied when the
  previous year's turnover (plus VAT) was ≤ 22,000 EUR (17,500 EUR before 2020) and the
  forecast for the current year is ≤ 50,000 EUR. The status holds **for the whole year**,
  even if the forecast turns out wrong. In the founding year only the forecast counts,
  against the lower limit (old UStAE 19.1 Abs. 4 ⚠️).
* **From 2025** (§ 19 Abs. 1 UStG as amended by JStG 2024, BMF 18.03.2025, regime
  ``running``): supplies are exempt when the previous year's net turnover was
  ≤ 25,000 EUR and the current year's does not exceed 100,000 EUR; the supply that makes
  the total exceed 100,000 EUR is already taxable, and all later ones. No forecast, no
  annualisation. In the founding year the cap is 25,000 EUR (UStAE 19.1 Abs. 3 S. 2);
  what crossing it does is disputed, see :class:`tax.model.FoundingYearCrossing`.
* "Does not exceed": exactly the limit is still exempt by default
  (:attr:`tax.model.TaxPolicy.exempt_at_exact_limit`).
* **EU SME scheme** (Art. 284 ff. VAT Directive as replaced by Directive (EU) 2020/285,
  § 19a UStG, from 2025): a supply taxable in another member state is exempt there when
  the seller holds an ``EX`` number for that state and its Union turnover does not exceed
  100,000 EUR in the previous and the current year (the number is deactivated from the
  supply that exceeds it, UStAE 19a.4). The target state's own threshold is checked by
  that state when it admits the seller, so it is not re-checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from tax._tables import parse_date, parse_optional_date, read_table
from tax.errors import RuleNotFoundError
from tax.model import Alert, Counters, FoundingYearCrossing, SellerProfile, TaxPolicy
from tax.notes import NoteKey
from tax.thresholds import ThresholdName, threshold

_ZERO = Decimal(0)


class Regime(StrEnum):
    """How the § 19 status is decided."""

    FORECAST = "forecast"  # until 2024: previous year + forecast, status for the whole year
    RUNNING = "running"  # from 2025: previous year + running total incl. this supply


@dataclass(frozen=True, slots=True)
class KleinunternehmerRules:
    """The § 19 UStG limits (EUR) in force between two dates."""

    valid_from: date
    valid_to: date | None
    regime: Regime
    previous_year_limit: Decimal
    current_year_limit: Decimal
    founding_year_limit: Decimal
    source: str


def _load() -> tuple[KleinunternehmerRules, ...]:
    return tuple(
        KleinunternehmerRules(
            valid_from=parse_date(row["valid_from"]),
            valid_to=parse_optional_date(row["valid_to"]),
            regime=Regime(row["regime"]),
            previous_year_limit=Decimal(row["previous_year_limit"]),
            current_year_limit=Decimal(row["current_year_limit"]),
            founding_year_limit=Decimal(row["founding_year_limit"]),
            source=row["source"],
        )
        for row in read_table("kleinunternehmer.csv")
    )


_RULES = _load()


def rules_on(on: date) -> KleinunternehmerRules:
    """The § 19 rules in force on ``on``; :class:`RuleNotFoundError` before the table."""
    for rules in _RULES:
        if rules.valid_from <= on and (rules.valid_to is None or on <= rules.valid_to):
            return rules
    raise RuleNotFoundError(f"no Kleinunternehmer rules recorded for {on.isoformat()}")


def all_rules() -> tuple[KleinunternehmerRules, ...]:
    """Every recorded regime, oldest first."""
    return _RULES


@dataclass(frozen=True, slots=True)
class KleinunternehmerOutcome:
    """Whether a German-place supply of a Kleinunternehmer is exempt, and why."""

    exempt: bool
    legal_basis: str
    notes: tuple[NoteKey, ...] = ()
    reason: str | None = None
    alerts: tuple[Alert, ...] = ()


_EXEMPT_FROM_2025 = KleinunternehmerOutcome(
    True,
    "§ 19 Abs. 1 UStG (from 2025): exempt small business; invoice per § 34a UStDV",
    (NoteKey.KLEINUNTERNEHMER_FROM_2025,),
    # EN 16931 BR-E-10: category E needs a reason; no VATEX code exists for § 19 UStG.
    "Steuerbefreiung als Kleinunternehmer nach § 19 Abs. 1 UStG",
)
_EXEMPT_UNTIL_2024 = KleinunternehmerOutcome(
    True,
    "§ 19 Abs. 1 UStG (until 2024): VAT not levied for the whole year",
    (NoteKey.KLEINUNTERNEHMER_UNTIL_2024,),
    "Kleinunternehmer nach § 19 Abs. 1 UStG: keine Umsatzsteuer erhoben",
)
_LOST_FROM_2025 = KleinunternehmerOutcome(
    False,
    "§ 19 Abs. 1 UStG (from 2025): limit exceeded, taxable from the supply that "
    "exceeds it (§ 1 Abs. 1 Nr. 1, § 12 Abs. 1 UStG)",
    alerts=(Alert.KLEINUNTERNEHMER_LIMIT_EXCEEDED,),
)
_LOST_FROM_START = KleinunternehmerOutcome(
    False,
    "§ 19 Abs. 1 UStG (from 2025), founding year: 25,000 EUR cap exceeded, exemption "
    "lost for the whole year (TaxPolicy.founding_year_crossing = from_start_of_year)",
    alerts=(
        Alert.KLEINUNTERNEHMER_LIMIT_EXCEEDED,
        Alert.KLEINUNTERNEHMER_RETROACTIVE_CORRECTION,
    ),
)
_LOST_UNTIL_2024 = KleinunternehmerOutcome(
    False,
    "§ 19 Abs. 1 UStG (until 2024): previous-year or forecast limit exceeded, "
    "regular taxation for the whole year",
    alerts=(Alert.KLEINUNTERNEHMER_LIMIT_EXCEEDED,),
)


def _within(total: Decimal, limit: Decimal, policy: TaxPolicy) -> bool:
    # "nicht übersteigt": exactly the limit is within unless the policy says otherwise.
    return total <= limit if policy.exempt_at_exact_limit else total < limit


def _assess_forecast(
    rules: KleinunternehmerRules, counters: Counters, founding_year: bool, policy: TaxPolicy
) -> KleinunternehmerOutcome:
    forecast = counters.forecast_current_year or _ZERO
    if founding_year:
        # Old UStAE 19.1 Abs. 4: in the founding year only the forecast counts.
        exempt = _within(forecast, rules.founding_year_limit, policy)
    else:
        # Old § 19 Abs. 1 S. 1 UStG: previous year and forecast, for the whole year.
        previous = counters.turnover_previous_year or _ZERO
        exempt = _within(previous, rules.previous_year_limit, policy) and _within(
            forecast, rules.current_year_limit, policy
        )
    return _EXEMPT_UNTIL_2024 if exempt else _LOST_UNTIL_2024


def _assess_founding_year(
    rules: KleinunternehmerRules, counters: Counters, amount_eur: Decimal, policy: TaxPolicy
) -> KleinunternehmerOutcome:
    limit = rules.founding_year_limit
    crossing = policy.founding_year_crossing
    if crossing is FoundingYearCrossing.FORECAST:
        # Founders' forecast reading (IHK Freiburg): status for the whole founding year.
        exempt = _within(counters.forecast_current_year or _ZERO, limit, policy)
    else:
        # UStAE 19.1 Abs. 3 S. 2: founding-year cap 25,000 EUR, incl. this supply.
        before = counters.turnover_current_year
        exempt = _within(before + amount_eur, limit, policy)
        if not exempt and crossing is FoundingYearCrossing.FROM_START_OF_YEAR:
            # Exemption lost from 1 January: the crossing supply triggers corrections.
            return _LOST_FROM_START if _within(before, limit, policy) else _LOST_FROM_2025
    return _EXEMPT_FROM_2025 if exempt else _LOST_FROM_2025


def assess_kleinunternehmer(
    seller: SellerProfile,
    counters: Counters,
    on: date,
    amount_eur: Decimal,
    policy: TaxPolicy,
) -> KleinunternehmerOutcome:
    """Whether a Kleinunternehmer's supply of ``amount_eur`` (net, EUR) with place of supply
    in Germany on ``on`` is exempt, given the received turnover before it."""
    rules = rules_on(on)
    founding_year = seller.founded_on is not None and seller.founded_on.year == on.year
    if rules.regime is Regime.FORECAST:
        return _assess_forecast(rules, counters, founding_year, policy)
    if founding_year:
        return _assess_founding_year(rules, counters, amount_eur, policy)
    # § 19 Abs. 1 S. 1 UStG: previous year ≤ 25,000 EUR (net) and the current year incl.
    # this supply ≤ 100,000 EUR; the supply that crosses is already taxed.
    previous = counters.turnover_previous_year or _ZERO
    exempt = _within(previous, rules.previous_year_limit, policy) and _within(
        counters.turnover_current_year + amount_eur, rules.current_year_limit, policy
    )
    return _EXEMPT_FROM_2025 if exempt else _LOST_FROM_2025


def eu_sme_status(
    seller: SellerProfile,
    counters: Counters,
    member_state: str,
    *,
    on: date,
    amount_eur: Decimal,
    policy: TaxPolicy,
) -> bool | None:
    """EU SME exemption of a supply taxable in ``member_state``: True when exempt, None
    when the seller has no ``EX`` registration there (or the scheme is not in force),
    False when registered but the 100,000 EUR Union cap is exceeded (Art. 284(2))."""
    if member_state not in seller.eu_sme_countries:
        return None
    cap = threshold(ThresholdName.EU_SME_UNION_TURNOVER, on)
    if cap is None:
        return None
    return _within(counters.union_turnover_previous_year, cap, policy) and _within(
        counters.union_turnover_current_year + amount_eur, cap, policy
    )
