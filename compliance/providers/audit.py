"""The audit log's entries about a person: exported; redacted (never deleted) on erasure."""

from __future__ import annotations

from compliance import audit
from compliance.registry import (
    ErasureContext,
    ErasureReport,
    ExportContext,
    ExportPart,
    Provider,
    Registry,
    columns,
)

NAME = "audit_log"


def actor_kind(actor: str) -> str:
    """Who acted, masked: the tenant's staff and credentials are other people's data."""
    if actor in ("system", "operator"):
        return "system"
    if actor.startswith("portal:") or actor == "data_subject_link":
        return "data_subject"
    return "tenant"


def export(ctx: ExportContext) -> ExportPart:
    entries = audit.entries_about(
        ctx.session,
        subject_id=ctx.subject.customer_id,
        hmacs=audit.subject_hmacs(ctx.hmac_keys, ctx.subject.email),
    )
    return ExportPart(
        records={
            "audit_entries": [
                {
                    "at": e.at,
                    "action": e.action,
                    "actor": actor_kind(e.actor),
                    "subject_type": e.subject_type,
                    "subject_id": e.subject_id,
                    "details": e.details,
                    "redacted": e.redacted_at is not None,
                }
                for e in entries
            ]
        }
    )


def erase(ctx: ErasureContext) -> ErasureReport:
    report = ErasureReport()
    entries = audit.entries_about(
        ctx.session,
        subject_id=ctx.subject.customer_id,
        hmacs=audit.subject_hmacs(ctx.hmac_keys, ctx.subject.email),
    )
    for entry in entries:
        if audit.redact(entry, now=ctx.now):
            report.count("audit_entry_redacted")
    return report


PROVIDER = Provider(
    name=NAME,
    covers=columns("audit_entries", ["subject_hmac"]),
    purpose="demonstrating compliance (Art. 5(2), 24 GDPR)",
    retention="kept; redacted on erasure, identified by an HMAC of the e-mail address only",
    export=export,
    erase=erase,
    categories=("audit_entries",),
    order=85,
)


def register(target: Registry) -> None:
    target.register(PROVIDER)
