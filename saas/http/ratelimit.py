"""Rate limits: per credential for authenticated calls, per client IP for everything else.

The limiter runs after authentication, so the bucket is the credential (API key or OAuth
client), not the raw token: inventing tokens or fetching fresh OAuth tokens does not buy a new
budget. Failed authentications are counted per client IP on their own, stricter budget, which
slows down key guessing. With Redis configured the counters are shared by every worker and
node; if Redis fails, the limiter falls back to per-process memory rather than failing
requests.

Cost per request on Redis: one round trip per configured limit. Flask-Limiter reads the
window of the tightest limit again after the view (for the `X-RateLimit-*` headers), two more
round trips; `RequestWindowRedisStorage` answers those from what the increment itself
returned, kept on the request (`flask.g`), so they cost nothing.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask_limiter import Limiter
from limits import parse
from limits.storage import RedisStorage

from saas.kernel.errors import DomainError, ErrorKind

# INCRBY, the expiry on a new window, and the window's remaining time, in one call
_INCR_EXPIRE_TTL = b"""
local current = redis.call("incrby", KEYS[1], tonumber(ARGV[2]))
if current == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("pttl", KEYS[1])}
"""
SCHEME_PREFIX = "abowerk+"  # how `AppLimiter` selects the storage below for a Redis URL


class RequestWindowRedisStorage(RedisStorage):
    """Redis storage for fixed windows that remembers, for the rest of the request, each
    counter it incremented and the window's expiry.

    Flask-Limiter's header injection then reads `get`/`get_expiry` of a counter this request
    has just incremented: the remembered values are what Redis answered then, so the headers
    state the budget as of this request's hit (later hits by others show in the next
    response). Outside a request, or for a counter not incremented in it, Redis is asked.
    """

    STORAGE_SCHEME = [f"{SCHEME_PREFIX}redis", f"{SCHEME_PREFIX}rediss"]  # noqa: RUF012  (limits' registry reads a list)

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix(SCHEME_PREFIX), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self._lua_incr_expire_ttl = self.get_connection().register_script(_INCR_EXPIRE_TTL)

    @staticmethod
    def _windows() -> dict[str, tuple[int, float]] | None:
        if not has_request_context():
            return None
        windows: dict[str, tuple[int, float]] | None = g.get("abowerk_limit_windows")
        if windows is None:
            windows = g.abowerk_limit_windows = {}
        return windows

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        current, ttl_ms = self._lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        windows = self._windows()
        if windows is not None:
            windows[key] = (int(current), time.time() + max(int(ttl_ms), 0) / 1000)
        return int(current)

    def get(self, key: str) -> int:
        windows = self._windows()
        if windows is not None and key in windows:
            return windows[key][0]
        return super().get(key)

    def get_expiry(self, key: str) -> float:
        windows = self._windows()
        if windows is not None and key in windows:
            return windows[key][1]
        return super().get_expiry(key)


class AppLimiter(Limiter):
    """Flask-Limiter with the storage above whenever the counters live in Redis."""

    def init_app(self, app: Flask) -> None:
        uri = app.config.get("RATELIMIT_STORAGE_URI", "")
        if uri.startswith(("redis://", "rediss://")):
            app.config["RATELIMIT_STORAGE_URI"] = SCHEME_PREFIX + uri
        super().init_app(app)


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
