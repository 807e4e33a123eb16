"""The portal's pages (`/portal/...`): server-rendered, working without JavaScript; the VAT ID
field checks itself as the customer types when scripts run.

Every view works on the one customer the session cookie names (`g.portal`); ids in URLs
are looked up together with that customer, so another customer's or tenant's id is a 404.
Writes go through the same services as the API, with the portal session as the actor.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from billing.invoices import rendering
from billing.payments import services as payments
from billing.sellers.models import SellerProfile
from billing.sellers.services import find_seller_profile
from compliance import services as gdpr
from saas.customers.models import Customer
from saas.customers.services import get_customer, update_customer
from saas.customers.validation import normalise_vat_id
from saas.extensions import session as db_session
from saas.gdpr.runtime import compliance_config
from saas.kernel.clock import utcnow
from saas.kernel.countries import EU_MEMBER_STATES, is_country
from saas.kernel.errors import ValidationFailedError
from saas.portal import queries, services, web
from saas.portal.models import CANCELLATION_REASONS, PortalSession
from saas.subscriptions import services as subscriptions
from saas.subscriptions.services import PRORATION_MODES
from saas.tenants.models import Tenant
from tax import vatid
from tax.errors import VatIdSyntaxError
from tax.model import VatIdStatus

COOKIE = "abowerk_portal"
CSRF_PURPOSE = "portal"

bp = Blueprint(
    "portal",
    __name__,
    url_prefix="/portal",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
web.html_errors(bp, "portal/error.html")

# views a visitor without a session may reach
_PUBLIC = frozenset({"portal.start", "portal.static", "portal.signed_out"})


def _actor() -> str:
    return f"portal:{g.portal.id}"


@bp.before_request
def _load_session() -> None:
    g.ui_language = services.language_of(request.accept_languages.best_match(web.LANGUAGES))
    if request.endpoint in _PUBLIC:
        return
    cookie = request.cookies.get(COOKIE, "")
    portal = services.load_portal_session(db_session(), cookie, now=utcnow())
    g.portal = portal
    g.ui_language = portal.locale
    web.check_csrf(portal.id, CSRF_PURPOSE)


bp.after_request(web.page_headers)


@bp.context_processor
def _context() -> dict[str, Any]:
    portal: PortalSession | None = g.get("portal")
    ctx: dict[str, Any] = {
        "money": web.money,
        "last_day": web.last_day,
        "lang": g.get("ui_language", "en"),
    }
    if portal is not None:
        tenant = db_session().get(Tenant, portal.tenant_id)
        profile = _profile()
        zone = tenant.timezone if tenant else "Europe/Berlin"
        ctx.update(
            day=lambda value: web.day(value, zone),
            csrf_token=web.csrf_token(portal.id, CSRF_PURPOSE),
            portal=portal,
            seller_name=(profile.legal_name if profile else None)
            or (tenant.legal_name if tenant else ""),
            has_logo=bool(profile and profile.logo),
        )
    return ctx


def _profile() -> SellerProfile | None:
    cached = g.get("seller_profile", False)
    if cached is False:
        cached = find_seller_profile(db_session(), livemode=g.portal.livemode)
        g.seller_profile = cached
    return cached  # type: ignore[no-any-return]


def _customer() -> Customer:
    return get_customer(db_session(), g.portal.customer_id)


def _back(endpoint: str, done: str | None = None, **values: Any) -> BaseResponse:
    if done:
        values["done"] = done
    return redirect(url_for(endpoint, **values), code=303)


# --- session ------------------------------------------------------------------------------


@bp.get("/start/<token>")
def start(token: str) -> BaseResponse:
    opened = services.redeem_portal_link(db_session(), token, now=utcnow())
    response = redirect(url_for("portal.overview"), code=303)
    response.set_cookie(
        COOKIE,
        opened.cookie,
        max_age=int(services.SESSION_TTL.total_seconds()),
        path="/portal",
        secure=web.cookie_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


@bp.post("/sign_out")
def sign_out() -> BaseResponse:
    services.end_portal_session(g.portal, now=utcnow())
    target = g.portal.return_url or url_for("portal.signed_out")
    response = redirect(target, code=303)
    response.delete_cookie(COOKIE, path="/portal", secure=web.cookie_secure(), httponly=True)
    return response


@bp.get("/signed_out")
def signed_out() -> str:
    return render_template("portal/signed_out.html")


@bp.post("/language")
def language() -> BaseResponse:
    chosen = request.form.get("language", "")
    if chosen in web.LANGUAGES:
        g.portal.locale = chosen
    return redirect(_safe_next(), code=303)


def _safe_next() -> str:
    target = request.form.get("next", "")
    # only paths inside the portal: never an open redirect
    if target.startswith("/portal/") and "//" not in target and "\\" not in target:
        return target
    return url_for("portal.overview")


# --- branding -----------------------------------------------------------------------------


@bp.get("/branding.css")
def branding_css() -> Response:
    profile = _profile()
    accent = profile.accent_color if profile else "#1f4e79"
    if not (len(accent) == 7 and accent.startswith("#")):
        accent = "#1f4e79"
    css = f":root {{ --accent: {accent}; }}\n"
    return Response(css, mimetype="text/css")


@bp.get("/logo")
def logo() -> Response:
    profile = _profile()
    if profile is None or not profile.logo:
        abort(404)
    mimetype = "image/png" if profile.logo.startswith(b"\x89PNG") else "image/jpeg"
    return Response(profile.logo, mimetype=mimetype)


# --- overview and plan --------------------------------------------------------------------


@bp.get("/")
def overview() -> str:
    session = db_session()
    customer = _customer()
    subs = queries.subscriptions(session, customer.id)
    items = [
        {
            "sub": sub,
            "plan": queries.plan_name(session, sub.price_id),
            "scheduled_plan": queries.plan_name(session, sub.scheduled_price_id)
            if sub.scheduled_price_id
            else None,
            "next": queries.next_invoice(session, customer, sub),
        }
        for sub in subs
    ]
    return render_template(
        "portal/overview.html",
        customer=customer,
        items=items,
        reasons=CANCELLATION_REASONS,
        done=request.args.get("done"),
    )


@bp.get("/subscriptions/<subscription_id>/plan")
def plan(subscription_id: str) -> str:
    session = db_session()
    sub = queries.customer_subscription(session, g.portal.customer_id, subscription_id)
    return render_template(
        "portal/plan.html",
        sub=sub,
        current=queries.plan_name(session, sub.price_id),
        options=queries.price_options(session, sub.currency),
    )


def _change_data() -> dict[str, Any]:
    when = request.form.get("proration", "immediate")
    data: dict[str, Any] = {"proration": when if when in PRORATION_MODES else "immediate"}
    price_id = request.form.get("price_id", "").strip()
    if price_id:
        data["price_id"] = price_id[:40]
    raw_quantity = request.form.get("quantity", "").strip()
    if raw_quantity:
        try:
            quantity = int(raw_quantity)
        except ValueError:
            quantity = 0
        if not 1 <= quantity <= 10_000:
            raise ValidationFailedError(
                _("The quantity must be a whole number from 1 to 10000."),
                errors={"quantity": ["1 to 10000"]},
            )
        data["quantity"] = quantity
    return data


@bp.post("/subscriptions/<subscription_id>/preview")
def preview(subscription_id: str) -> str:
    session = db_session()
    sub = queries.customer_subscription(session, g.portal.customer_id, subscription_id)
    data = _change_data()
    now = utcnow()
    result = subscriptions.preview_change(session, sub.id, data, now=now)
    taxed = queries.with_vat(
        session,
        _customer(),
        livemode=sub.livemode,
        currency=result.currency,
        net=result.total,
        quantity=1,
        unit_amount=result.total,
        on=now.date(),
    )
    return render_template(
        "portal/preview.html",
        sub=sub,
        preview=result,
        taxed=taxed,
        data=data,
        old_plan=queries.plan_name(session, result.old_price_id),
        new_plan=queries.plan_name(session, result.new_price_id),
    )


@bp.post("/subscriptions/<subscription_id>/change")
def change(subscription_id: str) -> BaseResponse:
    session = db_session()
    sub = queries.customer_subscription(session, g.portal.customer_id, subscription_id)
    subscriptions.change_subscription(session, sub.id, _change_data(), actor=_actor(), now=utcnow())
    return _back("portal.overview", "changed")


@bp.post("/subscriptions/<subscription_id>/cancel")
def cancel(subscription_id: str) -> BaseResponse:
    session = db_session()
    sub = queries.customer_subscription(session, g.portal.customer_id, subscription_id)
    reason = request.form.get("reason", "")
    now = utcnow()
    services.record_cancellation_reason(session, g.portal, sub.id, reason, now=now)
    subscriptions.cancel_subscription(
        session, sub.id, {"at_period_end": True}, actor=_actor(), now=now
    )
    return _back("portal.overview", "canceled")


@bp.post("/subscriptions/<subscription_id>/uncancel")
def uncancel(subscription_id: str) -> BaseResponse:
    session = db_session()
    sub = queries.customer_subscription(session, g.portal.customer_id, subscription_id)
    subscriptions.uncancel_subscription(session, sub.id, actor=_actor(), now=utcnow())
    return _back("portal.overview", "uncanceled")


@bp.post("/subscriptions/<subscription_id>/resume")
def resume(subscription_id: str) -> BaseResponse:
    session = db_session()
    sub = queries.customer_subscription(session, g.portal.customer_id, subscription_id)
    subscriptions.resume_subscription(session, sub.id, actor=_actor(), now=utcnow())
    return _back("portal.overview", "resumed")


# --- invoices -----------------------------------------------------------------------------


@bp.get("/invoices")
def invoices() -> str:
    rows = queries.documents(db_session(), g.portal.customer_id)
    return render_template("portal/invoices.html", documents=rows)


@bp.get("/invoices/<invoice_id>.<fmt>")
def document(invoice_id: str, fmt: str) -> Response:
    if fmt not in rendering.MEDIA_TYPES:
        abort(404)
    session = db_session()
    invoice = queries.customer_document(session, g.portal.customer_id, invoice_id)
    if invoice is None:
        abort(404)
    stored = rendering.document(session, invoice, fmt, now=utcnow())
    response = Response(stored.content, mimetype=stored.media_type)
    filename = f"{invoice.number}.{fmt}".replace("/", "-").replace('"', "")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- billing details and VAT ID -----------------------------------------------------------


@bp.get("/billing")
def billing() -> str:
    return render_template("portal/billing.html", customer=_customer(), errors={}, form=None)


def _verifier() -> vatid.VatIdVerifier:
    url = (
        current_app.config.get("ABOWERK_VIES_URL")
        or current_app.config["ABOWERK_SETTINGS"].vies_url
        or vatid.VIES_REST_URL
    )
    return vatid.ViesVerifier(str(url), timeout=8.0)


def _vies(number: str) -> vatid.VatIdCheck:
    profile = _profile()
    requester = profile.vat_id if profile and profile.vat_id else None
    return vatid.check_vat_id(number, _verifier(), requester_vat_id=requester)


@bp.post("/billing")
def save_billing() -> Any:
    session = db_session()
    customer = _customer()
    form = request.form
    country = form.get("country", "").strip().upper()
    errors: dict[str, str] = {}
    if not is_country(country):
        errors["country"] = _("Choose a country.")
    is_business = form.get("is_business") == "1"
    raw_vat = form.get("vat_id", "").strip()
    vat_number: str | None = None
    if raw_vat:
        try:
            vat_number = normalise_vat_id(raw_vat, country or customer.country)
        except ValueError:
            errors["vat_id"] = _("This is not a valid VAT ID.")
    if errors:
        return render_template(
            "portal/billing.html", customer=customer, errors=errors, form=form
        ), 422
    data: dict[str, Any] = {
        "is_business": is_business,
        "address": {
            "line1": form.get("line1", "").strip()[:200] or None,
            "line2": form.get("line2", "").strip()[:200] or None,
            "postal_code": form.get("postal_code", "").strip()[:20] or None,
            "city": form.get("city", "").strip()[:100] or None,
            "state": customer.state,
            "country": country,
        },
        "vat_id": vat_number,
    }
    if vat_number and vat_number != customer.vat_id and vat_number[:2] in _VIES_PREFIXES:
        check = _vies(vat_number)
        data["vat_id_check"] = {"status": check.status.value, "checked_at": check.checked_at}
    update_customer(session, customer.id, data, now=utcnow())
    return _back("portal.billing_saved")


_VIES_PREFIXES = frozenset({*EU_MEMBER_STATES, "EL", "XI"}) - {"GR"}


@bp.get("/billing/saved")
def billing_saved() -> str:
    return render_template(
        "portal/billing.html", customer=_customer(), errors={}, form=None, saved=True
    )


@bp.post("/vat_id/syntax")
def vat_id_syntax() -> Response:
    """Immediate feedback while typing: syntax and checksum only, no register."""
    raw = str((request.get_json(silent=True) or {}).get("vat_id", ""))[:40]
    try:
        number = vatid.validate_vat_id(raw)
    except VatIdSyntaxError as exc:
        return jsonify(valid=False, reason=exc.reason, message=_("This is not a valid VAT ID."))
    return jsonify(valid=True, vat_id=number, message=_("Format correct. Asking VIES …"))


@bp.post("/vat_id/verify")
def vat_id_verify() -> Response:
    """The register's answer (VIES); slow, so the page asks for it after the syntax check."""
    raw = str((request.get_json(silent=True) or {}).get("vat_id", ""))[:40]
    check = _vies(raw)
    messages = {
        VatIdStatus.VALID: _("VIES confirms this VAT ID."),
        VatIdStatus.INVALID: _("VIES does not know this VAT ID."),
        VatIdStatus.UNAVAILABLE: _(
            "VIES is not answering right now; we will check again before the next invoice."
        ),
    }
    return jsonify(status=check.status.value, name=check.name, message=messages[check.status])


