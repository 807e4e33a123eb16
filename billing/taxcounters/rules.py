"""Pure rules of the tax counters: which stored treatment feeds which counter, how the
ledger and the seller profile's entered figures combine, and the thresholds the tenant is
warned about (no database, no clock).

Counters (``tax.model.Counters``, EUR, TAX_RULES.md §1.2, §1.3, §2.3):

* **§ 19 Gesamtumsatz** (``turnover_*``): consideration *received* (vereinnahmte Entgelte,
  Haufe/Radeisen: "stets der Gesamtumsatz nach vereinnahmten Entgelten"), net of VAT, of
  supplies whose place is Germany (treatments ``domestic`` and ``kleinunternehmer_exempt``;
  cross-border B2B, third-country and destination-taxed supplies are not German supplies).
  A payment counts with the share of its invoice that feeds the counter
  (``turnover_eur / gross``), a refund subtracts the same way, in the year the money moved.
* **Art. 59c cross-border B2C** (``eu_b2c_*``): net of electronic services to consumers in
  other member states, whatever their place of supply turned out to be, from finalized
  invoices minus credit notes.
* **§ 19a / Art. 284(2) Union turnover** (``union_turnover_*``): net of every supply inside
  the EU VAT area, from finalized invoices minus credit notes.

The flags come from :func:`flags_for`, the one place mapping a stored treatment to the
``counts_toward_*`` flags of :class:`tax.model.TaxDecision` (a unit test checks it against
the engine's decisions).

**Entered figures** (seller profile, for tenants that start with abowerk mid-life): the
profile's ``*_current_year`` figures are the opening balance of the calendar year the
profile was created in (what was invoiced or received before the ledger started), added to
that year's ledger; they are ignored for every other year. The ``*_previous_year`` figures
stand for the year before it. For any other year the previous-year value is the ledger's
(plus the opening balance when that year is the year the profile was created).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from tax.kleinunternehmer import Regime, rules_on
from tax.model import Counters, Treatment
from tax.thresholds import ThresholdName, threshold

_ZERO = Decimal(0)
_CENT = Decimal("0.01")
DEFAULT_APPROACHING_PERCENT = Decimal(80)


@dataclass(frozen=True, slots=True)
class Flags:
    """Which counters a supply feeds (mirrors the ``counts_toward_*`` decision flags)."""

    turnover: bool
    eu_b2c: bool
    union: bool


_GERMAN_PLACE = frozenset({Treatment.DOMESTIC, Treatment.KLEINUNTERNEHMER_EXEMPT})


def flags_for(treatment: str, *, cross_border_consumer: bool) -> Flags:
    """The counters a line with the stored ``treatment`` feeds. ``cross_border_consumer``:
    the buyer was a consumer in another member state (a ``domestic`` line to such a buyer is
    a supply below the Art. 59c threshold and still counts toward it)."""
    kind = Treatment(treatment)
    inside_eu = kind is not Treatment.OUT_OF_SCOPE
    return Flags(
        turnover=kind in _GERMAN_PLACE,
        eu_b2c=cross_border_consumer and inside_eu,
        union=inside_eu,
    )


@dataclass(frozen=True, slots=True)
class YearTotals:
    """What the ledger holds for one calendar year, in EUR cents."""

    received_turnover: int = 0
    eu_b2c: int = 0
    union_turnover: int = 0
    entries: int = 0  # ledger entries (documents) booked in the year


@dataclass(frozen=True, slots=True)
class EnteredFigures:
    """The seller profile's typed-in counters (EUR cents) and the year it was created."""

    opening_year: int
    turnover_previous_year: int | None = None
    turnover_current_year: int = 0
    forecast_current_year: int | None = None
    eu_b2c_previous_year: int = 0
    eu_b2c_current_year: int = 0
    union_turnover_previous_year: int = 0
    union_turnover_current_year: int = 0


def _eur(cents: int) -> Decimal:
    return Decimal(cents) * _CENT


def _with_opening(totals: YearTotals, year: int, entered: EnteredFigures) -> tuple[int, int, int]:
    if year != entered.opening_year:
        return totals.received_turnover, totals.eu_b2c, totals.union_turnover
    return (
        totals.received_turnover + entered.turnover_current_year,
        totals.eu_b2c + entered.eu_b2c_current_year,
        totals.union_turnover + entered.union_turnover_current_year,
    )


def combine(
    year: int, current: YearTotals, previous: YearTotals, entered: EnteredFigures
) -> Counters:
    """``tax.model.Counters`` of ``year`` from the ledger totals and the entered figures."""
    turnover, eu_b2c, union = _with_opening(current, year, entered)
    last = year - 1
    if previous.entries or last >= entered.opening_year:
        prev_turnover, prev_eu_b2c, prev_union = _with_opening(previous, last, entered)
        turnover_previous: Decimal | None = _eur(prev_turnover)
    elif last == entered.opening_year - 1:
        # the year before abowerk: only the tenant knows it
        turnover_previous = (
            None if entered.turnover_previous_year is None else _eur(entered.turnover_previous_year)
        )
        prev_eu_b2c = entered.eu_b2c_previous_year
        prev_union = entered.union_turnover_previous_year
    else:
        turnover_previous = None
        prev_eu_b2c = prev_union = 0
    forecast = entered.forecast_current_year if year == entered.opening_year else None
    return Counters(
        turnover_previous_year=turnover_previous,
        turnover_current_year=_eur(turnover),
        forecast_current_year=None if forecast is None else _eur(forecast),
        eu_b2c_previous_year=_eur(prev_eu_b2c),
        eu_b2c_current_year=_eur(eu_b2c),
        union_turnover_previous_year=_eur(prev_union),
        union_turnover_current_year=_eur(union),
    )


