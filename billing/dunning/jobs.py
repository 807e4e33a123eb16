"""The dunning work of one tenant as the worker runs it: each due retry in a transaction of
its own, so that one retry's failure (or a lost race) never undoes another's."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from billing.dunning.services import Collector, due_attempt_ids, run_attempt
from saas.kernel.errors import ConflictError
from saas.kernel.tasks import tenant_session

log = logging.getLogger("abowerk.dunning")


def run_due_retries(
    engine: sa.Engine,
    tenant_id: str,
    *,
    now: datetime,
    collector: Collector,
    limit: int = 100,
) -> dict[str, int]:
    """Run the tenant's due retries (real time by `now`, test clocks by their time).
    Returns how many ended in each status."""
    with tenant_session(engine, tenant_id) as session:
        ids = due_attempt_ids(session, now=now, limit=limit)
    outcomes: dict[str, int] = {}
    for attempt_id in ids:
        with tenant_session(engine, tenant_id) as session:
            try:
                status = run_attempt(session, attempt_id, now=now, collector=collector)
                session.commit()
            except (StaleDataError, ConflictError, sa.exc.OperationalError):
                # a request changed the invoice or subscription meanwhile, or (SQLite) another
                # worker wrote first: the retry is rolled back to `scheduled` unless that other
                # worker ran it, and the next tick looks again
                session.rollback()
                log.info("dunning retry postponed", extra={"attempt_id": attempt_id})
                continue
        if status is not None:
            outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes
