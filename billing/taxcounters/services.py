"""Tax counter use cases: book finalized documents into the ledger, derive the counters the
tax engine needs before a supply, and warn the tenant about thresholds.

Callers pass the session (scoped to the tenant); services flush, never commit.

* :func:`record_invoice` / :func:`record_credit_note` write the document's ledger entry in
  its own transaction (finalization calls them).
* :func:`counters_for` is one aggregate query (:mod:`billing.taxcounters.queries`) plus the
  entered figures of the seller profile (:func:`billing.taxcounters.rules.combine`).
* :func:`after_ledger_change` compares the year's counters with the thresholds and emits
  ``tax.threshold.approaching`` / ``tax.threshold.crossed`` once per tenant, mode, year,
  threshold and kind (the unique key of ``tax_threshold_warnings`` decides who sends it when
  two transactions race). A session hook (:func:`install`) runs it before commit for every
  year that got a ledger entry or a succeeded payment or refund in the transaction, so
  invoices, manual payments, Stripe payments and refunds all trigger the check without
  calling it.
* The warning level is ``ABOWERK_TAX_APPROACHING_PERCENT`` (default 80) percent of a limit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from billing.invoices.exchange import ecb_rate
from billing.invoices.models import CREDIT_NOTE as INVOICE_CREDIT_NOTE
from billing.invoices.models import DRAFT, Invoice, InvoiceLine
from billing.payments.models import SUCCEEDED, Payment
from billing.sellers.models import SellerProfile
from billing.sellers.services import find_seller_profile
from billing.taxcounters import queries
from billing.taxcounters.models import (
    CREDIT_NOTE,
    INVOICE,
    TaxLedgerEntry,
    TaxThresholdWarning,
)
from billing.taxcounters.rules import (
    DEFAULT_APPROACHING_PERCENT,
    EnteredFigures,
    Regime19,
    Status,
    ThresholdState,
    combine,
    flags_for,
    threshold_states,
)
from saas.customers.models import Customer
from saas.events.services import emit_event
from saas.kernel.clock import utcnow
from saas.kernel.db import table_of
from saas.kernel.ids import new_id
from saas.kernel.tenancy import TENANT_KEY, current_tenant
from saas.tenants.models import Tenant
from tax.model import Counters, TaxDecision
from tax.territories import EU_MEMBER_STATES

EVENT_APPROACHING = "tax.threshold.approaching"
EVENT_CROSSED = "tax.threshold.crossed"

_EUR = "EUR"
_CENT = Decimal("0.01")
_PENDING_KEY = "abowerk.taxcounters.pending"


def approaching_percent() -> Decimal:
    """The warning level in percent of a limit (``ABOWERK_TAX_APPROACHING_PERCENT``)."""
    raw = os.environ.get("ABOWERK_TAX_APPROACHING_PERCENT", "").strip()
    if not raw:
        return DEFAULT_APPROACHING_PERCENT
    value = Decimal(raw)
    if not 0 < value <= 100:
        raise ValueError("ABOWERK_TAX_APPROACHING_PERCENT must be in (0, 100]")
    return value


_ZONE_KEY = "abowerk.taxcounters.zone"


def _zone(session: Session) -> ZoneInfo:
    """The tenant's time zone, cached for the session (counters_for stays one statement)."""
    tenant_id = current_tenant(session)
    cached = session.info.get(_ZONE_KEY)
    if cached is not None and cached[0] == tenant_id:
        return cached[1]  # type: ignore[no-any-return]
    tenant = session.get(Tenant, tenant_id)
    zone = ZoneInfo(tenant.timezone if tenant is not None else "Europe/Berlin")
    session.info[_ZONE_KEY] = (tenant_id, zone)
    return zone


def _entered(profile: SellerProfile, zone: ZoneInfo) -> EnteredFigures:
    return EnteredFigures(
        opening_year=profile.created_at.astimezone(zone).year,
        turnover_previous_year=profile.turnover_previous_year,
        turnover_current_year=profile.turnover_current_year or 0,
        forecast_current_year=profile.forecast_current_year,
        eu_b2c_previous_year=profile.eu_b2c_previous_year or 0,
        eu_b2c_current_year=profile.eu_b2c_current_year or 0,
        union_turnover_previous_year=profile.union_turnover_previous_year or 0,
        union_turnover_current_year=profile.union_turnover_current_year or 0,
    )


