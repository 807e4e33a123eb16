"""One transaction per request: the view's services flush, this module commits.

A response below 400 commits (with the idempotency record, when there is one); anything else
rolls back, so an error never leaves half a write behind.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response, g, request

from saas.auth.middleware import API_PREFIX
from saas.extensions import db
from saas.http import idempotency
from saas.http.problems import problem
from saas.kernel.clock import utcnow

log = logging.getLogger("abowerk.http")


def _claim_idempotency_key() -> Response | None:
    if request.method not in idempotency.METHODS or not request.path.startswith(API_PREFIX):
        return None
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isprintable():
        return problem(
            400,
            "invalid_idempotency_key",
            "Invalid Idempotency-Key",
            "An Idempotency-Key is 1 to 255 printable characters.",
        )
    principal = g.principal
    claim = idempotency.Claim(principal.tenant_id, principal.livemode, key)
    # the authentication step may have written last_used_at: keep it, then claim the key
    db.session().commit()
    granted, response = idempotency.begin(db.engine, request, claim, now=utcnow())
    g.idempotency_claim = granted
    return response


def _commit_or_rollback(response: Response) -> Response:
    claim = getattr(g, "idempotency_claim", None)
    session = db.session()
    retryable = False
    if response.status_code < 400:
        try:
            if claim is not None:
                idempotency.complete_in(session, claim, response)
            session.commit()
        except sa.exc.IntegrityError:
            session.rollback()
            log.warning("commit failed on a constraint", exc_info=True)
            retryable = True  # a retry will see the other change and may well succeed
            response = problem(
                409, "conflict", "Conflict", "The change conflicts with a concurrent change."
            )
        except sa.exc.OperationalError:
            session.rollback()
            log.exception("commit failed")
            response = problem(
                503, "database_unavailable", "Service unavailable", "Try again shortly."
            )
        else:
            return response
    else:
        session.rollback()
    if claim is not None:
        try:
            if response.status_code >= 500 or retryable:
                idempotency.release(db.engine, claim)
            else:
                idempotency.complete_apart(db.engine, claim, response)
        except sa.exc.SQLAlchemyError:
            log.exception("could not record the idempotent outcome")
    return response


def init_app(app: Flask) -> None:
    app.before_request(_claim_idempotency_key)
    app.after_request(_commit_or_rollback)
