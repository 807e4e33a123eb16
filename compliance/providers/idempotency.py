"""Idempotency keys: stored responses (a created customer, say) for 24 hours.

Not exported (a technical cache of responses the tenant already received); on erasure every
stored response that names the customer or quotes one of the identifiers is deleted. A retry
with such a key after the erasure is treated as a new request.
"""

from __future__ import annotations

import sqlalchemy as sa

from compliance.registry import ErasureContext, ErasureReport, Provider, Registry, columns
from saas.http.models import IdempotencyKey

NAME = "idempotency_keys"


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    values = (ctx.subject.customer_id, *ctx.subject.identifiers)
    condition = sa.or_(*(IdempotencyKey.response_body.contains(v, autoescape=True) for v in values))
    result = ctx.session.execute(
        sa.delete(IdempotencyKey).where(condition).execution_options(synchronize_session=False)
    )
    report.count("idempotent_response_deleted", int(getattr(result, "rowcount", 0) or 0))
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns("idempotency_keys", ["response_body"]),
    purpose="answering a retried API request exactly once (technical, Art. 6(1)(f) GDPR)",
    retention="24 hours; deleted on erasure",
    erase=erase,
    order=45,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