def counters_of_year(
    session: Session, profile: SellerProfile, *, livemode: bool, year: int
) -> Counters:
    """The counters of ``year`` as the ledger holds them now."""
    zone = _zone(session)
    current, previous = queries.year_totals(
        session, current_tenant(session), livemode=livemode, year=year, zone=zone
    )
    return combine(year, current, previous, _entered(profile, zone))


def counters_for(session: Session, profile: SellerProfile, *, livemode: bool, on: date) -> Counters:
    """``tax.model.Counters`` before a supply on ``on``: the documents booked and the money
    received so far in its calendar year, and the previous year's totals."""
    return counters_of_year(session, profile, livemode=livemode, year=on.year)


# --- booking ------------------------------------------------------------------------------


def _to_eur_cents(amount_minor: int, currency: str, rate: Decimal | None) -> int:
    """Minor units of ``currency`` in EUR cents at ``rate`` (units per EUR), half-up; the
    engine converts the same way (:func:`billing.invoices.snapshots.to_eur`)."""
    if currency == _EUR:
        return amount_minor
    if rate is None:
        return 0  # no ECB rate: nothing this module could count (documented in docs/tax.md)
    from billing.documents.model import to_decimal

    eur = (to_decimal(amount_minor, currency) / rate).quantize(_CENT, ROUND_HALF_UP)
    return int(eur * 100)


def _rate(currency: str, stored: Decimal | None, supplied_on: date) -> Decimal | None:
    if currency == _EUR or stored is not None:
        return stored
    from billing.invoices.errors import ExchangeRateUnavailableError

    try:
        return ecb_rate(currency, supplied_on)[0]
    except ExchangeRateUnavailableError:
        return None


@dataclass(frozen=True, slots=True)
class _Line:
    treatment: str
    net_minor: int


def _entry(
    *,
    document_id: str,
    invoice_id: str,
    kind: str,
    livemode: bool,
    booked_on: date,
    currency: str,
    gross_minor: int,
    lines: Sequence[_Line],
    cross_border_consumer: bool,
    rate: Decimal | None,
    sign: int,
    now: datetime,
) -> dict[str, Any]:
    """The entry's column values (a plain dict: the set-based writer of a billing run books
    tens of thousands per batch, where building ORM objects alone would cost a third)."""
    turnover = turnover_eur = eu_b2c = union = 0
    for line in lines:
        flags = flags_for(line.treatment, cross_border_consumer=cross_border_consumer)
        eur = _to_eur_cents(line.net_minor, currency, rate)
        if flags.turnover:
            turnover += line.net_minor
            turnover_eur += eur
        if flags.eu_b2c:
            eu_b2c += eur
        if flags.union:
            union += eur
    return {
        "id": new_id("txl"),
        "livemode": livemode,
        "document_id": document_id,
        "invoice_id": invoice_id,
        "kind": kind,
        "year": booked_on.year,
        "booked_on": booked_on,
        "currency": currency,
        "gross_minor": sign * gross_minor,
        "turnover_minor": sign * turnover,
        "turnover_eur_minor": sign * turnover_eur,
        "eu_b2c_eur_minor": sign * eu_b2c,
        "union_eur_minor": sign * union,
        "cross_border_consumer": cross_border_consumer,
        "created_at": now,
    }


def record_invoice(
    session: Session,
    invoice: Invoice,
    decisions: Sequence[TaxDecision],
    *,
    eur_rate: Decimal | None,
    now: datetime,
) -> TaxLedgerEntry:
    """Book a just-finalized invoice (``decisions`` in line order; ``eur_rate`` the ECB rate
    of the supply date the engine used, None for EUR or when none was published)."""
    if invoice.supplied_on is None or invoice.gross_minor is None:
        raise ValueError("only a finalized invoice can be booked")
    entry = TaxLedgerEntry(
        **_entry(
            document_id=invoice.id,
            invoice_id=invoice.id,
            kind=INVOICE,
            livemode=invoice.livemode,
            booked_on=invoice.supplied_on,
            currency=invoice.currency,
            gross_minor=invoice.gross_minor,
            lines=[
                _Line(d.treatment.value, line.net_minor)
                for line, d in zip(invoice.lines, decisions, strict=True)
            ],
            cross_border_consumer=any(d.counts_toward_eu_b2c for d in decisions),
            rate=_rate(invoice.currency, eur_rate, invoice.supplied_on),
            sign=1,
            now=now,
        )
    )
    session.add(entry)
    return entry


