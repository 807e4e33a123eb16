"""Rate limits: per credential for authenticated calls, per client IP for everything else.

The limits run after authentication, so the bucket is the credential (API key or OAuth
client), not the raw token: inventing tokens or fetching fresh OAuth tokens does not buy a new
budget. The configured limits (`ABOWERK_RATE_LIMIT`, e.g. "100 per second;3000 per minute")
apply to every route together, one budget per caller, in fixed windows. Failed
authentications are counted per client IP on their own, stricter budget, which slows down key
guessing.

With Redis configured the counters are shared by every worker and node, and a request costs
one Redis call whatever the number of limits: a Lua script increments the caller's counters
in order (smallest window first), stops at the first one over its budget, and answers each
count with its window's remaining time, from which the `X-RateLimit-*` headers are written.
If Redis fails, the counters fall back to per-process memory (logged once) rather than
failing requests, and Redis is tried again after `RETRY_STORE_AFTER` seconds.

Why not Flask-Limiter, which this replaced: its per-request evaluation (decorated, default,
blueprint and meta limits, conditional deductions, a round trip per limit plus two more for
the headers) cost about a tenth of the web server's CPU under load for the one feature used
here, application-wide limits (docs/reliability.md, "Load"). Key names and the response
headers are the same as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from limits import RateLimitItem, parse, parse_many

from saas.kernel.errors import DomainError, ErrorKind

log = logging.getLogger("abowerk.ratelimit")

# per counter in order (KEYS; ARGV: expiry, amount, limit per counter, after ARGV[1]):
# INCRBY, the expiry on a new window, the window's remaining time; stops after the first
# counter over its limit when ARGV[1] is "1". Answers {count, pttl} per counter it touched.
_INCR_MANY = b"""
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
KEY_PREFIX = "LIMITS:"  # the `limits` package's Redis prefix, kept so counters carry over
RETRY_STORE_AFTER = 30.0  # seconds on the memory fallback before Redis is tried again


@dataclass(frozen=True)
class Hit:
    key: str
    expiry: int  # seconds
    limit: int  # the budget: a count above it is a breach


class MemoryCounters:
    """Fixed windows in this process's memory: the embedded default, and the fallback when
    Redis is unreachable. A window starts with its first hit, as in Redis."""

    SWEEP_EVERY = 10_000  # hits between removals of expired windows

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._hits = 0

    def incr_many(self, hits: Sequence[Hit], stop_at_breach: bool) -> list[tuple[int, float]]:
        now = time.time()
        out = []
        with self._lock:
            self._hits += 1
            if self._hits % self.SWEEP_EVERY == 0:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            for hit in hits:
                count, resets_at = self._windows.get(hit.key, (0, 0.0))
                if resets_at <= now:
                    count, resets_at = 0, now + hit.expiry
                count += 1
                self._windows[hit.key] = (count, resets_at)
                out.append((count, resets_at))
                if stop_at_breach and count > hit.limit:
                    break
        return out


class RedisCounters:
    """The same windows in Redis, shared by every process and node; one call per request."""

    def __init__(self, url: str) -> None:
        import redis

        # a stalled Redis must not stall requests: the fallback takes over after the timeout
        self._client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._incr_many = self._client.register_script(_INCR_MANY)

    def incr_many(self, hits: Sequence[Hit], stop_at_breach: bool) -> list[tuple[int, float]]:
        args: list[Any] = ["1" if stop_at_breach else "0"]
        for hit in hits:
            args += [hit.expiry, 1, hit.limit]
        answer = self._incr_many([KEY_PREFIX + h.key for h in hits], args)
        now = time.time()
        return [
            (int(count), now + max(int(ttl_ms), 0) / 1000)
            for count, ttl_ms in zip(answer[::2], answer[1::2], strict=True)
        ]


class RateLimitedError(DomainError):
    code = "rate_limited"
    kind = ErrorKind.RATE_LIMITED
    title = "Too Many Requests"


class TooManyAuthFailuresError(DomainError):
    code = "rate_limited"
    kind = ErrorKind.RATE_LIMITED
    title = "Too many failed authentications"


