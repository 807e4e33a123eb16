"""Consents (`saas.consents`): the proof of what the person agreed to and when.

Exported in full under the `consents` category. Erased by deletion: consent is a legal basis
for processing that stops with the erasure, and no retention duty covers the proof once
nothing is processed on its basis any more (the rows hold the person's IP address).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportPart,
    Provider,
    Registry,
    columns,
)
from saas.consents.models import Consent

NAME = "consents"


def export(ctx: ExportContext) -> ExportPart:
    rows = ctx.session.scalars(
        sa.select(Consent)
        .where(Consent.customer_id == ctx.subject.customer_id)
        .order_by(Consent.given_at, Consent.id)
    ).all()
    records: list[dict[str, Any]] = [
        {
            "purpose": row.purpose,
            "text_version": row.text_version,
            "given_at": row.given_at,
            "withdrawn_at": row.withdrawn_at,
            "source": row.source,
        }
        for row in rows
    ]
    return ExportPart(records={"consents": records})


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    result = ctx.session.execute(
        sa.delete(Consent)
        .where(Consent.customer_id == ctx.subject.customer_id)
        .execution_options(synchronize_session=False)
    )
    report.count("consent_deleted", int(getattr(result, "rowcount", 0) or 0))
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns("consents", ["ip_address"]),
    purpose="proof of consent (Art. 7(1) GDPR)",
    retention="while the customer exists; deleted on erasure",
    export=export,
    erase=erase,
    categories=("consents",),
    order=50,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