_DESTINATION = frozenset({"oss_destination", "destination_no_oss", "eu_sme_exempt"})
_SELLER_PLACE = frozenset({"domestic", "kleinunternehmer_exempt"})


def record_credit_note(
    session: Session, note: Invoice, original: Invoice, *, now: datetime
) -> TaxLedgerEntry:
    """Book a credit note: negative amounts, the corrected lines' treatments, the original's
    exchange rate, in the year the note was issued."""
    if note.issued_on is None or note.gross_minor is None or original.supplied_on is None:
        raise ValueError("only a finalized credit note of a finalized invoice can be booked")
    booked = session.scalars(
        sa.select(TaxLedgerEntry.cross_border_consumer).where(
            TaxLedgerEntry.document_id == original.id
        )
    ).first()
    if booked is None:
        # an invoice finalized before the ledger existed: its treatments tell most cases
        booked = any(line.tax_treatment in _DESTINATION for line in original.lines)
    entry = TaxLedgerEntry(
        **_entry(
            document_id=note.id,
            invoice_id=original.id,
            kind=CREDIT_NOTE,
            livemode=note.livemode,
            booked_on=note.issued_on,
            currency=note.currency,
            gross_minor=note.gross_minor,
            lines=[
                _Line(line.tax_treatment or "out_of_scope", line.net_minor) for line in note.lines
            ],
            cross_border_consumer=booked,
            rate=_rate(original.currency, original.eur_rate, original.supplied_on),
            sign=-1,
            now=now,
        )
    )
    session.add(entry)
    return entry


def ledger_row(
    tenant_id: str,
    *,
    invoice_id: str,
    livemode: bool,
    supplied_on: date,
    currency: str,
    gross_minor: int,
    net_minors: Sequence[int],
    decisions: Sequence[TaxDecision],
    eur_rate: Decimal | None,
    now: datetime,
) -> dict[str, Any]:
    """The ``tax_ledger_entries`` row of a finalized invoice, for writers that insert rows
    set-based (``sa.insert(LEDGER_TABLE)``) instead of calling :func:`record_invoice`."""
    entry = _entry(
        document_id=invoice_id,
        invoice_id=invoice_id,
        kind=INVOICE,
        livemode=livemode,
        booked_on=supplied_on,
        currency=currency,
        gross_minor=gross_minor,
        lines=[_Line(d.treatment.value, n) for n, d in zip(net_minors, decisions, strict=True)],
        cross_border_consumer=any(d.counts_toward_eu_b2c for d in decisions),
        rate=_rate(currency, eur_rate, supplied_on),
        sign=1,
        now=now,
    )
    return entry | {"tenant_id": tenant_id}


LEDGER_TABLE = table_of(TaxLedgerEntry)


def _cross_border(treatments: set[str], buyer_country: str | None, seller_country: str) -> bool:
    """Whether the buyer was a consumer in another member state, from what a document
    stores: a destination treatment says so; a seller-place treatment to a buyer in another
    member state can only be a consumer below the Art. 59c threshold (a business there
    would have been reverse charge)."""
    if treatments & _DESTINATION:
        return True
    return (
        bool(treatments & _SELLER_PLACE)
        and buyer_country in EU_MEMBER_STATES
        and buyer_country != seller_country
    )


_BOOK_CHUNK = 1000


