"""The delivery loop for one tenant, in short transactions of its own (see services.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from saas import observability
from saas.kernel.secretbox import SecretBox
from saas.kernel.tasks import tenant_session
from saas.webhooks import services


def deliver_for_tenant(
    engine: sa.Engine,
    box: SecretBox,
    tenant_id: str,
    *,
    clock: Callable[[], datetime],
    send: services.Sender = services.http_send,
) -> int:
    """Dispatch new events and send every due delivery once; returns the attempts made."""
    attempts = 0
    while True:
        with tenant_session(engine, tenant_id) as session:
            services.dispatch_events(session, now=clock())
            batch = services.claim_due(session, box, now=clock())
            session.commit()
        if not batch:
            return attempts
        for out in batch:
            result = send(out)
            with tenant_session(engine, tenant_id) as session:
                status = services.record_result(session, out.delivery_id, result, now=clock())
                session.commit()
            observability.count_webhook_attempt(status)  # counted once committed
            attempts += 1
