"""RFC 9457 problem documents: the one place where domain error kinds become HTTP statuses."""

from __future__ import annotations

from typing import Any

from flask import Response, g, json
from werkzeug.exceptions import HTTPException

from saas.kernel.errors import DomainError, ErrorKind

PROBLEM_MIME = "application/problem+json"

STATUS_BY_KIND = {
    ErrorKind.INVALID: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.RATE_LIMITED: 429,
}

# Stable codes for errors raised by Flask, werkzeug and webargs rather than by our domain.
CODE_BY_STATUS = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "route_not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:abowerk:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def from_domain_error(err: DomainError) -> Response:
    headers = {}
    if err.kind is ErrorKind.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="abowerk"'  # RFC 6750 §3
    elif err.kind is ErrorKind.RATE_LIMITED:
        headers["Retry-After"] = "60"
    return problem(
        STATUS_BY_KIND[err.kind],
        err.code,
        err.title,
        err.detail,
        errors=err.errors or None,
        headers=headers,
    )


def from_http_exception(err: HTTPException) -> Response:
    status = err.code or 500
    data = getattr(err, "data", None) or {}
    code = data.get("code") or CODE_BY_STATUS.get(status, "http_error")
    detail = data.get("message") or err.description
    errors = data.get("errors") or data.get("messages")
    if status == 400 and isinstance(errors, dict) and "json" in errors:
        # webargs reports a body it could not decode as 400 with {"json": [...]}
        code = "malformed_json"
    if status == 422 and isinstance(errors, dict):
        # webargs nests errors by location ({"json": {...}, "query": {...}}); one level is enough
        flat: dict[str, Any] = {}
        for value in errors.values():
            if isinstance(value, dict):
                flat.update(value)
        errors = flat or errors
        detail = "Some fields are invalid; see `errors`."
    headers = dict(data.get("headers") or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="abowerk"'
    if status == 429:
        detail = f"Rate limit exceeded ({err.description}). Retry after the delay in Retry-After."
    if status == 500:
        detail = "An unexpected error occurred; it has been logged with the request id."
    if status == 405:
        allowed = err.get_headers()
        for name, value in allowed:
            if name.lower() == "allow":
                headers["Allow"] = value
    return problem(status, code, err.name, detail, errors=errors, headers=headers)
