"""Background work for the metrics: keep each tenant's MRR movement ledger up to date.

The worker queues `sync_metrics(tenant_id)` after every commit that recorded events (every
subscription history row emits one) and every five minutes; `sync_tenant` is the job's body,
one transaction per tenant.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from billing.metrics.services import sync_ledger
from saas.kernel.tasks import tenant_session

log = logging.getLogger(__name__)


def sync_tenant(engine: sa.Engine, tenant_id: str, *, now: datetime) -> int:
    """Sync one tenant's ledger and commit; returns the rows written or deleted. A database
    error (a concurrent builder, a lost connection) rolls back: the next run catches up."""
    with tenant_session(engine, tenant_id) as session:
        try:
            result = sync_ledger(session, tenant_id, now=now)
            session.commit()
        except sa.exc.DBAPIError:
            session.rollback()
            log.warning("metrics ledger sync of %s failed; retried on the next run", tenant_id)
            return 0
    return result.inserted + result.deleted
