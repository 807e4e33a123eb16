"""GDPR endpoints (scope `gdpr`) and the export download.

`/v1/gdpr/requests`: data subject requests and their deadlines; `/v1/gdpr/restrictions`:
restricted documents and customers, legal holds; `/v1/gdpr/audit_entries`; `/v1/gdpr/settings`.

`GET /downloads/gdpr/{token}` serves an export ZIP without an API key: the signed, single-use,
expiring token is the credential, so the tenant can hand the link to the person (and the
customer portal can show it). It lives outside `/v1/` for that reason.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for
from flask.views import MethodView

from compliance import queries, services
from compliance.deadlines import OPEN_STATES
from compliance.models import GdprRequest, Restriction
from compliance.retention import STATUTORY_YEARS
from compliance.schemas import (
    GdprAuditEntryListArgs,
    GdprAuditEntryListSchema,
    GdprDownloadLinkSchema,
    GdprExtendSchema,
    GdprFulfilledRequestSchema,
    GdprLegalHoldSchema,
    GdprNoBodySchema,
    GdprRejectSchema,
    GdprRequestCreateSchema,
    GdprRequestListArgs,
    GdprRequestListSchema,
    GdprRequestSchema,
    GdprRestrictionListArgs,
    GdprRestrictionListSchema,
    GdprRestrictionSchema,
    GdprSettingsSchema,
    GdprSettingsUpdateSchema,
    GdprVerifyIdentitySchema,
)
from saas.auth.middleware import current_principal, requires
from saas.extensions import session
from saas.gdpr import cli, runtime, tasks
from saas.http.api import Blueprint
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.pagination import list_envelope

blp = Blueprint(
    "gdpr",
    __name__,
    description="GDPR: data subject requests, restrictions, audit log, export downloads",
)
blp.cli.add_command(cli.reapply_erasures_cmd)
blp.cli.add_command(cli.sweep_cmd)
blp.cli.add_command(cli.notify_cmd)
blp.record_once(lambda state: runtime.init_app(state.app))
tasks.register()


def _actor() -> str:
    return current_principal().credential_id


def _cfg() -> Any:
    return runtime.compliance_config()


def _with_overdue(req: GdprRequest) -> GdprRequest:
    now = utcnow()
    req.overdue = req.state in {s.value for s in OPEN_STATES} and req.due_at <= now  # type: ignore[attr-defined]
    return req


@blp.route("/v1/gdpr/requests")
class RequestCollection(MethodView):
    @blp.arguments(GdprRequestListArgs, location="query")
    @blp.response(200, GdprRequestListSchema)
    @blp.problems(401, 403, 422, 429)
    @requires("gdpr", "read")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List data subject requests, newest first; `overdue=true` for the overdue list."""
        rows, more = queries.list_requests(
            session(),
            limit=args["limit"],
            starting_after=args["starting_after"],
            now=utcnow(),
            state=args["state"],
            kind=args["kind"],
            customer_id=args["customer_id"],
            overdue=args["overdue"],
        )
        return list_envelope(request.path, [_with_overdue(r) for r in rows], more)

    @blp.arguments(GdprRequestCreateSchema)
    @blp.response(201, GdprRequestSchema)
    @blp.problems(400, 401, 403, 404, 409, 413, 422, 429)
    @requires("gdpr", "write")
    def post(self, data: dict[str, Any]) -> GdprRequest:
        """Record a request of a customer: access, portability, erasure or restriction."""
        req = services.create_request(
            session(),
            _cfg(),
            customer_id=data["customer_id"],
            kind=data["kind"],
            received_at=data["received_at"],
            actor=_actor(),
            now=utcnow(),
        )
        return _with_overdue(req)


@blp.route("/v1/gdpr/requests/<gdpr_request_id>", methods=["GET"])
@blp.response(200, GdprRequestSchema)
@blp.problems(401, 403, 404, 429)
@requires("gdpr", "read")
def get_request(gdpr_request_id: str) -> GdprRequest:
    """Get a request."""
    return _with_overdue(services.get_request(session(), gdpr_request_id))


