"""Invoice use cases: drafts, finalization, payment status, credit notes, voiding.

Callers pass the session (scoped to a tenant), the actor and ``now``; services flush, the
request (or task) commits. Rules:

* **Drafts** hold lines (description, quantity, unit price, service period) and can change
  freely. Nothing about tax is decided before finalization.
* **Finalization** (:func:`finalize_invoice`) decides every line's VAT with the tax engine
  (the seller profile, the customer's facts, the supply date), builds the frozen
  :class:`~billing.documents.InvoiceSnapshot` with both parties as they are now, validates it
  (:func:`billing.documents.validate_invoice`: ``invoice_incomplete`` / ``invoice_invalid``,
  422), takes the next number of the series (:mod:`billing.invoices.counters`) and stores
  the canonical JSON, its SHA-256 and the totals. It renders nothing: the documents are
  rendered by a worker after the commit (:mod:`billing.invoices.rendering`).
* **Frozen** afterwards: only the status and payment columns change
  (:mod:`billing.invoices.immutability`). Status moves open → paid / uncollectible / void,
  uncollectible → paid / void.
* **Credit notes** correct a finalized invoice by a new numbered document with the same
  tax treatment (:func:`create_credit_note`): per corrected line, never more than what is
  left of it (422 ``credit_note_exceeds_invoice``). Voiding issues a credit note for
  everything left and sets the invoice ``void``.
* **Locking**: every change first locks the invoice row (``SELECT … FOR UPDATE``; on SQLite
  the single writer) and the row's ``version`` guards the write (409 ``invoice_conflict``),
  so two concurrent finalizations of one draft cannot both take a number.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from billing.documents.errors import InvoiceIncompleteError
from billing.documents.model import (
    DocumentKind,
    EurConversion,
    InvoiceSnapshot,
    Period,
    canonical_json,
)
from billing.documents.model import (
    InvoiceLine as SnapshotLine,
)
from billing.documents.rules import validate_invoice
from billing.invoices import immutability as _immutability  # noqa: F401  (installs the guard)
from billing.invoices.counters import next_number
from billing.invoices.errors import (
    CreditNoteExceedsInvoiceError,
    CreditNoteNotFoundError,
    CurrencyNotAcceptedError,
    ExchangeRateUnavailableError,
    InvalidInvoiceTransitionError,
    InvoiceConflictError,
    InvoiceLineNotFoundError,
    InvoiceNotDraftError,
    InvoiceNotFinalizedError,
    InvoiceNotFoundError,
    tax_decision_failed,
)
from billing.invoices.exchange import ecb_rate
from billing.invoices.models import (
    CANCELLATION,
    CORRECTION,
    CREDIT_NOTE,
    DRAFT,
    INVOICE,
    INVOICE_KINDS,
    ISSUED,
    OPEN,
    PAID,
    SMALL_AMOUNT,
    UNCOLLECTIBLE,
    VOID,
    Invoice,
    InvoiceLine,
    InvoiceTaxGroup,
)
from billing.invoices.rendering import request_documents
from billing.invoices.retention import retention_ends_on
from billing.invoices.snapshots import (
    CustomerData,
    LineData,
    build_credit_note_snapshot,
    build_invoice_snapshot,
    decide_lines,
    line_net_minor,
)
from billing.numbering import parse_pattern
from billing.sellers.models import SellerProfile
from billing.sellers.services import (
    require_seller_profile,
    seller_party,
    tax_policy,
    tax_seller,
)
from billing.taxcounters import counters_for, record_credit_note, record_invoice
from saas.customers.models import Customer
from saas.customers.services import get_customer
from saas.events.services import emit_event
from saas.kernel.errors import ValidationFailedError
from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_tenant
from saas.tenants.models import Tenant
from saas.testclocks.queries import clock_now
from tax.errors import MissingEurAmountError, TaxError
from tax.model import Counters, TaxDecision

MAX_LINES = 500
_PLACEHOLDER_NUMBER = "DRAFT"
_PAYABLE = (OPEN, UNCOLLECTIBLE)


# --- reads --------------------------------------------------------------------------------


def get_invoice(session: Session, invoice_id: str) -> Invoice:
    invoice = session.scalars(
        sa.select(Invoice).where(Invoice.id == invoice_id, Invoice.kind.in_(INVOICE_KINDS))
    ).first()
    if invoice is None:
        raise InvoiceNotFoundError(f"no invoice {invoice_id}")
    return invoice


def get_credit_note(session: Session, credit_note_id: str) -> Invoice:
    note = session.scalars(
        sa.select(Invoice).where(Invoice.id == credit_note_id, Invoice.kind == CREDIT_NOTE)
    ).first()
    if note is None:
        raise CreditNoteNotFoundError(f"no credit note {credit_note_id}")
    return note


def _lock(session: Session, invoice_id: str) -> Invoice:
    """Load an invoice (not a credit note) for a change: the row stays locked until commit
    on PostgreSQL; the ``version`` check on write covers SQLite's unlocked reads."""
    invoice = session.scalars(
        sa.select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.kind.in_(INVOICE_KINDS))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if invoice is None:
        raise InvoiceNotFoundError(f"no invoice {invoice_id}")
    return invoice


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise InvoiceConflictError("the invoice was changed concurrently; try again") from exc


