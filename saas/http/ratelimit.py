"""Rate limits: per credential for authenticated calls, per client IP for everything else.

The limiter runs after authentication, so the bucket is the credential (API key or OAuth
client), not the raw token: inventing tokens or fetching fresh OAuth tokens does not buy a new
budget. Failed authentications are counted per client IP on their own, stricter budget, which
slows down key guessing. With Redis configured the counters are shared by every worker and
node; if Redis fails, the limiter falls back to per-process memory rather than failing
requests.

Cost per request on Redis: one round trip, whatever the number of configured limits.
Flask-Limiter increments each limit's counter in turn (a round trip each) and reads the window
of the tightest limit again after the view for the `X-RateLimit-*` headers (two more).
`AppLimiter` works out, before Flask-Limiter checks the request, which counters it is about to
increment (the application-wide limits, in its order); `RequestWindowRedisStorage` increments
all of them in one Lua call when the first is asked for, stopping at the first one over its
limit exactly as Flask-Limiter stops at the first breach, and answers the other increments and
the header reads from what that call returned, kept on the request (`flask.g`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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
# the same for several counters in order (KEYS; ARGV: expiry, amount, limit per counter),
# stopping after the first over its limit when ARGV[1] is "1"; {current, pttl} per counter
_INCR_EXPIRE_TTL_MANY = b"""
local out = {}
for i, key in ipairs(KEYS) do
    local expiry = ARGV[3 * i - 1]
    local amount = tonumber(ARGV[3 * i])
    local current = redis.call("incrby", key, amount)
    if current == amount then
        redis.call("expire", key, expiry)
    end
    out[#out + 1] = current
    out[#out + 1] = redis.call("pttl", key)
    if ARGV[1] == "1" and current > tonumber(ARGV[3 * i + 1]) then
        break
    end
end
return out
"""
SCHEME_PREFIX = "abowerk+"  # how `AppLimiter` selects the storage below for a Redis URL
_PLANNED = "abowerk_limit_plan"  # g: the counters Flask-Limiter is about to increment
_PREPAID = "abowerk_limit_prepaid"  # g: counters incremented ahead, not yet asked for


@dataclass(frozen=True)
class PlannedHit:
    key: str  # the storage key, as `limits` builds it (without the storage's prefix)
    expiry: int
    amount: int  # the cost of this request
    limit: int  # the limit's budget: a count above it is a breach


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
        self._lua_incr_expire_ttl_many = self.get_connection().register_script(
            _INCR_EXPIRE_TTL_MANY
        )

    @staticmethod
    def _windows() -> dict[str, tuple[int, float]] | None:
        if not has_request_context():
            return None
        windows: dict[str, tuple[int, float]] | None = g.get("abowerk_limit_windows")
        if windows is None:
            windows = g.abowerk_limit_windows = {}
        return windows

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        windows = self._windows()
        if windows is not None:
            prepaid = self._prepaid(key, expiry, amount)
            if key in prepaid:
                prepaid.discard(key)
                return windows[key][0]
        current, ttl_ms = self._lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        if windows is not None:
            windows[key] = (int(current), time.time() + max(int(ttl_ms), 0) / 1000)
        return int(current)

    def _prepaid(self, key: str, expiry: int, amount: int) -> set[str]:
        """The counters of this request already incremented by one call for all of them; the
        call is made when the first planned counter is asked for with the planned cost."""
        prepaid: set[str] = g.get(_PREPAID) or set()
        plan: tuple[bool, list[PlannedHit]] | None = g.pop(_PLANNED, None)
        if plan is None:
            return prepaid
        stop_at_breach, hits = plan
        first = hits[0]
        if (first.key, first.expiry, first.amount) != (key, expiry, amount):
            return prepaid  # not what was planned: every counter goes its own way
        args: list[Any] = ["1" if stop_at_breach else "0"]
        for hit in hits:
            args += [hit.expiry, hit.amount, hit.limit]
        answer = self._lua_incr_expire_ttl_many([self.prefixed_key(h.key) for h in hits], args)
        windows = self._windows()
        assert windows is not None
        now = time.time()
        for hit, current, ttl_ms in zip(hits, answer[::2], answer[1::2], strict=False):
            windows[hit.key] = (int(current), now + max(int(ttl_ms), 0) / 1000)
            prepaid.add(hit.key)
        g.setdefault(_PREPAID, prepaid)
        return prepaid

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

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if in_middleware and isinstance(self._storage, RequestWindowRedisStorage):
            g.pop(_PREPAID, None)
            plan = self._planned_hits()
            if len(plan) > 1:
                g.setdefault(_PLANNED, (bool(self._fail_on_first_breach), plan))
        super()._check_request_limit(callable_name, in_middleware)

    def _planned_hits(self) -> list[PlannedHit]:
        """The counters Flask-Limiter's check of this request increments, in its order, as
        its `__evaluate_limits` derives them; empty whenever anything but plain
        application-wide limits is configured (then nothing is planned, nothing batched)."""
        manager = self.limit_manager
        if (
            self._meta_limits
            or manager.default_limits
            or manager._decorated_limits
            or manager._blueprint_limits
        ):
            return []
        endpoint = self.identify_request()
        if not endpoint:
            return []
        hits = []
        for lim in sorted(manager.application_limits, key=lambda x: x.limit):
            if lim.deduct_when or lim.meta_limits:
                return []
            if lim.is_exempt or lim.method_exempt:
                continue
            args = [lim.key_func(), lim.scope_for(endpoint, request.method)]
            if not all(args):
                return []
            if self._key_prefix:
                args = [self._key_prefix, *args]
            item = lim.limit
            hits.append(
                PlannedHit(
                    item.key_for(*args), item.get_expiry(), lim.deduction_amount, item.amount
                )
            )
        return hits


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