@blp.route("/v1/gdpr/requests/<gdpr_request_id>/request_identity", methods=["POST"])
@blp.arguments(GdprNoBodySchema)
@blp.response(200, GdprRequestSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def request_identity(_data: dict[str, Any], gdpr_request_id: str) -> GdprRequest:
    """Mark that the person was asked to prove their identity."""
    req = services.request_identity(
        session(), _cfg(), gdpr_request_id, actor=_actor(), now=utcnow()
    )
    return _with_overdue(req)


@blp.route("/v1/gdpr/requests/<gdpr_request_id>/verify_identity", methods=["POST"])
@blp.arguments(GdprVerifyIdentitySchema)
@blp.response(200, GdprRequestSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def verify_identity(data: dict[str, Any], gdpr_request_id: str) -> GdprRequest:
    """Attest that the tenant verified the person's identity (and how)."""
    req = services.verify_identity(
        session(),
        _cfg(),
        gdpr_request_id,
        method=data["method"],
        note=data["note"],
        actor=_actor(),
        now=utcnow(),
    )
    return _with_overdue(req)


@blp.route("/v1/gdpr/requests/<gdpr_request_id>/extend", methods=["POST"])
@blp.arguments(GdprExtendSchema)
@blp.response(200, GdprRequestSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def extend(data: dict[str, Any], gdpr_request_id: str) -> GdprRequest:
    """Extend the deadline by up to two further months in total, with a reason."""
    req = services.extend_request(
        session(),
        _cfg(),
        gdpr_request_id,
        months=data["months"],
        reason=data["reason"],
        actor=_actor(),
        now=utcnow(),
    )
    return _with_overdue(req)


@blp.route("/v1/gdpr/requests/<gdpr_request_id>/reject", methods=["POST"])
@blp.arguments(GdprRejectSchema)
@blp.response(200, GdprRequestSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def reject(data: dict[str, Any], gdpr_request_id: str) -> GdprRequest:
    """Refuse the request, with the reason the person will be told."""
    req = services.reject_request(
        session(), _cfg(), gdpr_request_id, reason=data["reason"], actor=_actor(), now=utcnow()
    )
    return _with_overdue(req)


def _download(link: services.DownloadLink) -> dict[str, Any]:
    return {
        "export_id": link.export_id,
        "url": url_for("gdpr.download_export", token=link.token, _external=True),
        "expires_at": link.expires_at,
    }


@blp.route("/v1/gdpr/requests/<gdpr_request_id>/fulfil", methods=["POST"])
@blp.arguments(GdprNoBodySchema)
@blp.response(200, GdprFulfilledRequestSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429, 503)
@requires("gdpr", "write")
def fulfil(_data: dict[str, Any], gdpr_request_id: str) -> GdprRequest:
    """Carry the request out: build the export (with its download link, shown once), erase,
    or restrict."""
    result = services.fulfil_request(
        session(), _cfg(), gdpr_request_id, actor=_actor(), now=utcnow()
    )
    req = _with_overdue(result.request)
    req.download = _download(result.download) if result.download else None  # type: ignore[attr-defined]
    return req


@blp.route("/v1/gdpr/requests/<gdpr_request_id>/download_link", methods=["POST"])
@blp.arguments(GdprNoBodySchema)
@blp.response(201, GdprDownloadLinkSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def download_link(_data: dict[str, Any], gdpr_request_id: str) -> dict[str, Any]:
    """A new single-use link to the request's export, while the export is kept."""
    link = services.issue_download_link(
        session(), _cfg(), gdpr_request_id, actor=_actor(), now=utcnow()
    )
    return _download(link)


@blp.route("/downloads/gdpr/<token>", methods=["GET"])
@blp.doc(
    security=[],
    responses={
        "200": {
            "description": "The export ZIP (manifest.json and one JSON file per category).",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
@blp.problems(404, 409, 429)
def download_export(token: str) -> Response:
    """Download an export ZIP with a single-use link (no API key)."""
    cfg = _cfg()
    db_session = session()
    tenancy.set_tenant(db_session, services.link_tenant(cfg, token))
    path, name = services.open_download(db_session, cfg, token, now=utcnow())
    # read into memory (exports are small): the link is spent when this response commits,
    # and no file handle outlives the request
    response = Response(path.read_bytes(), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/v1/gdpr/restrictions", methods=["GET"])
@blp.arguments(GdprRestrictionListArgs, location="query")
@blp.response(200, GdprRestrictionListSchema)
@blp.problems(401, 403, 422, 429)
@requires("gdpr", "read")
def list_restrictions(args: dict[str, Any]) -> dict[str, Any]:
    """Restricted documents (kept for tax law) and restricted customers, newest first."""
    rows, more = queries.list_restrictions(
        session(),
        limit=args["limit"],
        starting_after=args["starting_after"],
        customer_id=args["customer_id"],
    )
    return list_envelope(request.path, rows, more)


@blp.route("/v1/gdpr/restrictions/<restriction_id>", methods=["GET"])
@blp.response(200, GdprRestrictionSchema)
@blp.problems(401, 403, 404, 429)
@requires("gdpr", "read")
def get_restriction(restriction_id: str) -> Restriction:
    """Get a restriction."""
    return services.get_restriction(session(), restriction_id)


@blp.route("/v1/gdpr/restrictions/<restriction_id>/legal_hold", methods=["POST"])
@blp.arguments(GdprLegalHoldSchema)
@blp.response(200, GdprRestrictionSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def place_legal_hold(data: dict[str, Any], restriction_id: str) -> Restriction:
    """Keep the document past its retention end (litigation, a pending tax audit)."""
    return services.place_legal_hold(
        session(), restriction_id, reason=data["reason"], actor=_actor(), now=utcnow()
    )


@blp.route("/v1/gdpr/restrictions/<restriction_id>/release_legal_hold", methods=["POST"])
@blp.arguments(GdprNoBodySchema)
@blp.response(200, GdprRestrictionSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def release_legal_hold(_data: dict[str, Any], restriction_id: str) -> Restriction:
    """Release a legal hold: the sweeper redacts the document once its retention has ended."""
    return services.release_legal_hold(session(), restriction_id, actor=_actor(), now=utcnow())


@blp.route("/v1/gdpr/restrictions/<restriction_id>/lift", methods=["POST"])
@blp.arguments(GdprNoBodySchema)
@blp.response(200, GdprRestrictionSchema)
@blp.problems(400, 401, 403, 404, 409, 422, 429)
@requires("gdpr", "write")
def lift_restriction(_data: dict[str, Any], restriction_id: str) -> Restriction:
    """Lift a restriction the customer asked for (tell them first, Art. 18(3))."""
    return services.lift_restriction(session(), restriction_id, actor=_actor(), now=utcnow())


@blp.route("/v1/gdpr/audit_entries", methods=["GET"])
@blp.arguments(GdprAuditEntryListArgs, location="query")
@blp.response(200, GdprAuditEntryListSchema)
@blp.problems(401, 403, 422, 429)
@requires("gdpr", "read")
def list_audit_entries(args: dict[str, Any]) -> dict[str, Any]:
    """The audit log, newest first (filter by `subject_id`)."""
    rows, more = queries.list_audit_entries(
        session(),
        limit=args["limit"],
        starting_after=args["starting_after"],
        subject_id=args["subject_id"],
    )
    return list_envelope(request.path, rows, more)


def _settings_out(settings: services.EffectiveSettings) -> dict[str, Any]:
    return {
        "retention_years": {k.value: v for k, v in settings.retention_years.items()},
        "statutory_retention_years": {k.value: v for k, v in STATUTORY_YEARS.items()},
        "export_ttl_hours": settings.export_ttl_hours,
        "due_soon_days": settings.due_soon_days,
    }


@blp.route("/v1/gdpr/settings")
class SettingsItem(MethodView):
    @blp.response(200, GdprSettingsSchema)
    @blp.problems(401, 403, 429)
    @requires("gdpr", "read")
    def get(self) -> dict[str, Any]:
        """Retention periods per document class, export link lifetime, due-soon warning."""
        return _settings_out(services.effective_settings(session()))

    @blp.arguments(GdprSettingsUpdateSchema)
    @blp.response(200, GdprSettingsSchema)
    @blp.problems(400, 401, 403, 413, 422, 429)
    @requires("gdpr", "write")
    def patch(self, data: dict[str, Any]) -> dict[str, Any]:
        """Change them; retention periods cannot go below the statutory ones."""
        return _settings_out(
            services.update_settings(session(), data, actor=_actor(), now=utcnow())
        )
