"""What the server-rendered pages of the portal and the dashboard share.

* **CSRF**: every state-changing request carries a token, in the form field `csrf_token` or
  (for the small `fetch` calls) the header `X-CSRF-Token`. The token is an HMAC of the
  session's id under the application's secret key, so it needs no storage and is worthless
  for another session. A POST without a matching token is refused with 400 before the view
  runs. Cookies are `SameSite=Lax` as well, a second wall.
* **Headers**: a strict Content-Security-Policy (no inline script or style; the accent colour
  comes from a stylesheet URL; only the portal's card page admits Stripe.js, `g.page_csp`),
  `frame-ancestors 'none'`, `no-store` caching; HSTS over TLS
  comes from `saas.http.security` as for every response.
* **Languages**: Flask-Babel with the catalogs in `saas/portal/translations` (German; the
  source strings are English). Compiled `.mo` files are committed next to the `.po` files
  (`tests/api/test_portal_catalogs.py` fails when they drift), so nothing builds at start-up.
* **Errors**: domain errors and HTTP errors raised in these views render an HTML page with
  the right status, not a problem document.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, abort, current_app, g, render_template, request
from flask_babel import Babel
from werkzeug.exceptions import HTTPException

from saas.http.problems import STATUS_BY_KIND
from saas.kernel.errors import DomainError

TRANSLATIONS = Path(__file__).parent / "translations"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
# The portal's card page only: Stripe.js and its frames, with the origins Stripe's
# integration security guide lists for Stripe.js (scripts from js.stripe.com, its card and
# 3-D Secure frames from js.stripe.com and hooks.stripe.com, its calls to api.stripe.com).
STRIPE_JS = "https://js.stripe.com/v3/"
STRIPE_PAGE_CSP = (
    "default-src 'self'; script-src 'self' https://js.stripe.com https://*.js.stripe.com; "
    "style-src 'self'; img-src 'self' data:; connect-src 'self' https://api.stripe.com; "
    "frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LANGUAGES = ("de", "en")


def csrf_token(session_id: str, purpose: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"csrf:{purpose}:{session_id}".encode(), hashlib.sha256).hexdigest()


def check_csrf(session_id: str | None, purpose: str) -> None:
    """Abort with 400 unless the request carries this session's token."""
    if request.method not in UNSAFE_METHODS:
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not session_id or not hmac.compare_digest(sent, csrf_token(session_id, purpose)):
        abort(400, description="The form has expired or did not come from this site.")


def page_headers(response: Response) -> Response:
    h = response.headers
    # a view that embeds a third party widens the policy for its own response only
    h["Content-Security-Policy"] = g.get("page_csp") or PAGE_CSP
    h.setdefault("Cache-Control", "no-store")
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "same-origin"
    return response


def cookie_secure() -> bool:
    # secure by default; a plain-HTTP server on a host other than localhost opts out
    configured = current_app.config.get("ABOWERK_COOKIES_SECURE")
    if configured is not None:
        return bool(configured)
    return bool(current_app.config["ABOWERK_SETTINGS"].cookies_secure)


def _locale() -> str:
    return str(g.get("ui_language") or "en")


def init_babel(app: Flask) -> None:
    if "babel" in app.extensions:
        return
    Babel(app, locale_selector=_locale, default_translation_directories=str(TRANSLATIONS))


def _status(err: DomainError) -> int:
    return int(STATUS_BY_KIND.get(err.kind, 400))


def html_errors(bp: Blueprint, template: str) -> None:
    """Render errors raised in `bp`'s views as `template` (gets `status` and `message`)."""

    @bp.errorhandler(DomainError)
    def _domain(err: DomainError) -> Any:
        status = _status(err)
        return render_template(template, status=status, message=err.detail), status

    @bp.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Any:
        status = err.code or 500
        return render_template(template, status=status, message=err.description), status


def day(value: date | datetime | None, zone: str) -> str:
    """A calendar day for people: instants in the tenant's time zone (a period that ends at
    local midnight must not show the day before), in the page's language."""
    from babel.dates import format_date

    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(zone)).date()
    return str(format_date(value, format="medium", locale=_locale()))


def last_day(end: date) -> date:
    """The last day of a period whose stored end is exclusive."""
    return end - timedelta(days=1)


def money(amount: int | None, currency: str) -> str:
    """Minor units as `1.234,50 €` (de) or `€1,234.50` (en), from an exact Decimal."""
    from babel.numbers import format_currency

    from saas.catalog.currencies import EXPONENTS

    if amount is None:
        return "—"
    value = Decimal(amount).scaleb(-EXPONENTS.get(currency, 2))
    return str(format_currency(value, currency, locale=_locale()))


def amount(value: Decimal, currency: str) -> str:
    """An amount already in major units (a report's EUR figures)."""
    from babel.numbers import format_currency

    return str(format_currency(value, currency, locale=_locale()))