def book_unbooked(session: Session, *, livemode: bool, year: int, now: datetime) -> int:
    """Book the finalized documents of ``year`` that have no ledger entry (written by a
    set-based writer that did not add one, or finalized before the ledger existed); returns
    how many. One anti-join when there is nothing to do. Invoices are read as plain rows
    (no snapshot): the buyer's country is the customer's."""
    profile = find_seller_profile(session, livemode=livemode)
    seller_country = profile.country if profile is not None else "DE"
    first, last = date(year, 1, 1), date(year, 12, 31)
    is_note = Invoice.kind == INVOICE_CREDIT_NOTE
    unbooked = ~sa.exists(
        sa.select(TaxLedgerEntry.id).where(
            TaxLedgerEntry.tenant_id == Invoice.tenant_id,
            TaxLedgerEntry.document_id == Invoice.id,
        )
    )
    base = (Invoice.livemode == livemode, Invoice.status != DRAFT, unbooked)
    invoices = session.execute(
        sa.select(
            Invoice.id,
            Invoice.supplied_on,
            Invoice.currency,
            Invoice.gross_minor,
            Invoice.eur_rate,
            Customer.country,
        )
        .join(
            Customer,
            sa.and_(Customer.tenant_id == Invoice.tenant_id, Customer.id == Invoice.customer_id),
        )
        .where(*base, sa.not_(is_note), Invoice.supplied_on.between(first, last))
        .order_by(Invoice.finalized_at, Invoice.id)
    ).all()
    for start in range(0, len(invoices), _BOOK_CHUNK):
        chunk = invoices[start : start + _BOOK_CHUNK]
        lines: dict[str, list[_Line]] = {row.id: [] for row in chunk}
        for invoice_id, treatment, net in session.execute(
            sa.select(InvoiceLine.invoice_id, InvoiceLine.tax_treatment, InvoiceLine.net_minor)
            .where(InvoiceLine.invoice_id.in_(list(lines)))
            .order_by(InvoiceLine.invoice_id, InvoiceLine.position)
        ):
            lines[invoice_id].append(_Line(treatment or "out_of_scope", net))
        for row in chunk:
            if row.supplied_on is None or row.gross_minor is None:
                continue
            own = lines[row.id]
            session.add(
                TaxLedgerEntry(
                    **_entry(
                        document_id=row.id,
                        invoice_id=row.id,
                        kind=INVOICE,
                        livemode=livemode,
                        booked_on=row.supplied_on,
                        currency=row.currency,
                        gross_minor=row.gross_minor,
                        lines=own,
                        cross_border_consumer=_cross_border(
                            {ln.treatment for ln in own}, row.country, seller_country
                        ),
                        rate=_rate(row.currency, row.eur_rate, row.supplied_on),
                        sign=1,
                        now=now,
                    )
                )
            )
        session.flush()
    notes = session.scalars(
        sa.select(Invoice)
        .where(*base, is_note, Invoice.issued_on.between(first, last))
        .options(selectinload(Invoice.lines))
        .order_by(Invoice.finalized_at, Invoice.id)
    ).all()
    for note in notes:
        original = session.get(Invoice, (note.tenant_id, note.corrects_invoice_id))
        if original is not None:
            record_credit_note(session, note, original, now=now)
    return len(invoices) + len(notes)


# --- thresholds ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CountersReport:
    """The counters of a year and where each threshold stands (the dashboard's data)."""

    year: int
    livemode: bool
    counters: Counters
    thresholds: tuple[ThresholdState, ...]
    warned: frozenset[tuple[str, str]]  # (threshold, kind) already sent


def _regime(profile: SellerProfile) -> Regime19:
    return Regime19(
        kleinunternehmer=profile.kleinunternehmer,
        founded_on=profile.founded_on,
        eu_sme=bool(profile.eu_sme_countries),
        exempt_at_exact_limit=profile.exempt_at_exact_limit,
    )


def _warned(session: Session, *, livemode: bool, year: int) -> frozenset[tuple[str, str]]:
    rows = session.execute(
        sa.select(TaxThresholdWarning.threshold, TaxThresholdWarning.kind).where(
            TaxThresholdWarning.livemode == livemode, TaxThresholdWarning.year == year
        )
    ).all()
    return frozenset((str(t), str(k)) for t, k in rows)


def counters_report(
    session: Session, profile: SellerProfile, *, livemode: bool, year: int
) -> CountersReport:
    counters = counters_of_year(session, profile, livemode=livemode, year=year)
    states = threshold_states(
        year, counters, _regime(profile), approaching_percent=approaching_percent()
    )
    return CountersReport(
        year, livemode, counters, tuple(states), _warned(session, livemode=livemode, year=year)
    )


def threshold_json(state: ThresholdState) -> dict[str, Any]:
    return {
        "threshold": state.key.value,
        "limit": str(state.limit.quantize(_CENT)),
        "value": str(state.value.quantize(_CENT)),
        "percent": str(state.percent),
        "status": state.status.value,
        "legal_basis": state.legal_basis,
    }