class RateLimiter:
    """The application-wide limits of one app; `init_app` binds the settings and storage."""

    def __init__(self, key_func: Callable[[], str]) -> None:
        self._key_func = key_func
        self._limits: list[RateLimitItem] = []
        self._exempt_blueprints: set[str] = set()
        self._exempt_views: set[Callable[..., Any]] = set()
        self._memory = MemoryCounters()
        self._redis: RedisCounters | None = None
        self._redis_down_until = 0.0

    def init_app(self, app: Flask) -> None:
        settings = app.config["ABOWERK_SETTINGS"]
        # smallest window first: its state goes into the headers unless a longer one breaches
        self._limits = sorted(parse_many(settings.rate_limit), key=lambda item: item.get_expiry())
        self._auth_failure_limit = parse(settings.auth_failure_limit)
        if settings.redis_url:
            self._redis = RedisCounters(settings.redis_url)
        app.before_request(self._check)
        app.after_request(self._add_headers)
        app.extensions["abowerk_limiter"] = self

    def exempt(self, target: Blueprint | Callable[..., Any]) -> Any:
        """Lift the limits from a blueprint or a view function (usable as a decorator)."""
        if isinstance(target, Blueprint):
            self._exempt_blueprints.add(target.name)
        else:
            self._exempt_views.add(target)
        return target

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one request against one limit outside the application-wide ones; False once
        it is over (failed authentications)."""
        hit = Hit(item.key_for(*identifiers), item.get_expiry(), item.amount)
        ((count, _),) = self._increment([hit], stop_at_breach=False)
        return count <= item.amount

    def count_auth_failure(self) -> None:
        """Called on every failed authentication; raises once the address's budget is spent."""
        if not self.hit(self._auth_failure_limit, "auth-failure", client_ip()):
            raise TooManyAuthFailuresError(
                "too many failed authentications from this address; retry in a minute"
            )

    def _is_exempt(self) -> bool:
        if request.blueprint in self._exempt_blueprints:
            return True
        view = current_app.view_functions.get(request.endpoint or "")
        return view is not None and view in self._exempt_views

    def _check(self) -> None:
        if not self._limits or self._is_exempt():
            return
        caller = self._key_func()
        hits = [
            Hit(item.key_for(caller, "global"), item.get_expiry(), item.amount)
            for item in self._limits
        ]
        counts = self._increment(hits, stop_at_breach=True)
        shown = len(counts) - 1 if counts[-1][0] > hits[len(counts) - 1].limit else 0
        count, resets_at = counts[shown]
        limit = hits[shown].limit
        g.abowerk_rate_window = (limit, max(limit - count, 0), resets_at)
        if count > limit:
            raise RateLimitedError(
                f"Rate limit exceeded ({self._limits[shown]}). "
                "Retry after the delay in Retry-After."
            )

    def _increment(self, hits: Sequence[Hit], *, stop_at_breach: bool) -> list[tuple[int, float]]:
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                return self._redis.incr_many(hits, stop_at_breach)
            except Exception:  # any failure of the store: count in memory instead
                log.warning(
                    "rate limit store unreachable: counting in process memory for %ss",
                    RETRY_STORE_AFTER,
                    exc_info=True,
                )
                self._redis_down_until = time.monotonic() + RETRY_STORE_AFTER
        return self._memory.incr_many(hits, stop_at_breach)

    @staticmethod
    def _add_headers(response: Response) -> Response:
        window = g.get("abowerk_rate_window")  # (limit, remaining, resets_at), set by _check
        if window is None:
            return response
        limit, remaining, resets_at = window
        reset_at = int(resets_at + 1)
        response.headers["X-RateLimit-Limit"] = str(limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = str(reset_at)
        if response.status_code == 429:
            response.headers["Retry-After"] = str(max(int(reset_at - time.time()), 1))
        return response


def client_ip() -> str:
    # gunicorn's forwarded_allow_ips decides which proxies may set the address
    return request.remote_addr or "unknown"


def rate_limit_key() -> str:
    principal = getattr(g, "principal", None)
    if principal is not None:
        return f"cred:{principal.credential_id}"
    return f"ip:{client_ip()}"


def count_auth_failure(app: Flask) -> None:
    """Count a failed authentication against the client address's own budget; raises
    `TooManyAuthFailuresError` once it is spent."""
    limiter: RateLimiter = app.extensions["abowerk_limiter"]
    limiter.count_auth_failure()
