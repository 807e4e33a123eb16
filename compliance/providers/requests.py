"""The person's own data subject requests, restrictions and export files.

Requests stay (they show that and when the tenant answered, Art. 5(2)); free text the tenant
typed into them is scrubbed of the person's identifiers on erasure. (The person's export ZIPs
are deleted by `compliance.erasure` itself, which knows where they are stored.)
"""

from __future__ import annotations

import sqlalchemy as sa

from compliance.models import GdprRequest, Restriction
from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportPart,
    Provider,
    Registry,
    columns,
)
from compliance.tokens import scrub

NAME = "gdpr_requests"


def export(ctx: ExportContext) -> ExportPart:
    requests = ctx.session.scalars(
        sa.select(GdprRequest)
        .where(GdprRequest.customer_id == ctx.subject.customer_id)
        .order_by(GdprRequest.id)
    ).all()
    return ExportPart(
        records={
            "data_subject_requests": [
                {
                    "request_id": r.id,
                    "kind": r.kind,
                    "state": r.state,
                    "received_at": r.received_at,
                    "due_at": r.due_at,
                    "extension_months": r.extension_months,
                    "extension_reason": r.extension_reason,
                    "verification_method": r.verification_method,
                    "verified_at": r.verified_at,
                    "completed_at": r.completed_at,
                    "rejected_at": r.rejected_at,
                    "rejection_reason": r.rejection_reason,
                }
                for r in requests
            ]
        }
    )


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    session, identifiers = ctx.session, ctx.subject.identifiers
    for request in session.scalars(
        sa.select(GdprRequest).where(GdprRequest.customer_id == ctx.subject.customer_id)
    ):
        for field in ("extension_reason", "verification_note", "rejection_reason"):
            before = getattr(request, field)
            after = scrub(before, identifiers)
            if after != before:
                setattr(request, field, after)
                report.count("request_text_scrubbed")
    for restriction in session.scalars(
        sa.select(Restriction).where(Restriction.customer_id == ctx.subject.customer_id)
    ):
        after = scrub(restriction.legal_hold_reason, identifiers)
        if after != restriction.legal_hold_reason:
            restriction.legal_hold_reason = after
            report.count("restriction_text_scrubbed")
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns("gdpr_requests", ["extension_reason", "verification_note", "rejection_reason"])
    | columns("gdpr_restrictions", ["legal_hold_reason"]),
    purpose="answering data subject requests and proving it (Art. 12, 5(2) GDPR)",
    retention="kept; free text scrubbed of the person's identifiers on erasure",
    export=export,
    erase=erase,
    categories=("data_subject_requests",),
    order=80,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
