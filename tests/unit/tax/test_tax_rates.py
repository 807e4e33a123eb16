"""Standard VAT rates: every change of TAX_RULES.md §4.2, table integrity, cross-check."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from types import MappingProxyType

import eu_vat_rates_data
import pytest

from tax import rates
from tax.errors import RateNotFoundError
from tax.rates import RatePeriod, countries, rate_period, rate_periods, standard_rate
from tax.territories import EU_MEMBER_STATES, vat_code

D = Decimal

# (country, last day of the old rate, old rate, first day of the new rate, new rate)
CHANGES = [
    ("DE", "2020-06-30", "19", "2020-07-01", "16"),
    ("DE", "2020-12-31", "16", "2021-01-01", "19"),
    ("IE", "2020-08-31", "23", "2020-09-01", "21"),
    ("IE", "2021-02-28", "21", "2021-03-01", "23"),
    ("LU", "2022-12-31", "17", "2023-01-01", "16"),
    ("LU", "2023-12-31", "16", "2024-01-01", "17"),
    ("GR", "2016-05-31", "23", "2016-06-01", "24"),
    ("RO", "2016-12-31", "20", "2017-01-01", "19"),
    ("RO", "2025-07-31", "19", "2025-08-01", "21"),
    ("EE", "2023-12-31", "20", "2024-01-01", "22"),
    ("EE", "2025-06-30", "22", "2025-07-01", "24"),
    ("FI", "2024-08-31", "24", "2024-09-01", "25.5"),
    ("SK", "2024-12-31", "20", "2025-01-01", "23"),
]

# TAX_RULES.md §4.2: standard rates on 2026-11-21.
RATES_2026 = {
    "AT": "20", "BE": "21", "BG": "20", "CY": "19", "CZ": "21", "DE": "19", "DK": "25",
    "EE": "24", "GR": "24", "ES": "21", "FI": "25.5", "FR": "20", "HR": "25", "HU": "27",
    "IE": "23", "IT": "22", "LT": "21", "LU": "17", "LV": "21", "MT": "18", "NL": "21",
    "PL": "23", "PT": "23", "RO": "21", "SE": "25", "SI": "22", "SK": "23",
}  # fmt: skip


@pytest.mark.parametrize(("country", "old_day", "old", "new_day", "new"), CHANGES)
def test_rate_changes_on_the_recorded_day_when_a_member_state_changed_its_rate(
    country: str, old_day: str, old: str, new_day: str, new: str
) -> None:
    assert standard_rate(country, date.fromisoformat(old_day)) == D(old)
    assert standard_rate(country, date.fromisoformat(new_day)) == D(new)


@pytest.mark.parametrize(("country", "rate"), sorted(RATES_2026.items()))
def test_rate_matches_the_reference_when_asked_for_2026_11_21(country: str, rate: str) -> None:
    assert standard_rate(country, date(2026, 11, 21)) == D(rate)


def test_table_covers_exactly_the_27_member_states_when_loaded() -> None:
    assert countries() == EU_MEMBER_STATES
    assert len(countries()) == 27


@pytest.mark.parametrize("country", sorted(EU_MEMBER_STATES))
def test_periods_are_contiguous_from_2016_and_open_ended_when_listed(country: str) -> None:
    periods = rate_periods(country)
    assert periods[0].valid_from == date(2016, 1, 1)
    assert periods[-1].valid_to is None
    for earlier, later in pairwise(periods):
        assert earlier.valid_to is not None
        assert earlier.valid_to + timedelta(days=1) == later.valid_from
        assert earlier.rate != later.rate
    for period in periods:
        # Canonical strings: "19", "25.5", never "19.0" (the CLI prints them as they are).
        assert str(period.rate) == format(period.rate.normalize(), "f")
        assert period.fraction == period.rate / 100
        assert period.source


def test_all_periods_are_listed_oldest_first_when_no_country_is_given() -> None:
    everything = rate_periods()
    assert len(everything) == 27 + len(CHANGES)
    assert everything[0].country == "AT"


@pytest.mark.parametrize(
    ("country", "on"),
    [("DE", date(2015, 12, 31)), ("US", date(2026, 1, 1)), ("EL", date(2026, 1, 1))],
)
def test_lookup_raises_not_found_when_outside_the_table(country: str, on: date) -> None:
    with pytest.raises(RateNotFoundError) as info:
        rate_period(country, on)
    assert info.value.kind == "not_found"


def test_period_covers_its_own_days_only_when_asked() -> None:
    period = rate_period("DE", date(2020, 8, 1))
    assert period.covers(date(2020, 7, 1))
    assert period.covers(date(2020, 12, 31))
    assert not period.covers(date(2021, 1, 1))
    assert not period.covers(date(2020, 6, 30))
    assert rate_period("DE", date(2030, 1, 1)).covers(date(2030, 1, 1))


@pytest.mark.parametrize(
    "on",
    [
        datetime.now(UTC).date(),
        date.fromisoformat(eu_vat_rates_data.data_version),
    ],
    ids=["today", "package-data-date"],
)
def test_rates_agree_with_eu_vat_rates_data_when_cross_checked(on: date) -> None:
    """The maintained package holds only current rates: compare today's (a newer package
    with a changed rate makes this fail, so a stale table is noticed) and the rates on the
    package's own data date."""
    theirs = {
        code: D(str(entry["standard"]))
        for code, entry in eu_vat_rates_data.dataset["rates"].items()
        if entry["eu_member"]
    }
    ours = {vat_code(country): standard_rate(country, on) for country in EU_MEMBER_STATES}
    # The package keys Greece as GR; compare on the VAT code.
    theirs = {vat_code(code): rate for code, rate in theirs.items()}
    assert ours == theirs


def test_lookup_raises_not_found_when_the_last_period_has_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # E.g. a member state leaving the EU would get a closed last period.
    ended = RatePeriod("XX", date(2016, 1, 1), date(2020, 12, 31), D(20), D("0.2"), "test")
    monkeypatch.setattr(rates, "_INDEX", MappingProxyType({"XX": (ended,)}))
    assert rate_period("XX", date(2020, 12, 31)) is ended
    with pytest.raises(RateNotFoundError):
        rate_period("XX", date(2021, 1, 1))