def _require_draft(invoice: Invoice) -> None:
    if invoice.status != DRAFT:
        raise InvoiceNotDraftError(
            f"invoice {invoice.number} is {invoice.status}: its content is frozen; "
            "correct it with a credit note"
        )


def _payload(invoice: Invoice) -> dict[str, Any]:
    from billing.invoices.schemas import CreditNoteOut, InvoiceOut

    schema = CreditNoteOut() if invoice.kind == CREDIT_NOTE else InvoiceOut()
    return dict(schema.dump(invoice))


def _emit(session: Session, type_: str, invoice: Invoice, now: datetime) -> None:
    emit_event(session, type_, {"object": _payload(invoice)}, now=now, livemode=invoice.livemode)


def _check_currency(profile: SellerProfile, currency: str) -> None:
    accepted = profile.accepted_currencies or ["EUR"]
    if currency not in accepted:
        raise CurrencyNotAcceptedError(
            f"the seller invoices in {', '.join(accepted)}, not {currency}",
            errors={"currency": [f"one of {', '.join(accepted)} (seller profile)"]},
        )


def _local_today(session: Session, at: datetime) -> date:
    tenant = session.get(Tenant, current_tenant(session))
    zone = ZoneInfo(tenant.timezone if tenant is not None else "Europe/Berlin")
    return at.astimezone(zone).date()


# --- drafts -------------------------------------------------------------------------------


def _new_line(invoice: Invoice, position: int, data: dict[str, Any], now: datetime) -> InvoiceLine:
    period = data.get("period") or {}
    quantity: Decimal = data["quantity"]
    return InvoiceLine(
        id=new_id("il"),
        livemode=invoice.livemode,
        invoice_id=invoice.id,
        position=position,
        description=data["description"],
        quantity=quantity,
        unit_amount=data["unit_amount"],
        unit_code=data.get("unit_code") or "C62",
        net_minor=line_net_minor(quantity, data["unit_amount"]),
        period_start_on=period.get("start"),
        period_end_on=period.get("end"),
        created_at=now,
    )


def create_draft(session: Session, data: dict[str, Any], *, now: datetime) -> Invoice:
    """A one-off draft invoice for a customer (``InvoiceCreateIn``)."""
    customer = get_customer(session, data["customer_id"])
    profile = require_seller_profile(session, livemode=customer.livemode)
    currency = data.get("currency")
    if currency is None:
        tenant = session.get(Tenant, current_tenant(session))
        default = tenant.default_currency if tenant is not None else "EUR"
        accepted = profile.accepted_currencies or ["EUR"]
        currency = default if default in accepted else accepted[0]
    _check_currency(profile, currency)
    lines = data.get("lines") or []
    if len(lines) > MAX_LINES:
        raise ValidationFailedError(errors={"lines": [f"at most {MAX_LINES} lines"]})
    invoice = Invoice(
        id=new_id("in"),
        livemode=customer.livemode,
        kind=data.get("kind") or INVOICE,
        status=DRAFT,
        customer_id=customer.id,
        currency=currency,
        language=data.get("language") or profile.invoice_language,
        supplied_on=data.get("supplied_on"),
        buyer_reference=data.get("buyer_reference"),
        metadata_=data.get("metadata") or {},
        credited_net_minor=0,
        credited_gross_minor=0,
        created_at=now,
        updated_at=now,
    )
    invoice.lines = [_new_line(invoice, i + 1, line, now) for i, line in enumerate(lines)]
    session.add(invoice)
    _flush(session)
    _emit(session, "invoice.created", invoice, now)
    return invoice