# --- thresholds ---------------------------------------------------------------------------


class ThresholdKey(StrEnum):
    """The thresholds a tenant is warned about. The values are part of the API and events."""

    KLEINUNTERNEHMER_CURRENT_YEAR = "kleinunternehmer_current_year"
    KLEINUNTERNEHMER_NEXT_YEAR = "kleinunternehmer_next_year"
    EU_B2C_SERVICES = "eu_b2c_services"
    EU_SME_UNION_TURNOVER = "eu_sme_union_turnover"


_LEGAL_BASIS = {
    ThresholdKey.KLEINUNTERNEHMER_CURRENT_YEAR: (
        "§ 19 Abs. 1 UStG: the exemption ends with the supply that makes the current year's "
        "received turnover exceed the limit (25,000 EUR in the founding year)"
    ),
    ThresholdKey.KLEINUNTERNEHMER_NEXT_YEAR: (
        "§ 19 Abs. 1 UStG: a received turnover above 25,000 EUR this year ends the "
        "exemption for the whole of next year"
    ),
    ThresholdKey.EU_B2C_SERVICES: (
        "Art. 59c VAT Directive, § 3a Abs. 5 S. 3 UStG: above 10,000 EUR cross-border B2C "
        "services are taxed in the customer's member state (OSS)"
    ),
    ThresholdKey.EU_SME_UNION_TURNOVER: (
        "Art. 284(2) VAT Directive, § 19a UStG: above 100,000 EUR Union turnover the EU SME "
        "exemption (EX number) ends; notify the BZSt within 15 working days"
    ),
}


class Status(StrEnum):
    OK = "ok"
    APPROACHING = "approaching"
    CROSSED = "crossed"


@dataclass(frozen=True, slots=True)
class ThresholdState:
    """One threshold of one year: its limit, the counter and where the counter stands."""

    key: ThresholdKey
    limit: Decimal
    value: Decimal
    status: Status
    legal_basis: str

    @property
    def percent(self) -> Decimal:
        return (self.value * 100 / self.limit).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class Regime19:
    """What of the seller profile the threshold list needs."""

    kleinunternehmer: bool
    founded_on: date | None
    eu_sme: bool
    exempt_at_exact_limit: bool = True


def _status(value: Decimal, limit: Decimal, approaching: Decimal, exact_ok: bool) -> Status:
    crossed = value > limit if exact_ok else value >= limit
    if crossed:
        return Status.CROSSED
    if value * 100 >= limit * approaching:
        return Status.APPROACHING
    return Status.OK


def threshold_states(
    year: int,
    counters: Counters,
    regime: Regime19,
    *,
    approaching_percent: Decimal = DEFAULT_APPROACHING_PERCENT,
) -> list[ThresholdState]:
    """The thresholds that apply to the tenant in ``year`` and their status. § 19 limits
    only for a Kleinunternehmer under the 2025 regime, § 19a only with an EX registration;
    Art. 59c always (a regular seller needs to know when OSS starts, too)."""
    on = date(year, 12, 31)
    states: list[tuple[ThresholdKey, Decimal, Decimal]] = []
    if regime.kleinunternehmer:
        rules = rules_on(on)
        if rules.regime is Regime.RUNNING:
            founding = regime.founded_on is not None and regime.founded_on.year == year
            limit = rules.founding_year_limit if founding else rules.current_year_limit
            turnover = counters.turnover_current_year
            states.append((ThresholdKey.KLEINUNTERNEHMER_CURRENT_YEAR, limit, turnover))
            if not founding:
                # the founding year's cap is the same 25,000: one warning is enough
                states.append(
                    (ThresholdKey.KLEINUNTERNEHMER_NEXT_YEAR, rules.previous_year_limit, turnover)
                )
    eu_b2c = threshold(ThresholdName.EU_B2C_SERVICES, on)
    if eu_b2c is not None:
        states.append((ThresholdKey.EU_B2C_SERVICES, eu_b2c, counters.eu_b2c_current_year))
    union = threshold(ThresholdName.EU_SME_UNION_TURNOVER, on)
    if regime.eu_sme and union is not None:
        states.append(
            (ThresholdKey.EU_SME_UNION_TURNOVER, union, counters.union_turnover_current_year)
        )
    return [
        ThresholdState(
            key,
            limit,
            value,
            _status(value, limit, approaching_percent, regime.exempt_at_exact_limit),
            _LEGAL_BASIS[key],
        )
        for key, limit, value in states
    ]