def _claim(
    session: Session, *, livemode: bool, year: int, state: ThresholdState, at: datetime
) -> bool:
    """Insert the warning row unless it exists; True when this transaction inserted it."""
    values = {
        "tenant_id": current_tenant(session),
        "id": new_id("ttw"),
        "livemode": livemode,
        "year": year,
        "threshold": state.key.value,
        "kind": state.status.value,
        "value_eur_minor": int(state.value * 100),
        "limit_eur_minor": int(state.limit * 100),
        "created_at": at,
    }
    keys = ["tenant_id", "livemode", "year", "threshold", "kind"]
    table = table_of(TaxThresholdWarning)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=keys)
        .returning(table.c.id)
    )
    return session.execute(stmt).first() is not None


def after_ledger_change(session: Session, *, livemode: bool, year: int, at: datetime) -> None:
    """After documents or payments of ``year`` were written: book any document of the year
    that has no ledger entry yet (:func:`book_unbooked`: a set-based writer's invoices), then
    warn the tenant about every threshold it now approaches or has crossed, unless that
    warning was sent already."""
    book_unbooked(session, livemode=livemode, year=year, now=at)
    session.flush()
    check_thresholds(session, livemode=livemode, year=year, at=at)


def check_thresholds(session: Session, *, livemode: bool, year: int, at: datetime) -> None:
    """Emit the threshold warnings of ``year`` that are due. Cheap when nothing is near a
    limit: one aggregate query."""
    profile = find_seller_profile(session, livemode=livemode)
    if profile is None:
        return
    counters = counters_of_year(session, profile, livemode=livemode, year=year)
    states = [
        s
        for s in threshold_states(
            year, counters, _regime(profile), approaching_percent=approaching_percent()
        )
        if s.status is not Status.OK
    ]
    if not states:
        return
    warned = _warned(session, livemode=livemode, year=year)
    for state in states:
        if (state.key.value, state.status.value) in warned:
            continue
        if not _claim(session, livemode=livemode, year=year, state=state, at=at):
            continue
        emit_event(
            session,
            EVENT_CROSSED if state.status is Status.CROSSED else EVENT_APPROACHING,
            {"object": {"object": "tax.threshold", "year": year, **threshold_json(state)}},
            now=at,
            livemode=livemode,
        )


# --- the session hook ---------------------------------------------------------------------


def _collect(session: Session, _flush_context: Any, _instances: Any) -> None:
    pending: set[tuple[str, bool, date]] = session.info.setdefault(_PENDING_KEY, set())
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, TaxLedgerEntry):
            pending.add((obj.tenant_id or "", obj.livemode, obj.booked_on))
        elif isinstance(obj, Payment) and obj.status == SUCCEEDED and obj.received_at:
            # a payment's year is its local date's, worked out when the check runs
            pending.add((obj.tenant_id or "", obj.livemode, obj.received_at))


def _check_pending(session: Session) -> None:
    if session.info.get(_PENDING_KEY) is None and not session.new and not session.dirty:
        return
    session.flush()  # before_commit runs before commit's own flush: collect what is pending
    pending: set[tuple[str, bool, date | datetime]] | None = session.info.pop(_PENDING_KEY, None)
    tenant_id = session.info.get(TENANT_KEY)
    if not pending or not tenant_id:
        return
    zone = _zone(session)
    years: set[tuple[bool, int]] = set()
    for owner, livemode, when in pending:
        if owner and owner != tenant_id:
            continue  # rows of another tenant cannot be in a tenant-scoped session
        day = when.astimezone(zone).date() if isinstance(when, datetime) else when
        years.add((livemode, day.year))
    now = utcnow()
    for livemode, year in sorted(years):
        check_thresholds(session, livemode=livemode, year=year, at=now)
    session.flush()
    session.info.pop(_PENDING_KEY, None)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def install() -> None:
    """Attach the threshold check to every Session (idempotent)."""
    if event.contains(Session, "before_flush", _collect):
        return
    event.listen(Session, "before_flush", _collect)
    event.listen(Session, "before_commit", _check_pending)
    event.listen(Session, "after_rollback", _forget)


install()
