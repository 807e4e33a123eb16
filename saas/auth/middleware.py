"""Who is calling: authenticate every `/v1` request, scope the session, check scopes per view."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from saas.auth.oauth import authenticate_access_token
from saas.auth.services import Principal, authenticate_api_key
from saas.extensions import db
from saas.http.ratelimit import count_auth_failure
from saas.http.request_context import tenant_id_var
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from saas.kernel.errors import ForbiddenError, UnauthenticatedError

F = TypeVar("F", bound=Callable[..., Any])

API_PREFIX = "/v1/"


def current_principal() -> Principal:
    principal = getattr(g, "principal", None)
    if principal is None:
        raise UnauthenticatedError("authentication required")
    return principal  # type: ignore[no-any-return]


def _authenticate() -> None:
    if not request.path.startswith(API_PREFIX):
        return
    try:
        _authenticate_bearer()
    except UnauthenticatedError:
        count_auth_failure(current_app._get_current_object())  # type: ignore[attr-defined]
        raise


def _authenticate_bearer() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError(
            "send `Authorization: Bearer <API key or access token>`",
            code="authentication_required",
        )
    token = token.strip()
    session = db.session()
    if token.startswith(("sk_test_", "sk_live_")):
        principal = authenticate_api_key(session, token, now=utcnow())
    else:
        principal = authenticate_access_token(
            session,
            token,
            secret_key=current_app.config["SECRET_KEY"],
            now_ts=int(time.time()),
        )
    tenancy.set_tenant(session, principal.tenant_id, livemode=principal.livemode)
    g.principal = principal
    tenant_id_var.set(principal.tenant_id)


def requires(resource: str, action: str) -> Callable[[F], F]:
    """View decorator: the caller's credential must grant `resource:action`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if not principal.allows(resource, action):
                raise ForbiddenError(
                    f"this credential lacks the scope {resource}:{action}",
                    code="insufficient_scope",
                )
            return view(*args, **kwargs)

        wrapper._abowerk_scope = (resource, action)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def init_app(app: Flask) -> None:
    app.before_request(_authenticate)