def add_line(session: Session, invoice_id: str, data: dict[str, Any], *, now: datetime) -> Invoice:
    invoice = _lock(session, invoice_id)
    _require_draft(invoice)
    if len(invoice.lines) >= MAX_LINES:
        raise ValidationFailedError(errors={"lines": [f"at most {MAX_LINES} lines"]})
    position = max((line.position for line in invoice.lines), default=0) + 1
    invoice.lines.append(_new_line(invoice, position, data, now))
    invoice.updated_at = now
    _flush(session)
    return invoice


def remove_line(session: Session, invoice_id: str, line_id: str, *, now: datetime) -> Invoice:
    invoice = _lock(session, invoice_id)
    line = next((line for line in invoice.lines if line.id == line_id), None)
    if line is None:
        raise InvoiceLineNotFoundError(f"invoice {invoice_id} has no line {line_id}")
    _require_draft(invoice)
    invoice.lines.remove(line)
    invoice.updated_at = now
    _flush(session)
    return invoice


# --- finalization -------------------------------------------------------------------------


def _line_data(line: InvoiceLine) -> LineData:
    period = None
    if line.period_start_on is not None and line.period_end_on is not None:
        period = Period(line.period_start_on, line.period_end_on)
    return LineData(
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        net_minor=line.net_minor,
        unit_code=line.unit_code,
        period=period,
    )


def _customer_data(customer: Customer) -> CustomerData:
    return CustomerData(
        name=customer.name,
        country=customer.country,
        line1=customer.address_line1,
        line2=customer.address_line2,
        postal_code=customer.postal_code,
        city=customer.city,
        is_business=customer.is_business,
        vat_id=customer.vat_id,
        vat_id_status=customer.vat_id_status,
    )


def _rate_bp(rate: Decimal) -> int:
    basis_points = rate * 100
    if basis_points != basis_points.to_integral_value():
        raise ValueError(f"VAT rate {rate} has more than two decimals")
    return int(basis_points)


def _decide(
    profile: SellerProfile,
    counters: Counters,
    customer: CustomerData,
    lines: Sequence[LineData],
    *,
    supplied_on: date,
    currency: str,
    eur_rate: Decimal | None,
    rate_error: ExchangeRateUnavailableError | None,
) -> list[TaxDecision]:
    try:
        return decide_lines(
            tax_seller(profile),
            counters,
            customer.facts(),
            lines,
            supplied_on=supplied_on,
            currency=currency,
            eur_rate=eur_rate,
            policy=tax_policy(profile),
        )
    except MissingEurAmountError as exc:
        # a threshold test needs the EUR amount and the ECB had no rate for the day
        raise rate_error or ExchangeRateUnavailableError(exc.message) from exc
    except TaxError as exc:
        raise tax_decision_failed(exc) from exc


def _conversion(
    currency: str, supplied_on: date
) -> tuple[Decimal | None, date | None, ExchangeRateUnavailableError | None]:
    if currency == "EUR":
        return None, None, None
    try:
        rate, published_on = ecb_rate(currency, supplied_on)
    except ExchangeRateUnavailableError as exc:
        return None, None, exc
    return rate, published_on, None


