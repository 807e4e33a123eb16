"""Assigning invoice numbers: consecutive per tenant, mode, series and bucket, unique under
concurrency, never ``max() + 1``.

``next_number`` runs inside the finalizing transaction:

1. make sure the counter row of the bucket exists (``INSERT … ON CONFLICT DO NOTHING``, so
   two transactions creating the first number of a year do not collide);
2. lock it: ``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has a single writer, and the
   insert of step 1 already took the write lock, so the read that follows is current;
3. increment it and render the number. If a document already carries that number (the
   pattern was changed so that an old bucket's numbers come round again), the number is
   skipped, the skip is logged in ``invoice_number_skips`` with its reason, and the next one
   is taken.

The counter is incremented in the same transaction as the invoice, so a finalization that
rolls back gives its number back: no gap. The lock is held until commit, so finalizations
of one series are serialised; keep the transaction short after numbering.
``UNIQUE (tenant_id, number)`` on ``invoices`` is the last wall.

Test-mode numbers carry the prefix ``TEST-`` and count on their own, so that testing never
consumes or collides with live numbers.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billing.invoices.models import Invoice, InvoiceNumberCounter, InvoiceNumberSkip
from billing.numbering import RESERVED_PREFIX, NumberPattern
from saas.kernel.db import table_of
from saas.kernel.ids import new_id

TEST_PREFIX = RESERVED_PREFIX
SKIP_NUMBER_TAKEN = "number_taken"
_MAX_SKIPS = 1000

_TABLE = table_of(InvoiceNumberCounter)


def _ensure_counter(
    session: Session, tenant_id: str, *, livemode: bool, series: str, bucket: str, now: datetime
) -> None:
    values = {
        "tenant_id": tenant_id,
        "id": new_id("inc"),
        "livemode": livemode,
        "series": series,
        "bucket": bucket,
        "last_seq": 0,
        "created_at": now,
        "updated_at": now,
    }
    conflict = ["tenant_id", "livemode", "series", "bucket"]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: sa.Insert = (
            postgresql.insert(_TABLE)
            .values(**values)
            .on_conflict_do_nothing(index_elements=conflict)
        )
    else:
        stmt = (
            sqlite.insert(_TABLE).values(**values).on_conflict_do_nothing(index_elements=conflict)
        )
    session.execute(stmt)


def _lock_counter(
    session: Session, *, livemode: bool, series: str, bucket: str
) -> InvoiceNumberCounter:
    return session.scalars(
        sa.select(InvoiceNumberCounter)
        .where(
            InvoiceNumberCounter.livemode == livemode,
            InvoiceNumberCounter.series == series,
            InvoiceNumberCounter.bucket == bucket,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _taken(session: Session, number: str) -> bool:
    with session.no_autoflush:
        found = session.scalars(sa.select(Invoice.id).where(Invoice.number == number)).first()
    return found is not None


def next_number(
    session: Session,
    tenant_id: str,
    *,
    livemode: bool,
    series: str,
    pattern: NumberPattern,
    issued_on: date,
    actor: str,
    now: datetime,
) -> str:
    """The next free number of ``series`` for a document issued on ``issued_on``."""
    bucket = pattern.bucket(issued_on)
    if not livemode:
        bucket = TEST_PREFIX + bucket
    _ensure_counter(session, tenant_id, livemode=livemode, series=series, bucket=bucket, now=now)
    counter = _lock_counter(session, livemode=livemode, series=series, bucket=bucket)
    for _ in range(_MAX_SKIPS):
        counter.last_seq += 1
        number = pattern.render(issued_on, counter.last_seq)
        if not livemode:
            number = TEST_PREFIX + number
        if not _taken(session, number):
            counter.updated_at = now
            session.flush()
            return number
        session.add(
            InvoiceNumberSkip(
                id=new_id("ins"),
                livemode=livemode,
                series=series,
                bucket=bucket,
                seq=counter.last_seq,
                number=number,
                reason=SKIP_NUMBER_TAKEN,
                detail="another document already carries this number (the number pattern "
                "was changed so that an earlier bucket's numbers came round again)",
                actor=actor,
                created_at=now,
            )
        )
    raise RuntimeError(f"{_MAX_SKIPS} consecutive numbers of {bucket} are taken")
