"""Numbers for a whole batch in one counter update.

A batch reserves ``n`` consecutive numbers of a bucket with one statement that locks and
increments the counter row (``UPDATE … SET last_seq = last_seq + n … RETURNING``; the row
lock is held until the batch commits, as :func:`billing.invoices.counters.next_number`
holds it for one invoice). The batch is one transaction, so a batch that rolls back (or a
process killed before its commit) gives the whole block back: no gap.

If a number of the block is already carried by a document (the pattern was changed so that
an earlier bucket comes round again), the block is given back and the numbers are taken one
by one through :func:`~billing.invoices.counters.next_number`, which logs the skips.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from billing.invoices.counters import TEST_PREFIX, next_number
from billing.invoices.models import Invoice, InvoiceNumberCounter
from billing.numbering import NumberPattern
from saas.kernel.db import table_of
from saas.kernel.ids import new_id

_COUNTERS = table_of(InvoiceNumberCounter)
_INVOICES = table_of(Invoice)


def reserve_numbers(
    session: Session,
    tenant_id: str,
    *,
    livemode: bool,
    series: str,
    pattern: NumberPattern,
    issued_on: date,
    count: int,
    actor: str,
    now: datetime,
) -> list[str]:
    """``count`` consecutive free numbers of ``series`` for documents issued on ``issued_on``."""
    if count <= 0:
        return []
    bucket = pattern.bucket(issued_on)
    if not livemode:
        bucket = TEST_PREFIX + bucket
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
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(_COUNTERS).values(**values).on_conflict_do_nothing(index_elements=conflict)
    )
    where = (
        (_COUNTERS.c.tenant_id == tenant_id)
        & (_COUNTERS.c.livemode == livemode)
        & (_COUNTERS.c.series == series)
        & (_COUNTERS.c.bucket == bucket)
    )
    last = session.execute(
        sa.update(_COUNTERS)
        .where(where)
        .values(last_seq=_COUNTERS.c.last_seq + count, updated_at=now)
        .returning(_COUNTERS.c.last_seq)
    ).scalar_one()
    numbers = [pattern.render(issued_on, seq) for seq in range(last - count + 1, last + 1)]
    if not livemode:
        numbers = [TEST_PREFIX + n for n in numbers]
    taken = session.execute(
        sa.select(_INVOICES.c.number).where(
            _INVOICES.c.tenant_id == tenant_id, _INVOICES.c.number.in_(numbers)
        )
    ).first()
    if taken is None:
        return numbers
    # rare: give the block back and let the one-by-one path skip (and log) the taken numbers
    # (next_number re-reads the counter row with populate_existing: nothing stale)
    session.execute(sa.update(_COUNTERS).where(where).values(last_seq=_COUNTERS.c.last_seq - count))
    return [
        next_number(
            session,
            tenant_id,
            livemode=livemode,
            series=series,
            pattern=pattern,
            issued_on=issued_on,
            actor=actor,
            now=now,
        )
        for _ in range(count)
    ]