def _store_tax_groups(invoice: Invoice, snapshot: InvoiceSnapshot) -> None:
    groups = []
    for position, group in enumerate(snapshot.totals.groups, start=1):
        members = [
            line.tax
            for line in snapshot.lines
            if line.tax.category is group.category and line.tax.rate == group.rate
        ]
        countries = {tax.taxing_country for tax in members}
        groups.append(
            InvoiceTaxGroup(
                id=new_id("itg"),
                livemode=invoice.livemode,
                invoice_id=invoice.id,
                position=position,
                category=group.category.value,
                rate_bp=_rate_bp(group.rate),
                treatment=members[0].treatment.value,
                taxing_country=countries.pop() if len(countries) == 1 else None,
                taxable_minor=group.taxable_minor,
                vat_minor=group.vat_minor,
                vat_eur_minor=group.vat_eur_minor,
                exemption_reason_code=group.exemption_reason_code,
                exemption_reason=group.exemption_reason,
            )
        )
    invoice.tax_groups = groups


def _freeze(
    invoice: Invoice,
    snapshot: InvoiceSnapshot,
    *,
    series: str,
    oss: bool,
    at: datetime,
) -> None:
    """Write the frozen content of a finalized document (its status is set by the caller)."""
    data = canonical_json(snapshot)
    totals = snapshot.totals
    invoice.number = snapshot.number
    invoice.number_series = series
    invoice.issued_on = snapshot.issue_date
    invoice.supplied_on = snapshot.supply_date
    invoice.due_on = snapshot.due_date
    invoice.finalized_at = at
    invoice.snapshot_json = data
    invoice.content_sha256 = hashlib.sha256(data).hexdigest()
    invoice.net_minor = totals.net_minor
    invoice.vat_minor = totals.vat_minor
    invoice.gross_minor = totals.gross_minor
    invoice.vat_eur_minor = totals.vat_eur_minor
    conversion = snapshot.eur_conversion
    invoice.eur_rate = conversion.rate if conversion is not None else None
    invoice.eur_rate_on = conversion.rate_date if conversion is not None else None
    invoice.oss_reportable = oss
    invoice.retention_ends_on = retention_ends_on(snapshot.issue_date, oss=oss)
    _store_tax_groups(invoice, snapshot)


def _series(profile: SellerProfile, *, credit_note: bool) -> tuple[str, str]:
    if credit_note and not profile.credit_notes_share_invoice_series:
        return "credit_note", profile.credit_note_number_pattern
    return "invoice", profile.invoice_number_pattern


