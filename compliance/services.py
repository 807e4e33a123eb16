"""Data subject request use cases: receive, verify identity, extend, reject, fulfil.

Callers pass the session (scoped to the tenant), the `ComplianceConfig`, the `actor` (a
credential id, `system`, `operator`, or `portal:<session>` later) and `now`; the services
flush, never commit. Every step writes an audit entry and a `gdpr.request.*` event (ids,
states and dates only: free text stays out of webhooks).

Fulfilling runs the request: access and portability build the export ZIP and return a
single-use download link; erasure runs `compliance.erasure`; restriction restricts every
datum of the customer (Art. 18) until the tenant lifts it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance import audit
from compliance.config import ComplianceConfig
from compliance.deadlines import (
    FIRST_PERIOD_MONTHS,
    OPEN_STATES,
    RequestAction,
    RequestKind,
    RequestState,
    VerificationMethod,
    due_at,
    extended_due_at,
    is_due_soon,
    is_overdue,
    next_state,
)
from compliance.erasure import erase_subject, is_erased, resolve_subject
from compliance.errors import (
    DownloadLinkExpiredError,
    DownloadLinkInvalidError,
    DownloadLinkUsedError,
    ExportNotAvailableError,
    GdprRequestNotFoundError,
    RestrictionNotFoundError,
    RestrictionNotLiftableError,
    RetentionPolicyError,
    SubjectAlreadyErasedError,
    VerificationMethodError,
)
from compliance.exports import build_export
from compliance.models import (
    GdprExport,
    GdprExportLink,
    GdprRequest,
    GdprSettings,
    Restriction,
)
from compliance.registry import ExportContext, ExportPart, Provider, Subject
from compliance.retention import STATUTORY_YEARS, DocumentClass, check_years, retention_ends_on
from saas.events.services import emit_event
from saas.kernel.errors import ValidationFailedError
from saas.kernel.ids import new_id
from saas.kernel.tenancy import current_tenant
from saas.tenants.models import Tenant, TenantNotification

EVENT_TYPES = (
    "gdpr.request.created",
    "gdpr.request.identity_pending",
    "gdpr.request.in_progress",
    "gdpr.request.extended",
    "gdpr.request.completed",
    "gdpr.request.rejected",
    "gdpr.request.due_soon",
    "gdpr.request.overdue",
)
DEFAULT_EXPORT_TTL_HOURS = 7 * 24
DEFAULT_DUE_SOON_DAYS = 7


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveSettings:
    retention_years: dict[DocumentClass, int]
    export_ttl_hours: int
    due_soon_days: int

    @property
    def export_ttl(self) -> timedelta:
        return timedelta(hours=self.export_ttl_hours)

    @property
    def due_soon(self) -> timedelta:
        return timedelta(days=self.due_soon_days)


def _settings_row(session: Session) -> GdprSettings | None:
    return session.scalars(sa.select(GdprSettings)).first()


def effective_settings(session: Session) -> EffectiveSettings:
    row = _settings_row(session)
    if row is None:
        return EffectiveSettings(
            dict(STATUTORY_YEARS), DEFAULT_EXPORT_TTL_HOURS, DEFAULT_DUE_SOON_DAYS
        )
    return EffectiveSettings(
        {
            DocumentClass.INVOICE: row.invoice_retention_years,
            DocumentClass.CREDIT_NOTE: row.credit_note_retention_years,
            DocumentClass.OSS_RECORD: row.oss_record_retention_years,
        },
        row.export_ttl_hours,
        row.due_soon_days,
    )


def update_settings(
    session: Session, data: dict[str, Any], *, actor: str, now: datetime
) -> EffectiveSettings:
    """Change retention periods (never below the statutory ones), export link lifetime and
    the due-soon warning. Open document restrictions get their retention end recomputed."""
    current = effective_settings(session)
    years = dict(current.retention_years)
    errors: dict[str, list[str]] = {}
    for key, value in (data.get("retention_years") or {}).items():
        document_class = DocumentClass(key)
        try:
            check_years(document_class, value)
        except ValueError as exc:
            errors[f"retention_years.{key}"] = [str(exc)]
        years[document_class] = value
    if errors:
        raise RetentionPolicyError("retention periods too short or too long", errors=errors)
    row = _settings_row(session)
    if row is None:
        row = GdprSettings(id=new_id("gdps"))
        session.add(row)
    row.invoice_retention_years = years[DocumentClass.INVOICE]
    row.credit_note_retention_years = years[DocumentClass.CREDIT_NOTE]
    row.oss_record_retention_years = years[DocumentClass.OSS_RECORD]
    row.export_ttl_hours = data.get("export_ttl_hours", current.export_ttl_hours)
    row.due_soon_days = data.get("due_soon_days", current.due_soon_days)
    row.updated_at = now
    open_restrictions = session.scalars(
        sa.select(Restriction).where(
            Restriction.scope == "document",
            Restriction.redacted_at.is_(None),
            Restriction.issued_on.is_not(None),
        )
    )
    for restriction in open_restrictions:
        assert restriction.issued_on is not None
        assert restriction.document_class is not None
        ends_on = retention_ends_on(
            restriction.issued_on, years[DocumentClass(restriction.document_class)]
        )
        if restriction.kept_until is not None:
            ends_on = max(ends_on, restriction.kept_until)
        restriction.retention_ends_on = ends_on
        restriction.updated_at = now
    audit.record(
        session,
        action="gdpr.settings.updated",
        actor=actor,
        subject_type="tenant",
        subject_id=current_tenant(session),
        livemode=False,
        now=now,
        details={f"{k.value}_years": v for k, v in years.items()},
    )
    session.flush()
    return effective_settings(session)


# --- requests -----------------------------------------------------------------------------


def _zone(session: Session) -> ZoneInfo:
    tenant = session.get(Tenant, current_tenant(session))
    if tenant is None:
        raise RuntimeError("the session's tenant does not exist")
    return ZoneInfo(tenant.timezone)


def get_request(session: Session, request_id: str) -> GdprRequest:
    request = session.scalars(sa.select(GdprRequest).where(GdprRequest.id == request_id)).first()
    if request is None:
        raise GdprRequestNotFoundError(f"no GDPR request {request_id}")
    return request


def _event(session: Session, type_: str, request: GdprRequest, now: datetime) -> None:
    from compliance.schemas import GdprRequestEventSchema

    emit_event(
        session,
        type_,
        {"object": GdprRequestEventSchema().dump(request)},
        now=now,
        livemode=request.livemode,
    )


def _audit(
    session: Session,
    cfg: ComplianceConfig,
    request: GdprRequest,
    action: str,
    *,
    actor: str,
    now: datetime,
    subject: Subject | None = None,
    **details: Any,
) -> None:
    audit.record(
        session,
        action=action,
        actor=actor,
        subject_type="customer",
        subject_id=request.customer_id,
        livemode=request.livemode,
        now=now,
        hmac_key=cfg.hmac_key,
        subject_email=subject.email if subject else None,
        details={"request_id": request.id, "kind": request.kind, **details},
    )


def create_request(
    session: Session,
    cfg: ComplianceConfig,
    *,
    customer_id: str,
    kind: str,
    actor: str,
    now: datetime,
    received_at: datetime | None = None,
) -> GdprRequest:
    """Record a request that reached the tenant; the deadline runs from `received_at`."""
    subject = resolve_subject(session, cfg, customer_id)  # 404 for another tenant's customer
    request_kind = RequestKind(kind)
    if request_kind in (RequestKind.ERASURE, RequestKind.RESTRICTION) and is_erased(
        session, customer_id
    ):
        raise SubjectAlreadyErasedError(f"customer {customer_id} has been erased already")
    received = received_at or now
    if received > now:
        raise ValidationFailedError(
            "received_at lies in the future", errors={"received_at": ["must not be in the future"]}
        )
    request = GdprRequest(
        id=new_id("dsr"),
        livemode=subject.livemode,
        customer_id=customer_id,
        kind=request_kind.value,
        state=RequestState.RECEIVED.value,
        received_at=received,
        due_at=due_at(received, _zone(session), FIRST_PERIOD_MONTHS),
        extension_months=0,
        outcome={},
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    session.flush()
    _audit(session, cfg, request, "gdpr.request.created", actor=actor, now=now, subject=subject)
    _event(session, "gdpr.request.created", request, now)
    return request


def _advance(request: GdprRequest, action: RequestAction, now: datetime) -> None:
    request.state = next_state(request.state, action).value
    request.updated_at = now


def request_identity(
    session: Session, cfg: ComplianceConfig, request_id: str, *, actor: str, now: datetime
) -> GdprRequest:
    """The tenant asked the person to prove who they are (e.g. to sign in to the portal)."""
    request = get_request(session, request_id)
    _advance(request, RequestAction.REQUEST_IDENTITY, now)
    request.identity_requested_at = now
    session.flush()
    _audit(session, cfg, request, "gdpr.request.identity_requested", actor=actor, now=now)
    _event(session, "gdpr.request.identity_pending", request, now)
    return request


def verify_identity(
    session: Session,
    cfg: ComplianceConfig,
    request_id: str,
    *,
    method: str,
    actor: str,
    now: datetime,
    note: str | None = None,
    reference: str | None = None,
) -> GdprRequest:
    """Record who verified the person's identity and how; the request is then in progress.

    `portal_session`: the customer portal saw the customer signed in (`reference` is the
    portal session's id). `tenant_attestation`: the tenant checked and attests it (`note`
    says how).
    """
    request = get_request(session, request_id)
    verification = VerificationMethod(method)
    if verification is VerificationMethod.PORTAL_SESSION and not reference:
        raise VerificationMethodError("a portal session verification names the session")
    if verification is VerificationMethod.TENANT_ATTESTATION and not note:
        raise VerificationMethodError(
            "an attestation says how the identity was checked", errors={"note": ["required"]}
        )
    _advance(request, RequestAction.VERIFY_IDENTITY, now)
    request.verified_at = now
    request.verified_by = actor
    request.verification_method = verification.value
    request.verification_reference = reference
    request.verification_note = note
    session.flush()
    _audit(
        session,
        cfg,
        request,
        "gdpr.identity.verified",
        actor=actor,
        now=now,
        method=verification.value,
    )
    _event(session, "gdpr.request.in_progress", request, now)
    return request


def extend_request(
    session: Session,
    cfg: ComplianceConfig,
    request_id: str,
    *,
    months: int,
    reason: str,
    actor: str,
    now: datetime,
) -> GdprRequest:
    """Extend the deadline (Art. 12(3)): by at most two further months in total, with a
    reason, and only within the first month."""
    request = get_request(session, request_id)
    next_state(request.state, RequestAction.EXTEND)
    request.due_at = extended_due_at(
        request.received_at,
        _zone(session),
        extended_so_far=request.extension_months,
        months=months,
        now=now,
    )
    request.extension_months += months
    request.extension_reason = (
        reason if not request.extension_reason else f"{request.extension_reason}\n{reason}"
    )[:1000]
    request.extended_at = now
    request.due_soon_notified_at = None
    request.updated_at = now
    session.flush()
    _audit(session, cfg, request, "gdpr.request.extended", actor=actor, now=now, months=months)
    _event(session, "gdpr.request.extended", request, now)
    return request


def reject_request(
    session: Session,
    cfg: ComplianceConfig,
    request_id: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> GdprRequest:
    """Refuse (Art. 12(5) manifestly unfounded or excessive; Art. 12(6) identity not
    verifiable). The person must be told why and of their right to complain (Art. 12(4))."""
    request = get_request(session, request_id)
    _advance(request, RequestAction.REJECT, now)
    request.rejected_at = now
    request.rejection_reason = reason
    session.flush()
    _audit(session, cfg, request, "gdpr.request.rejected", actor=actor, now=now)
    _event(session, "gdpr.request.rejected", request, now)
    return request


# --- fulfilling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadLink:
    export_id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class FulfilResult:
    request: GdprRequest
    download: DownloadLink | None = None


def fulfil_request(
    session: Session, cfg: ComplianceConfig, request_id: str, *, actor: str, now: datetime
) -> FulfilResult:
    request = get_request(session, request_id)
    next_state(request.state, RequestAction.FULFIL)  # refuse before doing anything
    settings = effective_settings(session)
    kind = RequestKind(request.kind)
    download: DownloadLink | None = None
    if kind in (RequestKind.ACCESS, RequestKind.PORTABILITY):
        subject = resolve_subject(session, cfg, request.customer_id)
        export = create_export(session, cfg, request, subject, settings=settings, now=now)
        download = _new_link(session, cfg, export, actor=actor, now=now)
        request.outcome = {"export_id": export.id, "expires_at": export.expires_at.isoformat()}
    elif kind is RequestKind.ERASURE:
        outcome = erase_subject(
            session,
            cfg,
            customer_id=request.customer_id,
            retention_years=settings.retention_years,
            actor=actor,
            now=now,
            request_id=request.id,
        )
        request.outcome = outcome.as_dict()
    else:
        subject = resolve_subject(session, cfg, request.customer_id)
        if is_erased(session, request.customer_id):
            raise SubjectAlreadyErasedError(f"customer {request.customer_id} has been erased")
        restriction = restrict_subject(session, cfg, subject, request_id=request.id, now=now)
        request.outcome = {"restriction_id": restriction.id}
    _advance(request, RequestAction.FULFIL, now)
    request.completed_at = now
    session.flush()
    _audit(session, cfg, request, "gdpr.request.completed", actor=actor, now=now)
    _event(session, "gdpr.request.completed", request, now)
    return FulfilResult(request, download)


def _export_parts(
    session: Session, cfg: ComplianceConfig, subject: Subject, now: datetime
) -> list[tuple[Provider, ExportPart]]:
    context = ExportContext(session, subject, now, cfg.hmac_keys)
    return [
        (provider, provider.export(context))
        for provider in cfg.registry.providers()
        if provider.export is not None
    ]


def create_export(
    session: Session,
    cfg: ComplianceConfig,
    request: GdprRequest,
    subject: Subject,
    *,
    settings: EffectiveSettings,
    now: datetime,
) -> GdprExport:
    """Build the ZIP, store it under the export directory, and record it."""
    tenant = session.get(Tenant, subject.tenant_id)
    assert tenant is not None
    built = build_export(
        _export_parts(session, cfg, subject, now),
        request_id=request.id,
        request_kind=request.kind,
        generated_at=now,
        controller=tenant.legal_name,
        processor=cfg.processor,
        subject={"customer_id": subject.customer_id, "livemode": subject.livemode},
    )
    export = GdprExport(
        id=new_id("gex"),
        livemode=subject.livemode,
        request_id=request.id,
        customer_id=subject.customer_id,
        file_name=f"gdpr-export-{request.id}.zip",
        sha256=built.sha256,
        size_bytes=len(built.content),
        created_at=now,
        expires_at=now + settings.export_ttl,
    )
    session.add(export)
    path = cfg.export_path(subject.tenant_id, export.id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # write, then rename: a reader never sees half a file; a rolled-back transaction leaves
    # an orphan that the sweeper deletes
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(built.content)
    partial.replace(path)
    session.flush()
    audit.record(
        session,
        action="gdpr.export.created",
        actor="system",
        subject_type="customer",
        subject_id=subject.customer_id,
        livemode=subject.livemode,
        now=now,
        details={"request_id": request.id, "export_id": export.id},
    )
    return export


def _new_link(
    session: Session, cfg: ComplianceConfig, export: GdprExport, *, actor: str, now: datetime
) -> DownloadLink:
    link = GdprExportLink(
        id=new_id("gxl"),
        export_id=export.id,
        created_by=actor,
        created_at=now,
        expires_at=export.expires_at,
    )
    session.add(link)
    session.flush()
    return DownloadLink(export.id, cfg.signer.sign(export.tenant_id, link.id), link.expires_at)


def issue_download_link(
    session: Session, cfg: ComplianceConfig, request_id: str, *, actor: str, now: datetime
) -> DownloadLink:
    """Another single-use link to the request's export, while the export has not expired."""
    request = get_request(session, request_id)
    export_id = (request.outcome or {}).get("export_id")
    export = (
        session.scalars(sa.select(GdprExport).where(GdprExport.id == export_id)).first()
        if export_id
        else None
    )
    if export is None or export.deleted_at is not None or export.expires_at <= now:
        raise ExportNotAvailableError(f"request {request_id} has no export that is still kept")
    link = _new_link(session, cfg, export, actor=actor, now=now)
    audit.record(
        session,
        action="gdpr.export.link_issued",
        actor=actor,
        subject_type="customer",
        subject_id=export.customer_id,
        livemode=export.livemode,
        now=now,
        details={"request_id": request.id, "export_id": export.id},
    )
    return link


