"""Billing run use cases: advance what is due, invoice what is pending, exactly once.

A run bills one tenant up to an instant ``at`` (a run over several tenants is a group of
runs, :mod:`billing.runs.models`). It works in batches of subscriptions taken in id order
(keyset pagination: memory does not grow with the number of subscriptions), and every batch
is ONE transaction that also updates the run's counters:

* **phase A, advance** (:func:`advance_batch`): subscriptions due up to ``at`` (renewals,
  trial ends, scheduled changes, period-end cancellations) move: plain renewals set-based
  (``saas.subscriptions.bulk_renewal``), the rest through the subscription service's own
  step (``advance_locked``); both write the same periods, charges, history and events;
* **phase B, invoice** (:func:`invoice_batch`): the pending charges of the batch's
  subscriptions become finalized invoices (:mod:`billing.runs.invoicing`), written with
  multi-row INSERTs, numbered from one block reserved per batch
  (:mod:`billing.runs.numbers`), the charges marked ``invoiced_at``/``invoice_id``, one
  ``invoice.finalized`` event per invoice in the outbox, and the documents requested for
  rendering after the commit (never rendered inside the batch).

Exactly once: the batch first takes the subscription rows with ``SELECT … FOR UPDATE SKIP
LOCKED`` (PostgreSQL; SQLite has one writer and the batch's first statement is a write, so
it holds the write lock before it reads), re-reads their pending charges under that lock,
and commits the invoices together with the charge updates. A concurrent run skips the
locked subscriptions; a run killed mid-batch loses that batch's transaction and a rerun
finds its charges still pending. The unique key ``(tenant_id, subscription_id,
period_start_on)`` on ``invoices`` is the last wall.

Tax counters: :func:`counters_for_batch` reads them once per batch and the batch advances
them in memory invoice by invoice in supply order (as finalization does line by line).
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from billing.documents.errors import InvoiceDocumentError
from billing.documents.model import EurConversion
from billing.invoices.errors import ExchangeRateUnavailableError
from billing.invoices.exchange import ecb_rate
from billing.invoices.models import Invoice, InvoiceLine, InvoiceTaxGroup
from billing.invoices.rendering import request_documents
from billing.invoices.snapshots import CustomerData
from billing.numbering import parse_pattern
from billing.runs import invoicing
from billing.runs.invoicing import Charge, Group, Terms
from billing.runs.models import FAILED, PENDING, RUNNING, SUCCEEDED, BillingRun
from billing.runs.numbers import reserve_numbers
from billing.runs.payloads import invoice_payloads
from billing.sellers.models import SellerProfile
from billing.sellers.services import (
    find_seller_profile,
    seller_party,
    tax_counters,
    tax_policy,
    tax_seller,
)
from billing.taxcounters.services import LEDGER_TABLE, ledger_row
from saas.customers.models import Customer
from saas.events.models import Event
from saas.events.services import request_dispatch
from saas.kernel.bulk import bulk_insert
from saas.kernel.db import table_of
from saas.kernel.ids import new_id
from saas.kernel.tasks import tenant_session
from saas.observability import count_invoices_issued
from saas.subscriptions.lifecycle import ADVANCES_WITH_TIME
from saas.subscriptions.models import Subscription, SubscriptionCharge
from saas.tenants.models import Tenant
from saas.testclocks.services import on_clock_advanced
from tax.errors import TaxError
from tax.model import Counters

log = logging.getLogger("abowerk.billing.runs")

DEFAULT_BATCH_SIZE = 500
SYSTEM_ACTOR = "system"
REAL_TIME = None  # clock filter: subscriptions on no test clock

_INVOICES = table_of(Invoice)
_LINES = table_of(InvoiceLine)
_GROUPS = table_of(InvoiceTaxGroup)
_CHARGES = table_of(SubscriptionCharge)
_EVENTS = table_of(Event)
_RUNS = table_of(BillingRun)

DocumentsHook = Callable[[str, list[str]], None]


@dataclass
class BatchResult:
    """What one batch did (also what it adds to the run's counters)."""

    advanced: int = 0
    finalized: int = 0
    skipped: int = 0
    failed: int = 0
    last_error: str | None = None
    invoice_ids: list[str] = field(default_factory=list)
    finalized_by_mode: dict[bool, int] = field(default_factory=dict)  # livemode → invoices
    last_id: str | None = None  # keyset position: the last subscription id looked at


# --- tax counters -------------------------------------------------------------------------


def counters_for_batch(
    session: Session, profile: SellerProfile, *, livemode: bool, on: date
) -> Counters:
    """The tax counters before the first supply of a batch on ``on``: from the ledger
    (:func:`billing.taxcounters.counters_for`) where that package is installed, else the
    figures entered on the seller profile."""
    try:
        from billing.taxcounters import counters_for
    except ImportError:  # pragma: no cover - the ledger package is part of the platform
        return tax_counters(profile)
    return counters_for(session, profile, livemode=livemode, on=on)


def _after_ledger_change(session: Session, touched: set[tuple[bool, int]], at: datetime) -> None:
    try:
        from billing.taxcounters import after_ledger_change
    except ImportError:  # pragma: no cover
        return
    for livemode, year in sorted(touched):
        after_ledger_change(session, livemode=livemode, year=year, at=at)


# --- runs ---------------------------------------------------------------------------------


def start_run(
    session: Session,
    tenant_id: str,
    *,
    at: datetime,
    trigger: str,
    now: datetime,
    group_id: str | None = None,
    test_clock_id: str | None = None,
) -> BillingRun:
    """Record a run of one tenant (``running``); the caller commits."""
    run = BillingRun(
        id=new_id("brun"),
        tenant_id=tenant_id,
        group_id=group_id or new_id("brg"),
        status=RUNNING,
        trigger=trigger,
        test_clock_id=test_clock_id,
        at=at,
        started_at=now,
        subscriptions_advanced=0,
        invoices_finalized=0,
        skipped=0,
        failed=0,
        batches_done=0,
        batches_total=0,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    return run


def active_tenant_ids(engine: sa.Engine) -> list[str]:
    """Tenants a run covers (``tenants`` is a global table: no tenant scoping applies)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.id)
            ).scalars()
        )


# A run whose row has not moved for this long has lost its process: every batch and every
# part writes ``updated_at``, which a live run does every few seconds.
STALE_AFTER = timedelta(hours=1)
ABANDONED = (
    "abandoned: no progress since {since} (the process running it stopped); "
    "a later run bills what it left"
)


def abandon_stale_runs(
    engine: sa.Engine,
    *,
    now: datetime,
    older_than: timedelta = STALE_AFTER,
    tenant_ids: Sequence[str] | None = None,
) -> int:
    """Mark runs that stopped moving as failed, saying why. A worker killed in the middle of a
    part takes that part's task with it (a queue hands a task out once); the invoices it
    committed stay, and what it left is still pending, so the next run bills it — but the
    run itself would say ``running`` for ever. Returns how many runs were marked (of
    ``tenant_ids``, by default every active tenant)."""
    marked = 0
    cutoff = now - older_than
    for tenant_id in active_tenant_ids(engine) if tenant_ids is None else tenant_ids:
        with tenant_session(engine, tenant_id) as session:
            stale = session.execute(
                sa.select(_RUNS.c.id, _RUNS.c.updated_at).where(
                    _RUNS.c.tenant_id == tenant_id,
                    _RUNS.c.status.in_((PENDING, RUNNING)),
                    _RUNS.c.updated_at < cutoff,
                )
            ).all()
            for run_id, since in stale:
                session.execute(
                    sa.update(_RUNS)
                    .where(
                        _RUNS.c.tenant_id == tenant_id,
                        _RUNS.c.id == run_id,
                        _RUNS.c.status.in_((PENDING, RUNNING)),
                    )
                    .values(
                        status=FAILED,
                        finished_at=now,
                        updated_at=now,
                        last_error=ABANDONED.format(since=since.isoformat()),
                    )
                )
                log.warning(
                    "billing run abandoned", extra={"tenant_id": tenant_id, "run_id": run_id}
                )
            session.commit()
            marked += len(stale)
    return marked


def _touch(session: Session, tenant_id: str, run_id: str, now: datetime) -> None:
    """On SQLite, the batch's first statement: a write, so that the single write lock is
    held before anything is read. PostgreSQL needs none (the row locks do that job), and
    parts of one run working in parallel must not queue up behind the run's row."""
    if session.get_bind().dialect.name != "sqlite":
        return
    session.execute(
        sa.update(_RUNS)
        .where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.id == run_id)
        .values(updated_at=now)
    )


def _record_batch(
    session: Session,
    tenant_id: str,
    run_id: str,
    result: BatchResult,
    now: datetime,
    *,
    count: bool = True,
) -> None:
    """Add a batch's counts to the run (``count``: and the batch itself; a run fanned out
    into parts counts parts instead, :func:`finish_part`)."""
    values: dict[str, Any] = {
        "subscriptions_advanced": _RUNS.c.subscriptions_advanced + result.advanced,
        "invoices_finalized": _RUNS.c.invoices_finalized + result.finalized,
        "skipped": _RUNS.c.skipped + result.skipped,
        "failed": _RUNS.c.failed + result.failed,
        "batches_done": _RUNS.c.batches_done + (1 if count else 0),
        "updated_at": now,
    }
    if result.last_error:
        values["last_error"] = result.last_error[:2000]
    session.execute(
        sa.update(_RUNS).where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.id == run_id).values(values)
    )