def finalize_invoice(session: Session, invoice_id: str, *, actor: str, now: datetime) -> Invoice:
    """Decide the tax, freeze the content, number it. See the module docstring."""
    invoice = _lock(session, invoice_id)
    _require_draft(invoice)
    profile = require_seller_profile(session, livemode=invoice.livemode)
    _check_currency(profile, invoice.currency)
    if not invoice.lines:
        raise InvoiceIncompleteError(
            "an invoice needs at least one line (§ 14 Abs. 4 Nr. 5 UStG)",
            errors={"lines": "at least one line"},
        )
    customer = get_customer(session, invoice.customer_id)
    at = clock_now(session, customer.test_clock_id, now)
    issued_on = _local_today(session, at)
    supplied_on = invoice.supplied_on or issued_on
    lines = [_line_data(line) for line in invoice.lines]
    buyer = _customer_data(customer)
    rate, rate_on, rate_error = _conversion(invoice.currency, supplied_on)
    # the counters from the ledger (billing.taxcounters): documents booked and money received
    # so far in the supply's year, so a supply that crosses a threshold is decided as such
    counters = counters_for(session, profile, livemode=invoice.livemode, on=supplied_on)
    decisions = _decide(
        profile,
        counters,
        buyer,
        lines,
        supplied_on=supplied_on,
        currency=invoice.currency,
        eur_rate=rate,
        rate_error=rate_error,
    )
    kind = DocumentKind.SMALL_AMOUNT if invoice.kind == SMALL_AMOUNT else DocumentKind.INVOICE
    conversion = None
    if invoice.currency != "EUR" and (
        kind is DocumentKind.SMALL_AMOUNT or any(d.vat != 0 for d in decisions)
    ):
        if rate is None or rate_on is None:
            raise rate_error or ExchangeRateUnavailableError("no ECB rate")
        conversion = EurConversion(rate, rate_on)
    due_on = issued_on + timedelta(days=profile.payment_terms_days)
    snapshot = build_invoice_snapshot(
        kind=kind,
        number=_PLACEHOLDER_NUMBER,
        issued_on=issued_on,
        supplied_on=supplied_on,
        seller=seller_party(profile),
        buyer=buyer.party(),
        lines=lines,
        decisions=decisions,
        currency=invoice.currency,
        language=invoice.language,
        due_on=due_on,
        payment_terms_days=profile.payment_terms_days,
        eur_conversion=conversion,
        buyer_reference=invoice.buyer_reference,
    )
    # validate before taking a number (a refused invoice would roll the number back anyway,
    # but it need not wait for the counter lock)
    validate_invoice(snapshot)
    series, pattern = _series(profile, credit_note=False)
    number = next_number(
        session,
        invoice.tenant_id,
        livemode=invoice.livemode,
        series=series,
        pattern=parse_pattern(pattern),
        issued_on=issued_on,
        actor=actor,
        now=now,
    )
    snapshot = dataclasses.replace(snapshot, number=number, payment_reference=number)
    if snapshot.totals.due_minor == 0:
        snapshot = dataclasses.replace(snapshot, due_date=None)
    # the lines first, while the invoice is still a draft in the database (the guards refuse
    # line changes of a finalized invoice), then the invoice itself
    for line, decision in zip(invoice.lines, decisions, strict=True):
        line.tax_treatment = decision.treatment.value
        line.tax_category = decision.category.value
        line.tax_rate_bp = _rate_bp(decision.rate)
        line.taxing_country = decision.taxing_country
    _flush(session)
    _freeze(
        invoice,
        snapshot,
        series=series,
        oss=any(d.oss_reportable for d in decisions),
        at=at,
    )
    invoice.status = OPEN
    if snapshot.totals.gross_minor == 0:
        invoice.status = PAID  # nothing to pay
        invoice.paid_at = at
    invoice.updated_at = now
    _flush(session)
    record_invoice(session, invoice, decisions, eur_rate=rate, now=now)
    _emit(session, "invoice.finalized", invoice, now)
    if invoice.status == PAID:
        _emit(session, "invoice.paid", invoice, now)
    request_documents(session, invoice)
    return invoice


# --- status -------------------------------------------------------------------------------


def mark_paid(session: Session, invoice_id: str, data: dict[str, Any], *, now: datetime) -> Invoice:
    """Record a payment made outside abowerk (bank transfer, cash)."""
    invoice = _lock(session, invoice_id)
    if invoice.status not in _PAYABLE:
        raise InvalidInvoiceTransitionError(
            f"a {invoice.status} invoice cannot be marked paid (only open or uncollectible)"
        )
    invoice.status = PAID
    invoice.paid_at = data.get("paid_at") or now
    invoice.payment_note = data.get("note")
    invoice.updated_at = now
    _flush(session)
    _emit(session, "invoice.paid", invoice, now)
    return invoice


def annotate_payment(session: Session, invoice_id: str, note: str, *, now: datetime) -> Invoice:
    """The tenant's own words on how a paid invoice was paid ("Überweisung vom 20.11.")."""
    invoice = _lock(session, invoice_id)
    invoice.payment_note = note
    invoice.updated_at = now
    _flush(session)
    return invoice


def mark_uncollectible(session: Session, invoice_id: str, *, now: datetime) -> Invoice:
    """Write the invoice off as uncollectible (it can still be paid or voided later)."""
    invoice = _lock(session, invoice_id)
    if invoice.status != OPEN:
        raise InvalidInvoiceTransitionError(
            f"a {invoice.status} invoice cannot be marked uncollectible (only open)"
        )
    invoice.status = UNCOLLECTIBLE
    invoice.uncollectible_at = now
    invoice.updated_at = now
    _flush(session)
    _emit(session, "invoice.marked_uncollectible", invoice, now)
    return invoice


