"""Request ids, W3C trace context, request metrics and structured JSON logs.

Every response carries `X-Request-Id` (taken from the caller when it is a sane token, so a
load balancer's id flows through, otherwise generated) and every log line carries it too.
Log lines hold ids and codes, never personal data: e-mails and names stay out of logs, and so
do credentials in URLs (a download token in the path is logged as `[redacted]`).

Trace context (W3C Trace Context, https://www.w3.org/TR/trace-context/), so that logs can be
joined with traces once a proxy, a client or an OpenTelemetry collector produces them:

- A valid incoming `traceparent` (`00-<trace-id>-<parent-id>-<flags>`) makes this request a
  span of that trace: its `trace_id` and `trace_flags` are kept, the caller's span becomes
  `parent_span_id`, and the request gets a new `span_id` of its own.
- Without one (or with an invalid one, which the specification says to ignore) the request
  starts a new trace with random ids and flags `00` (not sampled: nothing here records spans).
- The log lines of the request carry `trace_id` and `span_id` (lowercase hex, the field names
  of OpenTelemetry's log data model), and the response carries a `traceparent` naming the
  request's span, so a client can quote it along with `X-Request-Id`.

Metrics: each request is timed from its first hook to its last, by URL rule and status, and
counted while in flight (`saas.observability`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

from saas import observability

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "abowerk_request_id", default=None
)
tenant_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "abowerk_tenant_id", default=None
)


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 lowercase hex digits, not all zero
    span_id: str  # 16 lowercase hex digits: this request's span
    trace_flags: str  # 2 hex digits; 01 = sampled
    parent_span_id: str | None = None  # the caller's span, when it sent a traceparent

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.trace_flags}"


trace_var: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "abowerk_trace", default=None
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# version-traceid-parentid-flags; a future version may append fields after another dash
_TRACEPARENT = re.compile(
    r"^(?P<version>[0-9a-f]{2})-(?P<trace_id>[0-9a-f]{32})-(?P<parent_id>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?$"
)
UNMATCHED_ENDPOINT = "<unmatched>"  # 404s and 405s: one label value, whatever the path
# URL parts that are credentials (the single-use GDPR export link, portal links): whoever
# reads the log must not be able to use an unspent one
_CREDENTIAL_ARG = re.compile(r"token|secret", re.IGNORECASE)
REDACTED = "[redacted]"
access_log = logging.getLogger("abowerk.access")


def _new_span_id() -> str:
    while True:
        span = secrets.token_hex(8)
        if span != "0" * 16:
            return span


def _new_trace_id() -> str:
    while True:
        trace = secrets.token_hex(16)
        if trace != "0" * 32:
            return trace


def parse_traceparent(header: str | None) -> TraceContext | None:
    """The incoming trace as the parent of a new span, or None if the header is invalid."""
    match = _TRACEPARENT.match((header or "").strip())
    if match is None:
        return None
    version, trace_id, parent_id = match["version"], match["trace_id"], match["parent_id"]
    if version == "ff" or (version == "00" and match["rest"] is not None):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    # of the flags only "sampled" (bit 0) is defined; pass on no bits we do not know
    flags = f"{int(match['flags'], 16) & 0x01:02x}"
    return TraceContext(trace_id, _new_span_id(), flags, parent_span_id=parent_id)


def new_trace() -> TraceContext:
    return TraceContext(_new_trace_id(), _new_span_id(), "00")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        trace = trace_var.get()
        if trace is not None:
            entry["trace_id"] = trace.trace_id
            entry["span_id"] = trace.span_id
            entry["trace_flags"] = trace.trace_flags
        tid = tenant_id_var.get()
        if tid:
            entry["tenant_id"] = tid
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr for our loggers and for Flask's app logger ("saas"), which logs
    unhandled exceptions; with a handler of ours in place Flask adds no plain-text one."""
    for name in ("abowerk", "saas"):
        logger = logging.getLogger(name)
        if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            continue
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = True  # pytest's caplog sees the records too


def loggable_path() -> str:
    """The request path, with path parameters that are credentials replaced by REDACTED."""
    path = request.path
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and value and _CREDENTIAL_ARG.search(name):
            path = path.replace(value, REDACTED)
    return path


def _endpoint_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED_ENDPOINT


def init_app(app: Flask) -> None:
    """Registered first: its before_request hook runs before any other (authentication, rate
    limits), and its after_request hook last, when the status is final."""

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        rid = incoming if _SAFE_ID.match(incoming) else "req_" + secrets.token_hex(12)
        g.request_id = rid
        g.request_started = time.perf_counter()
        g.trace = parse_traceparent(request.headers.get("traceparent")) or new_trace()
        request_id_var.set(rid)
        trace_var.set(g.trace)
        tenant_id_var.set(None)
        observability.HTTP_REQUESTS_IN_FLIGHT.inc()
        g.counted_in_flight = True

    @app.after_request
    def _log_and_tag(response: Response) -> Response:
        rid = getattr(g, "request_id", None)
        if rid:
            response.headers["X-Request-Id"] = rid
        trace = getattr(g, "trace", None)
        if trace is not None:
            response.headers["traceparent"] = trace.traceparent
        started = getattr(g, "request_started", None)
        duration = time.perf_counter() - started if started else None
        if duration is not None:
            observability.HTTP_REQUEST_DURATION.labels(
                method=request.method, endpoint=_endpoint_label(), status=response.status_code
            ).observe(duration)
        access_log.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": loggable_path(),
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 2) if duration is not None else None,
                }
            },
        )
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        # teardown runs even when a hook failed: the in-flight gauge never leaks upwards
        if g.pop("counted_in_flight", False):
            observability.HTTP_REQUESTS_IN_FLIGHT.dec()