def link_tenant(cfg: ComplianceConfig, token: str) -> str:
    """The tenant a download token belongs to (the shell scopes the session to it)."""
    return cfg.signer.unsign(token)[0]


def open_download(
    session: Session, cfg: ComplianceConfig, token: str, *, now: datetime
) -> tuple[Path, str]:
    """Use a download link: (file path, download name). Refuses a used or expired link
    without changing anything; marks the link used in the caller's transaction."""
    tenant_id, link_id = cfg.signer.unsign(token)
    if tenant_id != current_tenant(session):
        raise DownloadLinkInvalidError("no such download")
    link = session.scalars(sa.select(GdprExportLink).where(GdprExportLink.id == link_id)).first()
    if link is None:
        raise DownloadLinkInvalidError("no such download")
    export = session.scalars(sa.select(GdprExport).where(GdprExport.id == link.export_id)).one()
    if link.used_at is not None:
        raise DownloadLinkUsedError("this link was used already; ask for a new one")
    path = cfg.export_path(tenant_id, export.id)
    if link.expires_at <= now or export.deleted_at is not None or not path.exists():
        raise DownloadLinkExpiredError("this link has expired; ask for a new export")
    # single use even under concurrency: only one UPDATE can move used_at from NULL
    claimed = session.execute(
        sa.update(GdprExportLink)
        .where(GdprExportLink.id == link.id, GdprExportLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise DownloadLinkUsedError("this link was used already; ask for a new one")
    audit.record(
        session,
        action="gdpr.export.downloaded",
        actor="data_subject_link",
        subject_type="customer",
        subject_id=export.customer_id,
        livemode=export.livemode,
        now=now,
        details={"request_id": export.request_id, "export_id": export.id},
    )
    session.flush()
    return path, export.file_name


# --- restriction (Art. 18) ----------------------------------------------------------------


def restrict_subject(
    session: Session,
    cfg: ComplianceConfig,
    subject: Subject,
    *,
    request_id: str | None,
    now: datetime,
) -> Restriction:
    existing = session.scalars(
        sa.select(Restriction).where(
            Restriction.scope == "subject", Restriction.document_id == subject.customer_id
        )
    ).first()
    if existing is not None:
        existing.lifted_at = None
        existing.request_id = request_id
        existing.updated_at = now
        restriction = existing
    else:
        restriction = Restriction(
            id=new_id("rst"),
            livemode=subject.livemode,
            customer_id=subject.customer_id,
            request_id=request_id,
            scope="subject",
            basis="subject_request",
            provider="compliance",
            document_type="customer",
            document_id=subject.customer_id,
            test_clock_id=subject.test_clock_id,
            legal_hold=False,
            created_at=now,
            updated_at=now,
        )
        session.add(restriction)
    session.flush()
    audit.record(
        session,
        action="gdpr.restriction.created",
        actor="system",
        subject_type="customer",
        subject_id=subject.customer_id,
        livemode=subject.livemode,
        now=now,
        hmac_key=cfg.hmac_key,
        subject_email=subject.email,
        details={"request_id": request_id, "restriction_id": restriction.id},
    )
    return restriction


def get_restriction(session: Session, restriction_id: str) -> Restriction:
    restriction = session.scalars(
        sa.select(Restriction).where(Restriction.id == restriction_id)
    ).first()
    if restriction is None:
        raise RestrictionNotFoundError(f"no restriction {restriction_id}")
    return restriction


def _audit_restriction(
    session: Session, restriction: Restriction, action: str, *, actor: str, now: datetime
) -> None:
    audit.record(
        session,
        action=action,
        actor=actor,
        subject_type="customer",
        subject_id=restriction.customer_id,
        livemode=restriction.livemode,
        now=now,
        details={
            "restriction_id": restriction.id,
            "document_type": restriction.document_type,
            "document_id": restriction.document_id,
        },
    )


def place_legal_hold(
    session: Session, restriction_id: str, *, reason: str, actor: str, now: datetime
) -> Restriction:
    """Keep a restricted document past its retention end (litigation, a tax audit)."""
    restriction = get_restriction(session, restriction_id)
    restriction.legal_hold = True
    restriction.legal_hold_reason = reason
    restriction.legal_hold_set_at = now
    restriction.legal_hold_set_by = actor
    restriction.updated_at = now
    session.flush()
    _audit_restriction(session, restriction, "gdpr.legal_hold.placed", actor=actor, now=now)
    return restriction


def release_legal_hold(
    session: Session, restriction_id: str, *, actor: str, now: datetime
) -> Restriction:
    restriction = get_restriction(session, restriction_id)
    restriction.legal_hold = False
    restriction.legal_hold_set_at = now
    restriction.legal_hold_set_by = actor
    restriction.updated_at = now
    session.flush()
    _audit_restriction(session, restriction, "gdpr.legal_hold.released", actor=actor, now=now)
    return restriction


def lift_restriction(
    session: Session, restriction_id: str, *, actor: str, now: datetime
) -> Restriction:
    """Lift a restriction the person asked for (Art. 18(3): tell them before). Documents kept
    for a legal retention duty stay restricted."""
    restriction = get_restriction(session, restriction_id)
    if restriction.basis != "subject_request":
        raise RestrictionNotLiftableError(
            f"restriction {restriction_id} keeps a document for a legal retention duty"
        )
    restriction.lifted_at = restriction.lifted_at or now
    restriction.updated_at = now
    session.flush()
    _audit_restriction(session, restriction, "gdpr.restriction.lifted", actor=actor, now=now)
    return restriction


# --- deadlines ----------------------------------------------------------------------------


def notify_deadlines(session: Session, *, now: datetime) -> dict[str, int]:
    """Send `gdpr.request.due_soon` once per deadline (again after an extension) and
    `gdpr.request.overdue` once, with a dashboard notification for the latter."""
    settings = effective_settings(session)
    open_requests = session.scalars(
        sa.select(GdprRequest)
        .where(GdprRequest.state.in_([s.value for s in OPEN_STATES]))
        .order_by(GdprRequest.due_at)
    ).all()
    counts = {"due_soon": 0, "overdue": 0}
    for request in open_requests:
        if is_overdue(request.due_at, now):
            if request.overdue_notified_at is None:
                request.overdue_notified_at = now
                _event(session, "gdpr.request.overdue", request, now)
                session.add(
                    TenantNotification(
                        id=new_id("ntf"),
                        kind="gdpr_request.overdue",
                        message=(
                            f"The {request.kind} request {request.id} was due on "
                            f"{request.due_at:%Y-%m-%d %H:%M} UTC and is still "
                            f"{request.state.replace('_', ' ')}."
                        ),
                        subject_id=request.id,
                        created_at=now,
                    )
                )
                counts["overdue"] += 1
        elif request.due_soon_notified_at is None and is_due_soon(
            request.due_at, now, within=settings.due_soon
        ):
            request.due_soon_notified_at = now
            _event(session, "gdpr.request.due_soon", request, now)
            counts["due_soon"] += 1
    session.flush()
    return counts