def void_invoice(
    session: Session, invoice_id: str, data: dict[str, Any], *, actor: str, now: datetime
) -> Invoice:
    """Cancel an open (or uncollectible) invoice: a credit note for everything not yet
    credited (Stornorechnung), then status ``void``."""
    invoice = _lock(session, invoice_id)
    if invoice.status == DRAFT:
        raise InvoiceNotFinalizedError(
            "a draft has no number and needs no cancellation: just leave it unfinalized"
        )
    if invoice.status not in _PAYABLE:
        raise InvalidInvoiceTransitionError(
            f"a {invoice.status} invoice cannot be voided (only open or uncollectible; "
            "correct a paid invoice with a credit note)"
        )
    if invoice.credited_net_minor < (invoice.net_minor or 0):
        _issue_credit_note(session, invoice, None, reason=data.get("reason"), actor=actor, now=now)
    invoice.status = VOID
    invoice.voided_at = now
    invoice.updated_at = now
    _flush(session)
    _emit(session, "invoice.voided", invoice, now)
    return invoice


# --- credit notes -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Credit:
    original: InvoiceLine
    index: int  # position of the original line in the original snapshot
    quantity: Decimal
    unit_amount: int

    @property
    def net_minor(self) -> int:
        return line_net_minor(self.quantity, self.unit_amount)


def _credited_so_far(session: Session, original: Invoice) -> dict[str, int]:
    rows = session.execute(
        sa.select(InvoiceLine.corrects_line_id, sa.func.sum(InvoiceLine.net_minor))
        .join(
            Invoice,
            sa.and_(
                Invoice.tenant_id == InvoiceLine.tenant_id, Invoice.id == InvoiceLine.invoice_id
            ),
        )
        .where(Invoice.corrects_invoice_id == original.id)
        .group_by(InvoiceLine.corrects_line_id)
    ).all()
    return {str(line_id): int(total) for line_id, total in rows}


def _remaining_credit(line: InvoiceLine, index: int, credited: int) -> _Credit | None:
    remaining = line.net_minor - credited
    if remaining <= 0:
        return None
    if credited == 0:  # the whole line: mirror it exactly
        return _Credit(line, index, line.quantity, line.unit_amount)
    return _Credit(line, index, Decimal(1), remaining)


def _requested_credits(
    original: Invoice, requested: list[dict[str, Any]] | None, credited: dict[str, int]
) -> list[_Credit]:
    lines = {line.id: (index, line) for index, line in enumerate(original.lines)}
    if requested is None:  # cancellation: everything that is left
        credits = [
            _remaining_credit(line, index, credited.get(line.id, 0))
            for index, line in enumerate(original.lines)
        ]
        found = [credit for credit in credits if credit is not None]
        if not found:
            raise CreditNoteExceedsInvoiceError(
                f"invoice {original.number} is fully credited already",
                errors={"lines": ["nothing is left to correct"]},
            )
        return found
    out: list[_Credit] = []
    taken = dict(credited)
    errors: dict[str, list[str]] = {}
    for i, item in enumerate(requested):
        entry = lines.get(item["line_id"])
        if entry is None:
            raise ValidationFailedError(
                f"invoice {original.number} has no line {item['line_id']}",
                code="invoice_line_not_found",
                errors={f"lines[{i}].line_id": ["not a line of this invoice"]},
            )
        index, line = entry
        already = taken.get(line.id, 0)
        if item.get("amount") is not None:
            credit: _Credit | None = _Credit(line, index, Decimal(1), item["amount"])
        elif item.get("quantity") is not None:
            credit = _Credit(line, index, item["quantity"], line.unit_amount)
        else:
            credit = _remaining_credit(line, index, already)
        left = line.net_minor - already
        if credit is None or credit.net_minor > left:
            errors[f"lines[{i}]"] = [
                f"at most {max(left, 0)} (minor units) of this line are left to correct"
            ]
            continue
        taken[line.id] = already + credit.net_minor
        out.append(credit)
    if errors:
        raise CreditNoteExceedsInvoiceError(
            f"the credit note is larger than what is left of invoice {original.number}",
            errors=errors,
        )
    return out


