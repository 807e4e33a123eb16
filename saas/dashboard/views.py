"""The tenant dashboard (`/dashboard/...`): sign-in with password and TOTP, then read-mostly
pages over the tenant's business. Every page needs a staff session; every POST a CSRF token
(before sign-in, the token is bound to a random pre-session cookie, so a foreign site cannot
sign a victim into its own account). `read_only` staff get 403 on any change.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from billing.invoices import rendering
from billing.invoices.models import DRAFT
from billing.invoices.services import get_invoice
from billing.metrics import charts
from compliance import services as gdpr
from compliance.deadlines import OPEN_STATES
from saas.auth.services import revoke_api_key
from saas.dashboard import queries, services
from saas.dashboard.models import StaffAccount, StaffSession
from saas.extensions import db
from saas.extensions import session as db_session
from saas.gdpr.runtime import compliance_config
from saas.http.ratelimit import count_auth_failure
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.errors import ValidationFailedError
from saas.kernel.secretbox import SecretBox
from saas.portal import web
from saas.tenants.models import Tenant

COOKIE = "abowerk_dashboard"
PRE_COOKIE = "abowerk_dashboard_pre"
PENDING_COOKIE = "abowerk_dashboard_2fa"
PENDING_SECONDS = 300
CSRF_PURPOSE = "dashboard"
LOGIN_PURPOSE = "dashboard-login"

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
)
web.html_errors(bp, "dashboard/error.html")

# reachable without a staff session; their forms' CSRF tokens are bound to the pre-session
_PUBLIC = frozenset(
    {
        "dashboard.login",
        "dashboard.login_submit",
        "dashboard.second_factor",
        "dashboard.second_factor_submit",
    }
)


def _box() -> SecretBox:
    settings = current_app.config["ABOWERK_SETTINGS"]
    return SecretBox(settings.secret_key, settings.previous_secret_keys)


def _pending_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="dashboard-2fa")


def _cookie(response: BaseResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/dashboard",
        secure=web.cookie_secure(),
        httponly=True,
        samesite="Lax",
    )


def _pre_session() -> str:
    value = request.cookies.get(PRE_COOKIE, "")
    if len(value) < 20:
        value = g.get("new_pre_session") or secrets.token_urlsafe(24)
        g.new_pre_session = value
    return value


@bp.before_request
def _load_session() -> None:
    g.ui_language = "en"
    if request.endpoint in _PUBLIC:
        # sign-in forms: CSRF bound to the pre-session cookie
        web.check_csrf(request.cookies.get(PRE_COOKIE), LOGIN_PURPOSE)
        return
    staff_session, account = services.load_staff_session(
        db_session(), request.cookies.get(COOKIE, ""), now=utcnow()
    )
    tenancy.set_tenant(db_session(), account.tenant_id, livemode=staff_session.livemode)
    g.staff_session = staff_session
    g.staff = account
    web.check_csrf(staff_session.id, CSRF_PURPOSE)


@bp.after_request
def _after(response: Response) -> Response:
    new_pre = g.get("new_pre_session")
    if new_pre:
        _cookie(response, PRE_COOKIE, new_pre, 3600)
    return web.page_headers(response)


@bp.context_processor
def _context() -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "money": web.money,
        "amount": web.amount,
        "last_day": web.last_day,
        "lang": "en",
    }
    staff: StaffAccount | None = g.get("staff")
    if staff is not None:
        staff_session: StaffSession = g.staff_session
        tenant = db_session().get(Tenant, staff.tenant_id)
        zone = tenant.timezone if tenant else "Europe/Berlin"
        ctx.update(
            day=lambda value: web.day(value, zone),
            staff=staff,
            tenant=tenant,
            livemode=staff_session.livemode,
            can_write=staff.role in services.WRITE_ROLES,
            csrf_token=web.csrf_token(staff_session.id, CSRF_PURPOSE),
        )
    else:
        ctx["csrf_token"] = web.csrf_token(_pre_session(), LOGIN_PURPOSE)
    return ctx


def _write() -> None:
    services.require_write(g.staff)


# --- sign-in ------------------------------------------------------------------------------


@bp.get("/login")
def login() -> str:
    return render_template("dashboard/login.html", workspace=request.args.get("workspace", ""))


def _login_failed(message: str, template: str, status: int = 401, **ctx: Any) -> Any:
    # the failure count is the throttle: keep it although the response is an error
    db.session.commit()
    count_auth_failure(current_app._get_current_object())  # type: ignore[attr-defined]
    return render_template(template, error=message, **ctx), status


@bp.post("/login")
def login_submit() -> Any:
    form = request.form
    workspace = form.get("workspace", "")[:63]
    try:
        account = services.check_password(
            db_session(),
            workspace=workspace,
            email=form.get("email", "")[:320],
            password=form.get("password", "")[:1024],
            now=utcnow(),
        )
    except (services.LoginFailedError, services.AccountLockedError) as err:
        return _login_failed(err.detail, "dashboard/login.html", workspace=workspace)
    pending = _pending_serializer().dumps({"t": account.tenant_id, "s": account.id})
    response = redirect(url_for("dashboard.second_factor"), code=303)
    _cookie(response, PENDING_COOKIE, pending, PENDING_SECONDS)
    return response


def _pending_account() -> StaffAccount:
    try:
        data = _pending_serializer().loads(
            request.cookies.get(PENDING_COOKIE, ""), max_age=PENDING_SECONDS
        )
    except BadSignature as exc:
        raise services.LoginFailedError("sign in again") from exc
    return services.get_staff(db_session(), str(data["t"]), str(data["s"]))


@bp.get("/login/code")
def second_factor() -> str:
    _pending_account()
    return render_template("dashboard/code.html")


@bp.post("/login/code")
def second_factor_submit() -> Any:
    account = _pending_account()
    try:
        opened = services.check_code_and_open_session(
            db_session(), _box(), account, request.form.get("code", "")[:12], now=utcnow()
        )
    except (services.LoginFailedError, services.AccountLockedError) as err:
        return _login_failed(err.detail, "dashboard/code.html")
    response = redirect(url_for("dashboard.overview"), code=303)
    _cookie(response, COOKIE, opened.cookie, int(services.SESSION_TTL.total_seconds()))
    response.delete_cookie(PENDING_COOKIE, path="/dashboard")
    return response


@bp.post("/logout")
def logout() -> BaseResponse:
    g.staff_session.ended_at = utcnow()
    response = redirect(url_for("dashboard.login"), code=303)
    response.delete_cookie(COOKIE, path="/dashboard", secure=web.cookie_secure(), httponly=True)
    return response


@bp.post("/mode")
def mode() -> BaseResponse:
    """The live/test switch: which data the pages show (nothing is changed)."""
    g.staff_session.livemode = request.form.get("livemode") == "1"
    return redirect(url_for("dashboard.overview"), code=303)


# --- metrics ------------------------------------------------------------------------------


def _tenant() -> Tenant:
    tenant = db_session().get(Tenant, g.staff.tenant_id)
    if tenant is None:  # the staff row references it
        abort(404)
    return tenant


@bp.get("/")
def overview() -> str:
    session = db_session()
    now = utcnow()
    rep = queries.report(session, _tenant(), g.staff_session.livemode, now)
    series = queries.chart_series(rep)
    return render_template(
        "dashboard/overview.html",
        month=series[-1] if series else None,
        series=series,
        currency=rep.reporting_currency,
        counts=queries.counts(session, now),
    )


_CHARTS = {"mrr": charts.mrr_chart, "movements": charts.waterfall_chart}


@bp.get("/charts/<name>.svg")
def chart(name: str) -> Response:
    draw = _CHARTS.get(name)
    if draw is None:
        abort(404)
    rep = queries.report(db_session(), _tenant(), g.staff_session.livemode, utcnow())
    response = Response(draw(queries.chart_series(rep), "svg"), mimetype=charts.MIME["svg"])
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/churn")
def churn() -> str:
    session = db_session()
    rep = queries.report(session, _tenant(), g.staff_session.livemode, utcnow(), trials=True)
    series = queries.chart_series(rep)
    trials = {m: rep.trials.get((rep.reporting_currency, m.month)) for m in series}
    return render_template(
        "dashboard/churn.html",
        series=series,
        trials=trials,
        currency=rep.reporting_currency,
        reasons=queries.cancellation_reasons(session),
    )


@bp.get("/cohorts")
def cohorts() -> str:
    rows = queries.cohorts(db_session(), _tenant(), g.staff_session.livemode, utcnow())
    return render_template("dashboard/cohorts.html", cohorts=rows)


# --- lists --------------------------------------------------------------------------------


@bp.get("/customers")
def customers() -> str:
    return render_template("dashboard/customers.html", customers=queries.customers(db_session()))


@bp.get("/subscriptions")
def subscriptions() -> str:
    session = db_session()
    rows = queries.subscriptions(session)
    names = queries.customer_names(session, {r.customer_id for r in rows})
    return render_template("dashboard/subscriptions.html", subscriptions=rows, names=names)


@bp.get("/invoices")
def invoices() -> str:
    session = db_session()
    rows = queries.invoices(session)
    names = queries.customer_names(session, {r.customer_id for r in rows})
    return render_template("dashboard/invoices.html", invoices=rows, names=names)


@bp.get("/invoices/<invoice_id>.pdf")
def invoice_pdf(invoice_id: str) -> Response:
    session = db_session()
    invoice = get_invoice(session, invoice_id)
    if invoice.status == DRAFT:
        abort(404)
    stored = rendering.document(session, invoice, rendering.PDF, now=utcnow())
    response = Response(stored.content, mimetype=stored.media_type)
    filename = f"{invoice.number}.pdf".replace("/", "-").replace('"', "")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/tax")
def tax() -> str:
    today = utcnow().astimezone(queries.zone(_tenant())).date()
    overview = queries.tax_overview(db_session(), livemode=g.staff_session.livemode, today=today)
    return render_template("dashboard/tax.html", tax=overview)


# --- GDPR ---------------------------------------------------------------------------------


def _open_states() -> set[str]:
    return {s.value for s in OPEN_STATES}


@bp.get("/gdpr")
def gdpr_requests() -> str:
    session = db_session()
    rows = queries.gdpr_requests(session)
    names = queries.customer_names(session, {r.customer_id for r in rows})
    return render_template(
        "dashboard/gdpr.html", requests=rows, names=names, open=_open_states(), now=utcnow()
    )


@bp.get("/gdpr/<gdpr_request_id>")
def gdpr_request(gdpr_request_id: str) -> str:
    session = db_session()
    req = gdpr.get_request(session, gdpr_request_id)
    names = queries.customer_names(session, {req.customer_id})
    return render_template(
        "dashboard/gdpr_request.html",
        req=req,
        name=names.get(req.customer_id),
        open=_open_states(),
        now=utcnow(),
        done=request.args.get("done"),
    )


def _staff_actor() -> str:
    return f"staff:{g.staff.id}"


@bp.post("/gdpr/<gdpr_request_id>/fulfil")
def gdpr_fulfil(gdpr_request_id: str) -> BaseResponse:
    _write()
    gdpr.fulfil_request(
        db_session(), compliance_config(), gdpr_request_id, actor=_staff_actor(), now=utcnow()
    )
    return redirect(
        url_for("dashboard.gdpr_request", gdpr_request_id=gdpr_request_id, done="fulfilled"),
        code=303,
    )


@bp.post("/gdpr/<gdpr_request_id>/reject")
def gdpr_reject(gdpr_request_id: str) -> BaseResponse:
    _write()
    reason = request.form.get("reason", "").strip()[:1000]
    if not reason:
        raise ValidationFailedError("Give the reason the person will be told.")
    gdpr.reject_request(
        db_session(),
        compliance_config(),
        gdpr_request_id,
        reason=reason,
        actor=_staff_actor(),
        now=utcnow(),
    )
    return redirect(
        url_for("dashboard.gdpr_request", gdpr_request_id=gdpr_request_id, done="rejected"),
        code=303,
    )


# --- webhooks, API keys, staff ------------------------------------------------------------


@bp.get("/webhooks")
def webhooks() -> str:
    return render_template(
        "dashboard/webhooks.html", endpoints=queries.webhook_endpoints(db_session())
    )


@bp.get("/webhooks/<endpoint_id>")
def webhook(endpoint_id: str) -> str:
    session = db_session()
    endpoint = queries.webhook_endpoint(session, endpoint_id)
    if endpoint is None:
        abort(404)
    return render_template(
        "dashboard/webhook.html",
        endpoint=endpoint,
        deliveries=queries.deliveries(session, endpoint.id),
    )


@bp.get("/api_keys")
def api_keys() -> str:
    return render_template("dashboard/api_keys.html", keys=queries.api_keys(db_session()))


@bp.post("/api_keys/<key_id>/revoke")
def revoke_key(key_id: str) -> BaseResponse:
    services.require_owner(g.staff)
    revoke_api_key(db_session(), key_id=key_id, now=utcnow())
    return redirect(url_for("dashboard.api_keys"), code=303)


@bp.get("/staff")
def staff() -> str:
    return render_template("dashboard/staff.html", accounts=queries.staff(db_session()))


def register(app: Any) -> None:
    web.init_babel(app)
    app.register_blueprint(bp)
