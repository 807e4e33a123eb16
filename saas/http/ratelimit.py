"""Rate limits: per credential for authenticated calls, per client IP for everything else.

The limiter runs after authentication, so the bucket is the credential (API key or OAuth
client), not the raw token: inventing tokens or fetching fresh OAuth tokens does not buy a new
budget. Failed authentications are counted per client IP on their own, stricter budget, which
slows down key guessing. With Redis configured the counters are shared by every worker and
node; if Redis fails, the limiter falls back to per-process memory rather than failing
requests.
"""

from __future__ import annotations

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from limits import parse

from saas.kernel.errors import DomainError, ErrorKind


class TooManyAuthFailuresError(DomainError):
    code = "rate_limited"
    kind = ErrorKind.RATE_LIMITED
    title = "Too many failed authentications"


def client_ip() -> str:
    # gunicorn's forwarded_allow_ips decides which proxies may set the address
    return request.remote_addr or "unknown"


def rate_limit_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None:
        return f"cred:{principal.credential_id}"
    return f"ip:{client_ip()}"


def count_auth_failure(app: Flask) -> None:
    """Called on every failed authentication; raises once the IP's budget is spent."""
    limiter: Limiter = app.extensions["abowerk_limiter"]
    try:
        limit = parse(app.config["ABOWERK_SETTINGS"].auth_failure_limit)
        allowed = limiter.limiter.hit(limit, "auth-failure", client_ip())
    except Exception:
        return
    if not allowed:
        raise TooManyAuthFailuresError(
            "too many failed authentications from this address; retry in a minute"
        )


def strip_retry_after(response: Response) -> Response:
    """Flask-Limiter adds Retry-After to every response; it belongs on 429 and 503, and on
    the answers that set it on purpose (an idempotent request still in progress)."""
    if response.status_code not in (429, 503) and not getattr(
        response, "explicit_retry_after", False
    ):
        response.headers.pop("Retry-After", None)
    return response