def _issue_credit_note(
    session: Session,
    original: Invoice,
    requested: list[dict[str, Any]] | None,
    *,
    reason: str | None,
    actor: str,
    now: datetime,
) -> Invoice:
    from billing.invoices.rendering import stored_snapshot

    credited = _credited_so_far(session, original)
    credits = _requested_credits(original, requested, credited)
    source = stored_snapshot(original)
    profile = require_seller_profile(session, livemode=original.livemode)
    customer = get_customer(session, original.customer_id)
    at = clock_now(session, customer.test_clock_id, now)
    issued_on = _local_today(session, at)
    snapshot_lines = [
        SnapshotLine(
            description=source.lines[c.index].description,
            quantity=c.quantity,
            unit_price_minor=c.unit_amount,
            currency=source.currency,
            tax=source.lines[c.index].tax,  # the same treatment as the corrected line
            period=source.lines[c.index].period,
            unit_code=source.lines[c.index].unit_code,
        )
        for c in credits
    ]
    snapshot = build_credit_note_snapshot(
        source, number=_PLACEHOLDER_NUMBER, issued_on=issued_on, lines=snapshot_lines
    )
    validate_invoice(snapshot)
    series, pattern = _series(profile, credit_note=True)
    number = next_number(
        session,
        original.tenant_id,
        livemode=original.livemode,
        series=series,
        pattern=parse_pattern(pattern),
        issued_on=issued_on,
        actor=actor,
        now=now,
    )
    snapshot = dataclasses.replace(snapshot, number=number)
    left = sum(line.net_minor - credited.get(line.id, 0) for line in original.lines) - sum(
        c.net_minor for c in credits
    )
    note = Invoice(
        id=new_id("cn"),
        livemode=original.livemode,
        kind=CREDIT_NOTE,
        status=ISSUED,
        customer_id=original.customer_id,
        currency=original.currency,
        language=original.language,
        buyer_reference=original.buyer_reference,
        metadata_={},
        corrects_invoice_id=original.id,
        credit_note_type=CANCELLATION if left <= 0 else CORRECTION,
        credit_note_reason=reason,
        credited_net_minor=0,
        credited_gross_minor=0,
        created_at=now,
        updated_at=now,
    )
    # lines before the document is flushed: the guard refuses new lines of a finalized one
    note.lines = [
        InvoiceLine(
            id=new_id("il"),
            livemode=original.livemode,
            invoice_id=note.id,
            position=position,
            description=line.description,
            quantity=line.quantity,
            unit_amount=line.unit_price_minor,
            unit_code=line.unit_code,
            net_minor=line.net_minor,
            period_start_on=line.period.start if line.period else None,
            period_end_on=line.period.end if line.period else None,
            corrects_line_id=credit.original.id,
            tax_treatment=line.tax.treatment.value,
            tax_category=line.tax.category.value,
            tax_rate_bp=_rate_bp(line.tax.rate),
            taxing_country=line.tax.taxing_country,
            created_at=now,
        )
        for position, (line, credit) in enumerate(zip(snapshot.lines, credits, strict=True), 1)
    ]
    _freeze(note, snapshot, series=series, oss=bool(original.oss_reportable), at=at)
    session.add(note)
    original.credited_net_minor += snapshot.totals.net_minor
    original.credited_gross_minor += snapshot.totals.gross_minor
    original.updated_at = now
    _flush(session)
    record_credit_note(session, note, original, now=now)
    _emit(session, "credit_note.created", note, now)
    request_documents(session, note)
    return note


def create_credit_note(
    session: Session, data: dict[str, Any], *, actor: str, now: datetime
) -> Invoice:
    """A credit note for a finalized invoice: ``lines`` omitted cancels everything left
    (Stornorechnung); otherwise each item corrects part of one line, by ``quantity``,
    ``amount`` (net, minor units) or, with neither, what is left of the line."""
    original = _lock(session, data["invoice_id"])
    if original.status == DRAFT:
        raise InvoiceNotFinalizedError(
            "a draft has nothing to correct: change it directly",
            errors={"invoice_id": ["still a draft"]},
        )
    return _issue_credit_note(
        session, original, data.get("lines"), reason=data.get("reason"), actor=actor, now=now
    )
