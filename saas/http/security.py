"""Security headers on every response, and requests carrying NUL refused before any view.

API responses are data, never documents to render: `default-src 'none'`. The interactive API
docs page runs Swagger UI from our own assets, which needs inline bootstrapping. HSTS is sent
only over TLS (behind a proxy, gunicorn's `forwarded_allow_ips` decides whom to believe about
`X-Forwarded-Proto`), so a plain-HTTP development server never pins itself.

PostgreSQL text cannot hold NUL (U+0000): an id, a cursor or a name carrying one fails in the
database, a 500 found by the API fuzz (tests/reliability/test_api_stateful.py). No value of
ours can contain it, so a request with one is refused first: 404 when it is in the path (no
such resource can exist), 422 `validation_failed` naming the field when it is in the query or
the JSON body.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from saas.http.problems import problem

API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    is_html = response.mimetype == "text/html"
    h.setdefault("Content-Security-Policy", DOCS_CSP if is_html else API_CSP)
    if request.path.startswith("/v1/") or request.path == "/oauth/token":
        h.setdefault("Cache-Control", "no-store")  # account data must not sit in caches
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", HSTS)
    return response


NUL = "\x00"


def _nul_fields(value: Any, path: str) -> list[str]:
    """The dotted paths of the JSON strings (keys included) that hold NUL."""
    if isinstance(value, str):
        return [path or "_body"] if NUL in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            found += [name] if NUL in str(key) else _nul_fields(item, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _nul_fields(item, f"{path}.{i}" if path else str(i))
    return found


def _refuse_nul() -> Response | None:
    if NUL in request.path:
        return problem(404, "route_not_found", "Not Found", "no resource has this path")
    fields = [name for name, values in request.args.lists() if any(NUL in v for v in values)]
    if request.is_json:
        fields += _nul_fields(request.get_json(silent=True), "")
    if not fields:
        return None
    return problem(
        422,
        "validation_failed",
        "Unprocessable Entity",
        "Some fields are invalid; see `errors`.",
        errors={name: ["must not contain the NUL character"] for name in fields},
    )


class CookieOnDemandSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without building its signing serializer (keys, salt,
    key derivation) for a request that sends no session cookie: every API call. Nothing of
    abowerk keeps state in Flask's session (the portal and the dashboard have their own
    server-side sessions), so the serializer was work for nothing on each request."""

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if not app.secret_key:
            return None
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = CookieOnDemandSessionInterface()
    app.before_request(_refuse_nul)
    app.after_request(_headers)