# --- payment method -----------------------------------------------------------------------


def _payment_page(**extra: Any) -> str:
    session = db_session()
    return render_template(
        "portal/payment.html",
        profile=_profile(),
        card=queries.card_on_file(session, g.portal.customer_id),
        card_setup=payments.card_setup_available(session, livemode=g.portal.livemode),
        **extra,
    )


@bp.get("/payment")
def payment() -> str:
    return _payment_page(done=request.args.get("done"))


@bp.post("/payment-method/card")
def add_card() -> str:
    """A SetupIntent for this customer and the page where Stripe.js collects the card; the
    browser goes to Stripe and comes back to `card_returned`."""
    setup = payments.start_card_setup(db_session(), g.portal.customer_id, now=utcnow())
    g.page_csp = web.STRIPE_PAGE_CSP
    return render_template(
        "portal/card_setup.html",
        setup=setup,
        stripe_js=web.STRIPE_JS,
        return_url=url_for("portal.card_returned", _external=True),
    )


@bp.get("/payment-method/return")
def card_returned() -> Any:
    """Stripe sends the browser back here with `setup_intent` in the query; what happened is
    asked from Stripe, never read from the query string."""
    intent_id = request.args.get("setup_intent", "")
    if not intent_id.startswith("seti_") or len(intent_id) > 255:
        abort(404)
    outcome = services.save_card_from_setup(db_session(), g.portal, intent_id, now=utcnow())
    if outcome.status == "succeeded":
        # a redirect, so that reloading the page does not ask Stripe again
        return _back("portal.payment", "card_saved")
    if outcome.status == "processing":
        message = _("Your bank is still checking the card. Look at this page again later.")
    else:
        message = _("Your card was not saved. Please try again or use another card.")
    return _payment_page(card_problem=message, card_failure=outcome.failure_message)


