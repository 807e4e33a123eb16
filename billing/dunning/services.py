"""Dunning use cases: what happens between a failed payment and the money (or the end).

The rules (docs/dunning.md):
- The first failed payment of an open invoice opens its dunning case (one per invoice) with
  the tenant's retry schedule, creates every retry row up front, moves the invoice's
  subscription to `past_due` (history row `payment_failed`, webhook `subscription.past_due`;
  it keeps renewing and counting for MRR) and queues the "payment failed" e-mail.
- A failed retry is recorded on its row; the customer gets a reminder with the next date.
  When the last retry fails the case is `exhausted` and the tenant's final action runs:
  `cancel` cancels the subscription now (the invoice stays open: the amount is still owed),
  `mark_uncollectible` writes the invoice off and leaves the subscription `past_due` until a
  later payment succeeds. The customer gets the final notice either way.
- A successful payment closes the case as `recovered` (remaining retries `canceled`) and
  brings the subscription back to `active` unless another invoice of it is still in dunning.
- Time: callers pass `at`/`now`; for a customer on a test clock the retry runner uses the
  clock's time, so advancing the clock makes retries fall due.

Everything runs in the caller's transaction and only flushes: the case, the subscription
transition, the e-mail rows and the webhook events commit together or not at all.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.dunning import mails
from billing.dunning.errors import InvalidRetryScheduleError
from billing.dunning.models import (
    AWAITING_OUTCOME,
    CANCELED,
    CLOSED,
    EXHAUSTED,
    FAILED,
    OPEN,
    PENDING,
    RECOVERED,
    RUNNING,
    SCHEDULED,
    SUCCEEDED,
    DunningAttempt,
    DunningCase,
    DunningSettings,
)
from billing.dunning.schedule import (
    CANCEL,
    DEFAULT_FINAL_ACTION,
    DEFAULT_RETRY_DAYS,
    retry_times,
    unavailable_backoff,
    validate_retry_days,
)
from billing.invoices import models as invoice_models
from billing.invoices.models import Invoice
from billing.invoices.services import get_invoice, mark_uncollectible
from saas.customers.services import get_customer
from saas.events.services import emit_event
from saas.kernel.errors import DomainError, ErrorKind
from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_tenant
from saas.mail.services import enqueue_mail
from saas.subscriptions.lifecycle import State
from saas.subscriptions.services import (
    SYSTEM_ACTOR,
    cancel_subscription,
    get_subscription,
    mark_past_due,
    mark_payment_recovered,
)
from saas.tenants.models import Tenant
from saas.testclocks.models import TestClock
from saas.testclocks.queries import clock_now


class Collector(Protocol):
    """Collects an open invoice now (a payment attempt with the customer's saved method).

    It reports the outcome through :mod:`billing.dunning.hooks` in the same session
    (`billing.payments.services.attempt_collection` does), raises an `unavailable`
    `DomainError` when the provider cannot be reached, or returns without an outcome when the
    payment completes later (a SEPA debit): the retry then waits as `pending`."""

    def __call__(self, session: Session, invoice_id: str, *, now: datetime) -> object: ...


# --- settings -----------------------------------------------------------------------------


def get_settings(session: Session) -> DunningSettings:
    """The tenant's settings; the defaults (not stored) when it never set any."""
    row = session.scalars(sa.select(DunningSettings)).first()
    if row is not None:
        return row
    return DunningSettings(
        id=None,
        retry_days=list(DEFAULT_RETRY_DAYS),
        final_action=DEFAULT_FINAL_ACTION,
        send_reminders=True,
        updated_at=None,
    )


def put_settings(session: Session, data: dict[str, Any], *, now: datetime) -> DunningSettings:
    """Replace the settings. Open cases keep the schedule they were opened with; the final
    action is read when a case runs out, so a change applies to open cases too."""
    days = list(data["retry_days"])
    problems = validate_retry_days(days)
    if problems:
        raise InvalidRetryScheduleError(
            f"retry_days {days}: {'; '.join(problems)}", errors={"retry_days": problems}
        )
    row = session.scalars(sa.select(DunningSettings)).first()
    if row is None:
        row = DunningSettings(id=new_id("dns"))
        session.add(row)
    row.retry_days = days
    row.final_action = data["final_action"]
    row.send_reminders = bool(data.get("send_reminders", True))
    row.updated_at = now
    session.flush()
    return row


# --- reads --------------------------------------------------------------------------------


def case_for_invoice(session: Session, invoice_id: str) -> DunningCase | None:
    return session.scalars(
        sa.select(DunningCase).where(DunningCase.invoice_id == invoice_id)
    ).first()


def attempts_of(session: Session, case_id: str) -> list[DunningAttempt]:
    return list(
        session.scalars(
            sa.select(DunningAttempt)
            .where(DunningAttempt.case_id == case_id)
            .order_by(DunningAttempt.seq)
        )
    )


def case_payload(session: Session, case: DunningCase) -> dict[str, Any]:
    attempts = attempts_of(session, case.id)
    upcoming = next((a for a in attempts if a.status == SCHEDULED), None)
    return {
        "id": case.id,
        "object": "dunning_case",
        "livemode": case.livemode,
        "invoice_id": case.invoice_id,
        "customer_id": case.customer_id,
        "subscription_id": case.subscription_id,
        "status": case.status,
        "failures": case.failures,
        "first_failed_at": _iso(case.first_failed_at),
        "last_failure_code": case.last_failure_code,
        "retry_days": list(case.retry_days),
        "next_attempt_at": _iso(upcoming.scheduled_at) if upcoming else None,
        "attempts": [
            {
                "seq": a.seq,
                "day": a.day,
                "scheduled_at": _iso(a.scheduled_at),
                "status": a.status,
                "attempted_at": _iso(a.attempted_at),
                "outcome_code": a.outcome_code,
            }
            for a in attempts
        ],
        "final_action": case.final_action,
        "closed_at": _iso(case.closed_at),
    }


# --- payment outcomes (called through billing.dunning.hooks) ------------------------------


def record_payment_failure(
    session: Session,
    invoice: Invoice,
    *,
    at: datetime,
    code: str | None,
    message: str | None,
) -> DunningCase | None:
    """A collection attempt on `invoice` failed at `at`. Returns its case (None when the
    invoice is not an open invoice, so there is nothing to dun)."""
    if invoice.kind not in invoice_models.INVOICE_KINDS or invoice.status != invoice_models.OPEN:
        return None
    case = case_for_invoice(session, invoice.id)
    if case is None:
        return _open_case(session, invoice, at=at, code=code, message=message)
    if case.status != OPEN:
        return case  # the case is over; a late report changes nothing
    case.failures += 1
    case.last_failure_code = code
    case.last_failure_message = _clip(message)
    case.updated_at = at
    attempts = attempts_of(session, case.id)
    awaiting = [a for a in attempts if a.status in AWAITING_OUTCOME]
    if not awaiting:
        # a failure outside the schedule (a payment the customer started, a late report):
        # recorded, and the schedule goes on
        session.flush()
        return case
    # normally one; a retry that found an earlier one still pending waited for the same
    # outcome, so the report settles both
    for waiting in awaiting:
        waiting.status = FAILED
        waiting.attempted_at = waiting.attempted_at or at
        waiting.outcome_code = code
        waiting.outcome_message = _clip(message)
        waiting.updated_at = at
    current = awaiting[-1]
    upcoming = next((a for a in attempts if a.status == SCHEDULED), None)
    if upcoming is None:
        session.flush()
        _exhaust(session, case, invoice, at=at)
        return case
    session.flush()
    _mail(
        session,
        case,
        invoice,
        mails.RETRY_FAILED,
        at=at,
        next_attempt_at=upcoming.scheduled_at,
        attempt=current.seq,
    )
    _emit(session, "dunning.retry_scheduled", case, at)
    return case


def record_payment_success(session: Session, invoice: Invoice, *, at: datetime) -> None:
    """`invoice` was paid at `at`: its case (if any) is `recovered` and the subscription is
    `active` again unless another of its invoices is still being dunned."""
    case = case_for_invoice(session, invoice.id)
    if case is not None and case.status in (OPEN, EXHAUSTED):
        for attempt in attempts_of(session, case.id):
            if attempt.status in AWAITING_OUTCOME:
                attempt.status = SUCCEEDED
                attempt.attempted_at = attempt.attempted_at or at
                attempt.updated_at = at
            elif attempt.status == SCHEDULED:
                attempt.status = CANCELED
                attempt.updated_at = at
        case.status = RECOVERED
        case.closed_at = at
        case.updated_at = at
        session.flush()
        _emit(session, "dunning.recovered", case, at)
    _reactivate(session, invoice, at=at, case=case)


def close_case(session: Session, case: DunningCase, *, at: datetime) -> None:
    """End a case without a payment outcome (the invoice was voided or written off by
    hand): its remaining retries are canceled. The subscription stays as it is."""
    for attempt in attempts_of(session, case.id):
        if attempt.status in (SCHEDULED, *AWAITING_OUTCOME):
            attempt.status = CANCELED
            attempt.updated_at = at
    case.status = CLOSED
    case.closed_at = at
    case.updated_at = at
    session.flush()


# --- retries ------------------------------------------------------------------------------


def due_attempt_ids(session: Session, *, now: datetime, limit: int = 100) -> list[str]:
    """Retries whose time has come: by `now` for real-time customers, by their clock's
    frozen time for customers on a test clock."""
    clock = sa.orm.aliased(TestClock)
    stmt = (
        sa.select(DunningAttempt.id)
        .outerjoin(
            clock,
            sa.and_(
                clock.tenant_id == DunningAttempt.tenant_id,
                clock.id == DunningAttempt.test_clock_id,
            ),
        )
        .where(
            DunningAttempt.status == SCHEDULED,
            sa.or_(
                sa.and_(DunningAttempt.test_clock_id.is_(None), DunningAttempt.scheduled_at <= now),
                sa.and_(
                    DunningAttempt.test_clock_id.is_not(None),
                    DunningAttempt.scheduled_at <= clock.frozen_time,
                ),
            ),
        )
        .order_by(DunningAttempt.scheduled_at, DunningAttempt.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def run_attempt(
    session: Session, attempt_id: str, *, now: datetime, collector: Collector
) -> str | None:
    """Claim one due retry and run it in the caller's transaction. Returns the retry's status
    afterwards, or None when it was not due or another worker had claimed it."""
    claimed = _claim_attempt(session, attempt_id, now=now)
    if claimed is None:
        return None
    attempt, at = claimed
    case = session.scalars(sa.select(DunningCase).where(DunningCase.id == attempt.case_id)).one()
    invoice = get_invoice(session, case.invoice_id)
    if case.status != OPEN or invoice.status != invoice_models.OPEN:
        _settle_without_collection(session, case, attempt, invoice, at=at)
    else:
        _collect(session, attempt, invoice, at=at, collector=collector)
    return attempt.status


def _claim_attempt(
    session: Session, attempt_id: str, *, now: datetime
) -> tuple[DunningAttempt, datetime] | None:
    """The conditional UPDATE `scheduled` → `running`: of two workers racing for the row
    exactly one matches it (PostgreSQL re-checks the condition after the other's commit;
    SQLite serialises writers), so a retry is collected once. Returns the retry and the
    customer's time (the test clock's, if any)."""
    attempt = session.scalars(
        sa.select(DunningAttempt)
        .where(DunningAttempt.id == attempt_id)
        .execution_options(populate_existing=True)
    ).first()
    if attempt is None or attempt.status != SCHEDULED:
        return None
    at = clock_now(session, attempt.test_clock_id, now)
    if attempt.scheduled_at > at:
        return None
    claimed = session.execute(
        sa.update(DunningAttempt)
        .where(
            DunningAttempt.id == attempt_id,
            DunningAttempt.status == SCHEDULED,
            DunningAttempt.scheduled_at == attempt.scheduled_at,
        )
        .values(status=RUNNING, claimed_at=at, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    session.refresh(attempt)
    return attempt, at


def _collect(
    session: Session,
    attempt: DunningAttempt,
    invoice: Invoice,
    *,
    at: datetime,
    collector: Collector,
) -> None:
    attempt.attempted_at = at
    session.flush()
    try:
        with session.begin_nested():
            collector(session, invoice.id, now=at)
    except DomainError as exc:
        session.refresh(attempt)
        session.refresh(invoice)
        if exc.kind == ErrorKind.UNAVAILABLE:
            _defer(session, attempt, at=at, error=exc.code)
        else:
            # collection is impossible as things stand (the provider refused the tenant's
            # key, say): a failed retry, so the schedule and the reminders go on
            record_payment_failure(session, invoice, at=at, code=exc.code[:64], message=None)
        return
    session.refresh(attempt)
    if attempt.status != RUNNING:
        return  # the collector reported the outcome through the hooks
    session.refresh(invoice)
    if invoice.status == invoice_models.PAID:
        record_payment_success(session, invoice, at=at)
    else:
        attempt.status = PENDING  # the outcome arrives later, through the hooks
        attempt.updated_at = at
        session.flush()


def _defer(session: Session, attempt: DunningAttempt, *, at: datetime, error: str) -> None:
    """The provider is away: the same retry runs again later; nothing was charged."""
    attempt.status = SCHEDULED
    attempt.attempted_at = None
    attempt.claimed_at = None
    attempt.scheduled_at = at + unavailable_backoff(attempt.deferrals)
    attempt.deferrals += 1
    attempt.last_error = error[:200]
    attempt.updated_at = at
    session.flush()


def default_collector() -> Collector | None:
    """The payments module's `attempt_collection` (in `billing.payments.collection`, or its
    `services`), or None while no payments module provides one."""
    for name in ("billing.payments.collection", "billing.payments.services"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        collector = getattr(module, "attempt_collection", None)
        if collector is not None:
            return cast("Collector", collector)
    return None


# --- building blocks ----------------------------------------------------------------------


def _open_case(
    session: Session, invoice: Invoice, *, at: datetime, code: str | None, message: str | None
) -> DunningCase:
    settings = get_settings(session)
    customer = get_customer(session, invoice.customer_id)
    days = list(settings.retry_days)
    case = DunningCase(
        id=new_id("dun"),
        livemode=invoice.livemode,
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        subscription_id=invoice.subscription_id,
        status=OPEN,
        retry_days=days,
        first_failed_at=at,
        failures=1,
        last_failure_code=code,
        last_failure_message=_clip(message),
        created_at=at,
        updated_at=at,
    )
    session.add(case)
    session.flush()  # the retries refer to it
    for seq, (day, scheduled_at) in enumerate(
        zip(days, retry_times(at, days, _zone(session)), strict=True), start=1
    ):
        session.add(
            DunningAttempt(
                id=new_id("dna"),
                livemode=invoice.livemode,
                case_id=case.id,
                invoice_id=invoice.id,
                test_clock_id=customer.test_clock_id,
                seq=seq,
                day=day,
                scheduled_at=scheduled_at,
                status=SCHEDULED,
                deferrals=0,
                created_at=at,
                updated_at=at,
            )
        )
    session.flush()
    if invoice.subscription_id is not None:
        mark_past_due(
            session,
            invoice.subscription_id,
            actor=SYSTEM_ACTOR,
            now=at,
            detail={"invoice_id": invoice.id, "dunning_case_id": case.id, "failure_code": code},
        )
    first = attempts_of(session, case.id)[0]
    _mail(session, case, invoice, mails.PAYMENT_FAILED, at=at, next_attempt_at=first.scheduled_at)
    _emit(session, "dunning.retry_scheduled", case, at)
    return case


def _exhaust(session: Session, case: DunningCase, invoice: Invoice, *, at: datetime) -> None:
    action = get_settings(session).final_action
    case.status = EXHAUSTED
    case.final_action = action
    case.closed_at = at
    case.updated_at = at
    session.flush()
    if action == CANCEL:
        if case.subscription_id is not None:
            sub = get_subscription(session, case.subscription_id)
            if sub.status != State.CANCELED:
                cancel_subscription(
                    session,
                    sub.id,
                    {"at_period_end": False, "prorate": False},
                    actor=SYSTEM_ACTOR,
                    now=at,
                )
    elif invoice.status == invoice_models.OPEN:
        mark_uncollectible(session, invoice.id, now=at)
    _mail(
        session,
        case,
        invoice,
        mails.FINAL_NOTICE,
        at=at,
        attempt=len(case.retry_days),
        final_action=action,
    )
    _emit(session, "dunning.exhausted", case, at)


def _settle_without_collection(
    session: Session,
    case: DunningCase,
    attempt: DunningAttempt,
    invoice: Invoice,
    *,
    at: datetime,
) -> None:
    """The invoice left `open` by another way before this retry ran."""
    attempt.status = CANCELED
    attempt.updated_at = at
    session.flush()
    if case.status != OPEN:
        return
    if invoice.status == invoice_models.PAID:
        record_payment_success(session, invoice, at=at)
    else:
        close_case(session, case, at=at)


def _reactivate(
    session: Session, invoice: Invoice, *, at: datetime, case: DunningCase | None
) -> None:
    if invoice.subscription_id is None:
        return
    sub = get_subscription(session, invoice.subscription_id)
    if sub.status != State.PAST_DUE:
        return
    others = session.scalar(
        sa.select(sa.func.count())
        .select_from(DunningCase)
        .where(
            DunningCase.subscription_id == sub.id,
            DunningCase.status == OPEN,
            DunningCase.id != (case.id if case is not None else ""),
        )
    )
    if others:
        return
    mark_payment_recovered(
        session,
        sub.id,
        actor=SYSTEM_ACTOR,
        now=at,
        detail={"invoice_id": invoice.id, "dunning_case_id": case.id if case else None},
    )


def _mail(
    session: Session,
    case: DunningCase,
    invoice: Invoice,
    kind: str,
    *,
    at: datetime,
    next_attempt_at: datetime | None = None,
    attempt: int = 0,
    final_action: str | None = None,
) -> None:
    if not get_settings(session).send_reminders:
        return
    customer = get_customer(session, case.customer_id)
    tenant = session.get(Tenant, current_tenant(session))
    zone = _zone(session)
    language = mails.language_of(customer.locale)
    mail = mails.render(
        kind,
        mails.MailFacts(
            language=language,
            customer_name=customer.name,
            seller_name=tenant.legal_name if tenant is not None else "",
            invoice_number=invoice.number or invoice.id,
            amount_minor=_amount_due(invoice),
            currency=invoice.currency,
            next_attempt_on=next_attempt_at.astimezone(zone).date() if next_attempt_at else None,
            attempt=attempt,
            attempts=len(case.retry_days),
            final_action=final_action,
        ),
    )
    enqueue_mail(
        session,
        to=customer.email,
        subject=mail.subject,
        text=mail.text,
        language=language,
        kind=kind,
        livemode=case.livemode,
        now=at,
        customer_id=customer.id,
        reference_id=case.id,
    )
    session.flush()


def _amount_due(invoice: Invoice) -> int:
    return max((invoice.gross_minor or 0) - (invoice.credited_gross_minor or 0), 0)


def _emit(session: Session, type_: str, case: DunningCase, at: datetime) -> None:
    emit_event(
        session, type_, {"object": case_payload(session, case)}, now=at, livemode=case.livemode
    )


def _zone(session: Session) -> ZoneInfo:
    tenant = session.get(Tenant, current_tenant(session))
    return ZoneInfo(tenant.timezone if tenant is not None else "Europe/Berlin")


def _clip(message: str | None) -> str | None:
    return message[:500] if message else message


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