def _clock_filter(stmt: Any, clock_id: str | None) -> Any:
    if clock_id is None:
        return stmt.where(Subscription.test_clock_id.is_(None))
    return stmt.where(Subscription.test_clock_id == clock_id)


def due_subscription_ids(
    session: Session,
    *,
    at: datetime,
    clock_id: str | None,
    after: str | None,
    limit: int,
    upto: str | None = None,
) -> list[str]:
    stmt = sa.select(Subscription.id).where(
        Subscription.status.in_([s.value for s in ADVANCES_WITH_TIME]),
        Subscription.next_action_at <= at,
    )
    if after is not None:
        stmt = stmt.where(Subscription.id > after)
    if upto is not None:
        stmt = stmt.where(Subscription.id <= upto)
    stmt = _clock_filter(stmt, clock_id).order_by(Subscription.id).limit(limit)
    return list(session.scalars(stmt))


def pending_subscription_ids(
    session: Session,
    *,
    until: date,
    clock_id: str | None,
    after: str | None,
    limit: int,
    upto: str | None = None,
) -> list[str]:
    stmt = (
        sa.select(SubscriptionCharge.subscription_id)
        .join(
            Subscription,
            (Subscription.tenant_id == SubscriptionCharge.tenant_id)
            & (Subscription.id == SubscriptionCharge.subscription_id),
        )
        .where(SubscriptionCharge.invoiced_at.is_(None), SubscriptionCharge.starts_on <= until)
    )
    if after is not None:
        stmt = stmt.where(SubscriptionCharge.subscription_id > after)
    if upto is not None:
        stmt = stmt.where(SubscriptionCharge.subscription_id <= upto)
    stmt = (
        _clock_filter(stmt, clock_id)
        .group_by(SubscriptionCharge.subscription_id)
        .order_by(SubscriptionCharge.subscription_id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def _lock_subscriptions(session: Session, ids: Sequence[str]) -> list[str]:
    """Take the rows (PostgreSQL); rows another run holds are skipped, it bills them."""
    stmt = (
        sa.select(Subscription.id)
        .where(Subscription.id.in_(ids))
        .order_by(Subscription.id)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(stmt))


def _zone(session: Session, tenant_id: str) -> ZoneInfo:
    tenant = session.get(Tenant, tenant_id)
    return ZoneInfo(tenant.timezone if tenant is not None else "Europe/Berlin")


# --- phase A ------------------------------------------------------------------------------


def advance_batch(
    session: Session,
    subscription_ids: Sequence[str],
    *,
    at: datetime,
    actor: str = SYSTEM_ACTOR,
    set_based: bool = True,
) -> BatchResult:
    """Advance ``subscription_ids`` (those this transaction can lock) up to ``at``: plain
    renewals set-based (``saas.subscriptions.bulk_renewal``, the same rows the ORM path
    writes), the rest through the subscription service's own time step (the ORM path: trial
    ends, scheduled changes, cancellations, each at its own instant). ``set_based=False``
    sends every subscription through the ORM path. No savepoints: a subscription that
    fails fails the batch, which the caller then retries one subscription at a time."""
    from saas.subscriptions import bulk_renewal
    from saas.subscriptions import services as subscriptions

    result = BatchResult()
    locked = _lock_subscriptions(session, subscription_ids)
    result.skipped += len(subscription_ids) - len(locked)
    rest = locked
    if set_based:
        renewal = bulk_renewal.renew_plain(session, locked, at)
        result.advanced += len(renewal.renewed)
        rest = renewal.rest
    subs = session.scalars(
        sa.select(Subscription)
        .where(Subscription.id.in_(rest))
        .order_by(Subscription.id)
        .execution_options(populate_existing=True)
    )
    result.advanced += subscriptions.advance_locked(session, subs, at, actor=actor)
    session.flush()
    return result


def _advance_phase(
    engine: sa.Engine,
    tenant_id: str,
    run_id: str,
    *,
    at: datetime,
    clock_id: str | None,
    batch_size: int,
    clock_now: Callable[[], datetime],
    progress: ProgressHook | None,
    after: str | None = None,
    upto: str | None = None,
    count_batches: bool = True,
) -> None:
    while True:
        with tenant_session(engine, tenant_id) as session:
            ids = due_subscription_ids(
                session, at=at, clock_id=clock_id, after=after, limit=batch_size, upto=upto
            )
            session.rollback()
        if not ids:
            return
        try:
            result = _advance_in_one(
                engine, tenant_id, run_id, ids, at=at, now=clock_now(), count=count_batches
            )
        except Exception as exc:
            # one subscription spoilt the batch: redo it one by one, and record the culprit
            log.warning("advance batch failed, retrying one by one", exc_info=True)
            result = BatchResult(last_error=f"{type(exc).__name__}: {exc}")
            for sub_id in ids:
                try:
                    one = _advance_in_one(
                        engine, tenant_id, run_id, [sub_id], at=at, now=clock_now(), record=False
                    )
                    result.advanced += one.advanced
                    result.skipped += one.skipped
                except Exception as failed:
                    log.exception("could not advance", extra={"subscription_id": sub_id})
                    result.failed += 1
                    result.last_error = f"{sub_id}: {type(failed).__name__}: {failed}"
            with tenant_session(engine, tenant_id) as session:
                _record_batch(session, tenant_id, run_id, result, clock_now(), count=count_batches)
                session.commit()
        after = ids[-1]
        if progress:
            progress("advance", result)


def _advance_in_one(
    engine: sa.Engine,
    tenant_id: str,
    run_id: str,
    ids: Sequence[str],
    *,
    at: datetime,
    now: datetime,
    record: bool = True,
    count: bool = True,
) -> BatchResult:
    with tenant_session(engine, tenant_id) as session:
        _touch(session, tenant_id, run_id, now)
        result = advance_batch(session, ids, at=at)
        if record:
            _record_batch(session, tenant_id, run_id, result, now, count=count)
        session.commit()
    return result


# --- phase B ------------------------------------------------------------------------------


@dataclass
class _Tenant:
    """Per-run caches: seller profile per mode, ECB rates, the zone."""

    zone: ZoneInfo
    profiles: dict[bool, SellerProfile | None] = field(default_factory=dict)
    rates: dict[tuple[str, date], tuple[Decimal | None, date | None, str | None]] = field(
        default_factory=dict
    )
    sellers: dict[bool, tuple[Any, Any, Terms]] = field(default_factory=dict)

    def profile(self, session: Session, livemode: bool) -> SellerProfile | None:
        if livemode not in self.profiles:
            self.profiles[livemode] = find_seller_profile(session, livemode=livemode)
        return self.profiles[livemode]

    def seller(self, profile: SellerProfile) -> tuple[Any, Any, Terms]:
        """The tax engine's seller and policy and the snapshot terms of a profile, built
        once per run (the profile is read once per run too)."""
        key = profile.livemode
        if key not in self.sellers:
            self.sellers[key] = (
                tax_seller(profile),
                tax_policy(profile),
                Terms(seller_party(profile), profile.invoice_language, profile.payment_terms_days),
            )
        return self.sellers[key]

    def rate(self, currency: str, on: date) -> tuple[Decimal | None, date | None, str | None]:
        key = (currency, on)
        if key not in self.rates:
            try:
                rate, published = ecb_rate(currency, on)
                self.rates[key] = (rate, published, None)
            except ExchangeRateUnavailableError as exc:
                self.rates[key] = (None, None, exc.detail)
        return self.rates[key]


def _pending_charges(session: Session, ids: Sequence[str], until: date) -> list[Charge]:
    c = _CHARGES.c
    rows = session.execute(
        sa.select(
            c.id,
            c.subscription_id,
            c.customer_id,
            c.period_id,
            c.price_id,
            c.livemode,
            c.kind,
            c.description,
            c.quantity,
            c.unit_amount,
            c.amount,
            c.currency,
            c.starts_on,
            c.ends_on,
        ).where(
            c.tenant_id == _tenant_of(session),
            c.subscription_id.in_(ids),
            c.invoiced_at.is_(None),
            c.starts_on <= until,
        )
    )
    return [Charge(**row._mapping) for row in rows]


def _tenant_of(session: Session) -> str:
    from saas.kernel.tenancy import current_tenant

    tenant_id = current_tenant(session)
    if not tenant_id:
        raise RuntimeError("a billing batch needs a tenant-bound session")
    return tenant_id


def _customers(session: Session, ids: Iterable[str]) -> dict[str, CustomerData]:
    """What finalization reads of each customer (as ``services._customer_data``), as plain
    columns: no ORM objects for thousands of customers per batch."""
    found = session.execute(
        sa.select(
            Customer.id,
            Customer.name,
            Customer.country,
            Customer.address_line1,
            Customer.address_line2,
            Customer.postal_code,
            Customer.city,
            Customer.is_business,
            Customer.vat_id,
            Customer.vat_id_status,
        ).where(Customer.id.in_(set(ids)))
    )
    return {
        row.id: CustomerData(
            name=row.name,
            country=row.country,
            line1=row.address_line1,
            line2=row.address_line2,
            postal_code=row.postal_code,
            city=row.city,
            is_business=row.is_business,
            vat_id=row.vat_id,
            vat_id_status=row.vat_id_status,
        )
        for row in found
    }


def _taken_keys(session: Session, groups: Sequence[Group]) -> set[tuple[str, date]]:
    keyed = [g for g in groups if g.period_start_on is not None]
    if not keyed:
        return set()
    i = _INVOICES.c
    rows = session.execute(
        sa.select(i.subscription_id, i.period_start_on).where(
            i.tenant_id == _tenant_of(session),
            i.subscription_id.in_({g.subscription_id for g in keyed}),
            i.period_start_on.is_not(None),
        )
    )
    return {(sub, start) for sub, start in rows}


@dataclass
class _Built:
    invoice_id: str
    group: Group
    snapshot: Any
    decisions: list[Any]
    lines: list[Any]
    ledger: dict[str, Any]


def invoice_batch(
    session: Session,
    tenant_id: str,
    *,
    run_id: str | None,
    at: datetime,
    subscription_ids: Sequence[str],
    now: datetime,
    cache: _Tenant | None = None,
    actor: str = SYSTEM_ACTOR,
) -> BatchResult:
    """Invoice the pending charges of ``subscription_ids`` (those this transaction can lock)
    as finalized invoices issued at ``at``. The caller owns (and commits) the transaction."""
    result = BatchResult()
    if not subscription_ids:
        return result
    cache = cache or _Tenant(_zone(session, tenant_id))
    issued_on = at.astimezone(cache.zone).date()
    locked = _lock_subscriptions(session, subscription_ids)
    result.skipped += len(subscription_ids) - len(locked)
    charges = _pending_charges(session, locked, issued_on)
    by_sub: dict[str, list[Charge]] = defaultdict(list)
    for charge in charges:
        by_sub[charge.subscription_id].append(charge)
    groups: list[Group] = []
    credits: list[Charge] = []
    for sub_id in sorted(by_sub):
        ready, gives_back = invoicing.group_charges(by_sub[sub_id])
        groups.extend(ready)
        credits.extend(gives_back)
    _invoice_groups(
        session,
        tenant_id,
        groups,
        result,
        run_id=run_id,
        at=at,
        now=now,
        cache=cache,
        issued_on=issued_on,
        actor=actor,
    )
    # after the invoices: a credit may give back time billed by an invoice of this batch
    credit_charges(session, tenant_id, credits, result, at=at, now=now, actor=actor)
    return result


def _invoice_groups(
    session: Session,
    tenant_id: str,
    groups: list[Group],
    result: BatchResult,
    *,
    run_id: str | None,
    at: datetime,
    now: datetime,
    cache: _Tenant,
    issued_on: date,
    actor: str,
) -> None:
    if not groups:
        return
    taken = _taken_keys(session, groups)
    keyed: list[Group] = []
    for group in groups:
        start = group.period_start_on
        if start is not None and (group.subscription_id, start) in taken:
            # the period key is used (a new period opened the same day, e.g. an interval
            # change on the day of the start), by an earlier invoice or by a group of this
            # very batch: the charges, locked and pending, are still owed
            keyed.append(dataclasses.replace(group, period_start_on=None))
            continue
        if start is not None:
            taken.add((group.subscription_id, start))
        keyed.append(group)
    groups = keyed
    # supply order within the batch, so the counters advance as the supplies happened
    groups.sort(
        key=lambda g: (g.livemode, g.supplied_on, g.subscription_id, str(g.period_start_on))
    )
    customers = _customers(session, (g.customer_id for g in groups))

    built: dict[bool, list[_Built]] = defaultdict(list)
    counters: dict[tuple[bool, int], Counters] = {}
    for group in groups:
        try:
            item = _build(
                session, tenant_id, group, customers[group.customer_id], counters,
                cache=cache, issued_on=issued_on, now=now,
            )  # fmt: skip
        except (_Refused, TaxError, InvoiceDocumentError) as exc:
            result.failed += 1
            result.last_error = f"{group.subscription_id}: {exc}"
            continue
        built[group.livemode].append(item)
    _write(session, tenant_id, built, result, run_id=run_id, at=at, now=now, cache=cache,
           issued_on=issued_on, actor=actor)  # fmt: skip


def _build(
    session: Session,
    tenant_id: str,
    group: Group,
    customer: CustomerData,
    counters: dict[tuple[bool, int], Counters],
    *,
    cache: _Tenant,
    issued_on: date,
    now: datetime,
) -> _Built:
    """Decide, snapshot and validate one invoice as finalization does; advances
    ``counters`` past it. Raises what makes the invoice impossible now."""
    profile = cache.profile(session, group.livemode)
    if profile is None:
        raise _Refused("the tenant has no seller profile for this mode")
    accepted = profile.accepted_currencies or ["EUR"]
    if group.currency not in accepted:
        raise _Refused(f"the seller does not invoice in {group.currency}")
    lines = [invoicing.charge_line(c) for c in group.charges]
    rate, rate_on, rate_error = (
        (None, None, None)
        if group.currency == "EUR"
        else cache.rate(group.currency, group.supplied_on)
    )
    key = (group.livemode, group.supplied_on.year)
    if key not in counters:
        counters[key] = counters_for_batch(
            session, profile, livemode=group.livemode, on=group.supplied_on
        )
    tax_seller_, policy, terms = cache.seller(profile)
    # the counters advance within the invoice only, as finalization advances them
    decisions, _ = invoicing.decide_and_advance(
        tax_seller_,
        counters[key],
        customer,
        lines,
        supplied_on=group.supplied_on,
        currency=group.currency,
        eur_rate=rate,
        policy=policy,
    )
    conversion = None
    if group.currency != "EUR" and any(d.vat != 0 for d in decisions):
        if rate is None or rate_on is None:
            raise _Refused(rate_error or "no ECB rate")
        conversion = EurConversion(rate, rate_on)
    snapshot = invoicing.build_snapshot(
        terms,
        customer,
        lines,
        decisions,
        issued_on=issued_on,
        supplied_on=group.supplied_on,
        currency=group.currency,
        conversion=conversion,
    )
    invoice_id = new_id("in")
    entry = ledger_row(
        tenant_id,
        invoice_id=invoice_id,
        livemode=group.livemode,
        supplied_on=group.supplied_on,
        currency=group.currency,
        gross_minor=snapshot.totals.gross_minor,
        net_minors=[line.net_minor for line in lines],
        decisions=decisions,
        eur_rate=rate,
        now=now,
    )
    counters[key] = _booked(counters[key], entry)
    return _Built(invoice_id, group, snapshot, decisions, lines, entry)


def _write(
    session: Session,
    tenant_id: str,
    built: dict[bool, list[_Built]],
    result: BatchResult,
    *,
    run_id: str | None,
    at: datetime,
    now: datetime,
    cache: _Tenant,
    issued_on: date,
    actor: str,
) -> None:
    """Number the built invoices from one reserved block per mode and write everything
    of the batch set-based."""
    invoice_rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    group_rows: list[dict[str, Any]] = []
    charge_updates: list[tuple[str, str]] = []
    ledger_rows: list[dict[str, Any]] = []
    for livemode, items in built.items():
        profile = cache.profile(session, livemode)
        assert profile is not None  # built only with a profile
        numbers = reserve_numbers(
            session,
            tenant_id,
            livemode=livemode,
            series="invoice",
            pattern=parse_pattern(profile.invoice_number_pattern),
            issued_on=issued_on,
            count=len(items),
            actor=actor,
            now=now,
        )
        for item, number in zip(items, numbers, strict=True):
            snapshot = invoicing.numbered(item.snapshot, number)
            invoice_id = item.invoice_id
            row, lines_, groups_ = invoicing.invoice_rows(
                snapshot,
                item.decisions,
                item.lines,
                ids=(
                    invoice_id,
                    [new_id("il") for _ in item.lines],
                    [new_id("itg") for _ in snapshot.totals.groups],
                ),
                tenant_id=tenant_id,
                group=item.group,
                run_id=run_id,
                series="invoice",
                at=at,
                now=now,
            )
            invoice_rows.append(row)
            ledger_rows.append(item.ledger)
            line_rows.extend(lines_)
            group_rows.extend(groups_)
            charge_updates.extend((c.id, invoice_id) for c in item.group.charges)
    if not invoice_rows:
        return
    bulk_insert(session.connection(), _INVOICES, invoice_rows)
    bulk_insert(session.connection(), _LINES, line_rows)
    bulk_insert(session.connection(), _GROUPS, group_rows)
    bulk_insert(session.connection(), LEDGER_TABLE, ledger_rows)
    _mark_charges(session, tenant_id, charge_updates, at)
    bulk_insert(
        session.connection(), _EVENTS, _events(tenant_id, invoice_rows, line_rows, group_rows, now)
    )
    request_dispatch(session, tenant_id)
    _after_ledger_change(
        session, {(r["livemode"], r["supplied_on"].year) for r in invoice_rows}, at
    )
    result.finalized += len(invoice_rows)
    result.invoice_ids.extend(r["id"] for r in invoice_rows)
    for row in invoice_rows:
        mode = bool(row["livemode"])
        result.finalized_by_mode[mode] = result.finalized_by_mode.get(mode, 0) + 1


def credit_charges(
    session: Session,
    tenant_id: str,
    credits: Sequence[Charge],
    result: BatchResult,
    *,
    at: datetime,
    now: datetime,
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Each credit (unused time given back by an immediate change) becomes a credit note
    correcting the invoice lines that billed that time: the charges of the same period,
    newest first, each up to what is left of its line. Rare (downgrades), so this takes the
    invoice service's own path. A credit whose time is not invoiced yet waits; one whose
    time credit notes gave back whole already is settled without a note."""
    from billing.invoices.services import create_credit_note

    c = _CHARGES.c
    for credit in sorted(credits, key=lambda x: (x.subscription_id, x.starts_on, x.id)):
        if credit.period_id is None:
            result.skipped += 1
            continue
        targets = session.execute(
            sa.select(c.invoice_id, c.starts_on, c.amount)
            .where(
                c.tenant_id == tenant_id,
                c.subscription_id == credit.subscription_id,
                c.period_id == credit.period_id,
                c.price_id == credit.price_id,  # the time of the price it gives back
                c.amount > 0,
                c.invoice_id.is_not(None),
            )
            .order_by(c.created_at.desc(), c.id.desc())
        ).all()
        remaining = -credit.amount
        note_id: str | None = None
        for invoice_id, starts_on, amount in targets:
            line = _line_left(session, tenant_id, invoice_id, starts_on, amount)
            if line is None:
                continue
            line_id, left = line
            take = min(remaining, left)
            if take <= 0:
                continue
            note = create_credit_note(
                session,
                {
                    "invoice_id": invoice_id,
                    "lines": [{"line_id": line_id, "amount": take}],
                    "reason": credit.description[:500],
                },
                actor=actor,
                now=now,
            )
            note_id = note.id
            remaining -= take
            if remaining == 0:
                break
        if note_id is None and not targets:
            result.skipped += 1  # nothing of that period is invoiced yet: wait for it
            continue
        # with targets but no note, credit notes gave all of that time back already (a
        # correction before the change): the credit is settled without a note of its own,
        # else it would stay pending and be retried by every run
        if remaining:
            result.last_error = (
                f"{credit.id}: {remaining} (minor units) of the credit exceed what is left "
                "of the invoices of its period"
            )
        session.execute(
            sa.update(_CHARGES)
            .where(c.tenant_id == tenant_id, c.id == credit.id, c.invoiced_at.is_(None))
            .values(invoiced_at=at, invoice_id=note_id)
        )


def _line_left(
    session: Session, tenant_id: str, invoice_id: str, starts_on: date, amount: int
) -> tuple[str, int] | None:
    """The line of ``invoice_id`` that billed a charge, and what credit notes left of it."""
    lines = _LINES.c
    found = session.execute(
        sa.select(lines.id, lines.net_minor)
        .where(
            lines.tenant_id == tenant_id,
            lines.invoice_id == invoice_id,
            lines.period_start_on == starts_on,
            lines.net_minor == amount,
        )
        .order_by(lines.position)
    ).first()
    if found is None:
        return None
    line_id, net = found
    credited = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(lines.net_minor), 0)).where(
            lines.tenant_id == tenant_id, lines.corrects_line_id == line_id
        )
    ).scalar_one()
    return line_id, int(net) - int(credited)


def _booked(counters: Counters, entry: dict[str, Any]) -> Counters:
    """The counters the next invoice of the batch sees: what :func:`counters_for` returns
    once this invoice's ledger ``entry`` is booked (its cross-border B2C and Union turnover;
    the § 19 turnover counts money received, and a run receives none). So a batch decides
    exactly as finalizing its invoices one by one would, whatever the batch size."""
    return dataclasses.replace(
        counters,
        eu_b2c_current_year=counters.eu_b2c_current_year
        + Decimal(entry["eu_b2c_eur_minor"]).scaleb(-2),
        union_turnover_current_year=counters.union_turnover_current_year
        + Decimal(entry["union_eur_minor"]).scaleb(-2),
    )


class _Refused(Exception):  # noqa: N818  (internal: a group that cannot be invoiced now)
    pass


def _events(
    tenant_id: str,
    invoice_rows: list[dict[str, Any]],
    line_rows: list[dict[str, Any]],
    group_rows: list[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """``invoice.finalized`` (and ``invoice.paid`` for a zero invoice) per invoice, with the
    payload the invoice API returns (:mod:`billing.runs.payloads`)."""
    lines_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in line_rows:
        lines_of[row["invoice_id"]].append(row)
    groups_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in group_rows:
        groups_of[row["invoice_id"]].append(row)
    payloads = invoice_payloads(invoice_rows, lines_of, groups_of)
    events: list[dict[str, Any]] = []
    for row, payload in zip(invoice_rows, payloads, strict=True):
        types = ["invoice.finalized"] + (["invoice.paid"] if row["status"] == "paid" else [])
        events.extend(
            {
                "tenant_id": tenant_id,
                "id": new_id("evt"),
                "livemode": row["livemode"],
                "type": type_,
                "data": {"object": payload},
                "created_at": now,
                "dispatched_at": None,
            }
            for type_ in types
        )
    return events


def _mark_charges(
    session: Session, tenant_id: str, updates: list[tuple[str, str]], at: datetime
) -> None:
    """Charges → their invoice, in one statement on PostgreSQL. Every charge was pending
    under this batch's lock; a count that differs means someone else billed one, and the
    batch must not commit."""
    if not updates:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        done = conn.execute(
            sa.text(
                "UPDATE subscription_charges AS c SET invoiced_at = :at, invoice_id = v.invoice_id "
                "FROM unnest(CAST(:ids AS text[]), CAST(:invoices AS text[])) AS v(id, invoice_id) "
                "WHERE c.tenant_id = :tenant AND c.id = v.id AND c.invoiced_at IS NULL"
            ),
            {
                "at": at,
                "ids": [charge for charge, _ in updates],
                "invoices": [invoice for _, invoice in updates],
                "tenant": tenant_id,
            },
        ).rowcount
    else:
        c = _CHARGES.c
        done = conn.execute(
            sa.update(_CHARGES)
            .where(c.tenant_id == tenant_id, c.id == sa.bindparam("b_id"), c.invoiced_at.is_(None))
            .values(invoiced_at=at, invoice_id=sa.bindparam("b_invoice_id")),
            [{"b_id": charge, "b_invoice_id": invoice} for charge, invoice in updates],
        ).rowcount
    if done != len(updates):
        raise RuntimeError(f"{len(updates) - done} charge(s) of the batch were billed meanwhile")


# --- driving a run ------------------------------------------------------------------------


ProgressHook = Callable[[str, BatchResult], None]


def execute_run(
    engine: sa.Engine,
    tenant_id: str,
    run_id: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    clock_now: Callable[[], datetime],
    progress: ProgressHook | None = None,
    documents: DocumentsHook | None = None,
) -> BillingRun:
    """Run (or resume) ``run_id``: phase A then phase B, one transaction per batch."""
    with tenant_session(engine, tenant_id) as session:
        run = session.get(BillingRun, (tenant_id, run_id))
        if run is None:
            raise LookupError(f"no billing run {run_id}")
        at, clock_id = run.at, run.test_clock_id
        session.commit()
    try:
        _advance_phase(
            engine,
            tenant_id,
            run_id,
            at=at,
            clock_id=clock_id,
            batch_size=batch_size,
            clock_now=clock_now,
            progress=progress,
        )
        _invoice_phase(
            engine,
            tenant_id,
            run_id,
            at=at,
            clock_id=clock_id,
            batch_size=batch_size,
            clock_now=clock_now,
            progress=progress,
            documents=documents,
        )
        status, error = SUCCEEDED, None
    except Exception as exc:
        log.exception("billing run failed", extra={"run_id": run_id, "tenant_id": tenant_id})
        status, error = FAILED, f"{type(exc).__name__}: {exc}"
    with tenant_session(engine, tenant_id) as session:
        values: dict[str, Any] = {"status": status, "finished_at": clock_now()}
        if error:
            values["last_error"] = error[:2000]
        session.execute(
            sa.update(_RUNS)
            .where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.id == run_id)
            .values(values)
        )
        session.commit()
        run = session.get(BillingRun, (tenant_id, run_id), populate_existing=True)
        assert run is not None
        return run


def _invoice_phase(
    engine: sa.Engine,
    tenant_id: str,
    run_id: str,
    *,
    at: datetime,
    clock_id: str | None,
    batch_size: int,
    clock_now: Callable[[], datetime],
    progress: ProgressHook | None,
    documents: DocumentsHook | None,
    after: str | None = None,
    upto: str | None = None,
    count_batches: bool = True,
) -> None:
    cache: _Tenant | None = None
    while True:
        with tenant_session(engine, tenant_id) as session:
            now = clock_now()
            _touch(session, tenant_id, run_id, now)
            cache = cache or _Tenant(_zone(session, tenant_id))
            until = at.astimezone(cache.zone).date()
            ids = pending_subscription_ids(
                session, until=until, clock_id=clock_id, after=after, limit=batch_size, upto=upto
            )
            if not ids:
                session.rollback()
                return
            # a batch makes many short-lived objects and no cycles worth chasing: the cyclic
            # collector's full passes over the app's objects cost more than the batch itself
            # (it runs once after the batch instead)
            gc.disable()
            try:
                result = invoice_batch(
                    session,
                    tenant_id,
                    run_id=run_id,
                    at=at,
                    subscription_ids=ids,
                    now=now,
                    cache=cache,
                )
            finally:
                gc.enable()
            result.last_id = ids[-1]
            _record_batch(session, tenant_id, run_id, result, now, count=count_batches)
            session.commit()
        after = ids[-1]
        for livemode, count in result.finalized_by_mode.items():
            count_invoices_issued(count, livemode=livemode)  # billing-run throughput metric
        if documents and result.invoice_ids:
            documents(tenant_id, result.invoice_ids)
        if progress:
            progress("invoice", result)


# --- fanned out: parts of a run as independent tasks -------------------------------------


def plan_parts(
    engine: sa.Engine, tenant_id: str, run_id: str, *, part_size: int
) -> list[tuple[str | None, str | None]]:
    """Cut a run into parts by subscription id, ``(after, upto]`` with about ``part_size``
    subscriptions each, and record their number as the run's ``batches_total``. The parts
    are independent (a part advances and invoices its own subscriptions), so any number of
    workers can take them in any order; exactly-once still rests on the locks and the key."""
    with tenant_session(engine, tenant_id) as session:
        run = session.get(BillingRun, (tenant_id, run_id))
        if run is None:
            raise LookupError(f"no billing run {run_id}")
        position = sa.func.row_number().over(order_by=Subscription.id).label("position")
        numbered = _clock_filter(sa.select(Subscription.id, position), run.test_clock_id).subquery()
        bounds = list(
            session.scalars(
                sa.select(numbered.c.id)
                .where(numbered.c.position % part_size == 0)
                .order_by(numbered.c.id)
            )
        )
        edges: list[str | None] = [None, *bounds, None]
        parts = list(itertools.pairwise(edges))
        run.batches_total = len(parts)
        run.batches_done = 0
        session.commit()
    return parts


def execute_part(
    engine: sa.Engine,
    tenant_id: str,
    run_id: str,
    *,
    after: str | None,
    upto: str | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    clock_now: Callable[[], datetime],
    documents: DocumentsHook | None = None,
) -> str:
    """One part of a fanned-out run: advance, then invoice, the subscriptions in
    ``(after, upto]``; the part that completes the run marks it succeeded. Returns the
    run's status. A part that raises leaves its error on the run and is retried by the
    queue; what it committed stays, and the retry does only the rest."""
    with tenant_session(engine, tenant_id) as session:
        run = session.get(BillingRun, (tenant_id, run_id))
        if run is None:
            raise LookupError(f"no billing run {run_id}")
        at, clock_id = run.at, run.test_clock_id
        session.commit()
    common: dict[str, Any] = {
        "at": at,
        "clock_id": clock_id,
        "batch_size": batch_size,
        "clock_now": clock_now,
        "progress": None,
        "after": after,
        "upto": upto,
        "count_batches": False,
    }
    try:
        _advance_phase(engine, tenant_id, run_id, **common)
        _invoice_phase(engine, tenant_id, run_id, documents=documents, **common)
    except Exception as exc:
        with tenant_session(engine, tenant_id) as session:
            session.execute(
                sa.update(_RUNS)
                .where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.id == run_id)
                .values(last_error=f"part ({after}, {upto}]: {type(exc).__name__}: {exc}"[:2000])
            )
            session.commit()
        raise
    return finish_part(engine, tenant_id, run_id, now=clock_now())


def finish_part(engine: sa.Engine, tenant_id: str, run_id: str, *, now: datetime) -> str:
    """Count a finished part; the last one finishes the run (one UPDATE, so two parts
    finishing at once cannot both be the last)."""
    with tenant_session(engine, tenant_id) as session:
        done, total = session.execute(
            sa.update(_RUNS)
            .where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.id == run_id)
            .values(batches_done=_RUNS.c.batches_done + 1, updated_at=now)
            .returning(_RUNS.c.batches_done, _RUNS.c.batches_total)
        ).one()
        status = RUNNING
        if done >= total:
            status = SUCCEEDED
            session.execute(
                sa.update(_RUNS)
                .where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.id == run_id)
                .values(status=SUCCEEDED, finished_at=now)
            )
        session.commit()
    return status


def estimate_batches(
    session: Session, *, at: datetime, clock_id: str | None, batch_size: int, zone: ZoneInfo
) -> int:
    """Batches a run will take: due subscriptions plus subscriptions with pending charges
    (an upper bound: a due subscription usually has pending charges right after)."""
    due = session.scalar(
        _clock_filter(
            sa.select(sa.func.count())
            .select_from(Subscription)
            .where(
                Subscription.status.in_([s.value for s in ADVANCES_WITH_TIME]),
                Subscription.next_action_at <= at,
            ),
            clock_id,
        )
    )
    pending = session.scalar(
        _clock_filter(
            sa.select(sa.func.count(sa.distinct(SubscriptionCharge.subscription_id)))
            .select_from(SubscriptionCharge)
            .join(
                Subscription,
                (Subscription.tenant_id == SubscriptionCharge.tenant_id)
                & (Subscription.id == SubscriptionCharge.subscription_id),
            )
            .where(
                SubscriptionCharge.invoiced_at.is_(None),
                SubscriptionCharge.starts_on <= at.astimezone(zone).date(),
            ),
            clock_id,
        )
    )
    due_batches = -(-int(due or 0) // batch_size)
    invoice_batches = -(-max(int(due or 0), int(pending or 0)) // batch_size)
    return due_batches + invoice_batches


def create_runs(
    engine: sa.Engine,
    tenant_ids: Sequence[str],
    *,
    at: datetime,
    trigger: str,
    now: datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
    test_clock_id: str | None = None,
) -> tuple[str, list[tuple[str, str]]]:
    """One ``running`` run row per tenant, sharing a group id; returns (group id, [(tenant
    id, run id)])."""
    group_id = new_id("brg")
    created = []
    for tenant_id in tenant_ids:
        with tenant_session(engine, tenant_id) as session:
            run = start_run(
                session,
                tenant_id,
                at=at,
                trigger=trigger,
                now=now,
                group_id=group_id,
                test_clock_id=test_clock_id,
            )
            run.batches_total = estimate_batches(
                session,
                at=at,
                clock_id=test_clock_id,
                batch_size=batch_size,
                zone=_zone(session, tenant_id),
            )
            session.commit()
            created.append((tenant_id, run.id))
    return group_id, created


def bill_test_clock(
    session: Session, tenant_id: str, clock_id: str, *, at: datetime, now: datetime
) -> BillingRun:
    """Invoice what a test clock's advance made due, inside the advance's own transaction
    (a clock's subscriptions are few; the batches still bound the memory)."""
    run = start_run(
        session, tenant_id, at=at, trigger="test_clock", now=now, test_clock_id=clock_id
    )
    cache = _Tenant(_zone(session, tenant_id))
    until = at.astimezone(cache.zone).date()
    after: str | None = None
    while True:
        ids = pending_subscription_ids(
            session, until=until, clock_id=clock_id, after=after, limit=DEFAULT_BATCH_SIZE
        )
        if not ids:
            break
        result = invoice_batch(
            session, tenant_id, run_id=run.id, at=at, subscription_ids=ids, now=now, cache=cache
        )
        run.invoices_finalized += result.finalized
        run.skipped += result.skipped
        run.failed += result.failed
        run.batches_done += 1
        run.last_error = result.last_error or run.last_error
        for invoice_id in result.invoice_ids:
            # rendered by the worker after the advance commits, as for any finalization
            request_documents(session, Invoice(tenant_id=tenant_id, id=invoice_id))
        after = ids[-1]
    run.batches_total = run.batches_done
    run.status = SUCCEEDED
    run.finished_at = now
    run.updated_at = now
    session.flush()
    return run


def _bill_advanced_clock(
    session: Session, tenant_id: str, clock_id: str, frozen_time: datetime, now: datetime
) -> None:
    bill_test_clock(session, tenant_id, clock_id, at=frozen_time, now=now)


on_clock_advanced(_bill_advanced_clock)
