"""Security headers on every response.

API responses are data, never documents to render: `default-src 'none'`. The interactive API
docs page runs Swagger UI from our own assets, which needs inline bootstrapping. HSTS is sent
only over TLS (behind a proxy, gunicorn's `forwarded_allow_ips` decides whom to believe about
`X-Forwarded-Proto`), so a plain-HTTP development server never pins itself.
"""

from __future__ import annotations

from flask import Flask, Response, request

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


def init_app(app: Flask) -> None:
    app.after_request(_headers)