# --- privacy ------------------------------------------------------------------------------


@bp.get("/privacy")
def privacy() -> str:
    session = db_session()
    rows = queries.privacy_requests(session, g.portal.customer_id)
    return render_template(
        "portal/privacy.html",
        requests=rows,
        exports=queries.live_exports(session, g.portal.customer_id, utcnow()),
        done=request.args.get("done"),
    )


def _verified_request(kind: str) -> Any:
    """A request of the signed-in customer, with the portal session as the identity proof."""
    session = db_session()
    cfg = compliance_config()
    now = utcnow()
    req = gdpr.create_request(
        session, cfg, customer_id=g.portal.customer_id, kind=kind, actor=_actor(), now=now
    )
    gdpr.verify_identity(
        session,
        cfg,
        req.id,
        method="portal_session",
        reference=g.portal.id,
        actor=_actor(),
        now=now,
    )
    return req


@bp.post("/privacy/export")
def request_export() -> BaseResponse:
    req = _verified_request("access")
    gdpr.fulfil_request(db_session(), compliance_config(), req.id, actor=_actor(), now=utcnow())
    return _back("portal.privacy", "export_ready")


@bp.post("/privacy/requests/<gdpr_request_id>/download")
def download_export(gdpr_request_id: str) -> BaseResponse:
    session = db_session()
    req = gdpr.get_request(session, gdpr_request_id)
    if req.customer_id != g.portal.customer_id:
        abort(404)
    link = gdpr.issue_download_link(
        session, compliance_config(), req.id, actor=_actor(), now=utcnow()
    )
    return redirect(url_for("gdpr.download_export", token=link.token), code=303)


@bp.post("/privacy/erasure")
def request_erasure() -> Any:
    if request.form.get("confirm") != "1":
        raise ValidationFailedError(
            _("Tick the box to confirm that you want your data erased."),
            errors={"confirm": ["required"]},
        )
    _verified_request("erasure")
    return _back("portal.privacy", "erasure_requested")


def register(app: Any) -> None:
    web.init_babel(app)
    app.register_blueprint(bp)
