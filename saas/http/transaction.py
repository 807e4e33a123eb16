"""One transaction per request: the view's services flush, this module commits.

A response below 400 commits (with the idempotency record, when there is one); anything else
rolls back, so an error never leaves half a write behind.

A database that fails mid-request (the connection cut, PostgreSQL restarted, a lock or
serialization timeout) is answered 503 `database_unavailable` with `Retry-After`, like a
failed commit: nothing of the request was kept, and its Idempotency-Key is released, so the
client can simply retry. The pool discards the broken connection; a pooled connection that
the server ended while it was idle is found out and replaced at checkout
(`pool_pre_ping`, or on PostgreSQL the cheaper check of saas.extensions).
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
    # the claim joins the authentication's transaction, whose tenant setting is already the
    # caller's, and commits with it (with last_used_at, if that was written); the view's
    # work then runs in a transaction of its own
    session = db.session()
    granted, response = idempotency.claim_on(session.connection(), request, claim, now=utcnow())
    session.commit()
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


def _database_unavailable(err: sa.exc.OperationalError) -> Response:
    log.warning(
        "database error during the request",
        extra={"fields": {"connection_invalidated": err.connection_invalidated}},
        exc_info=True,
    )
    return problem(
        503,
        "database_unavailable",
        "Service unavailable",
        "Try again shortly.",
        headers={"Retry-After": "1"},
    )


def init_app(app: Flask) -> None:
    app.before_request(_claim_idempotency_key)
    app.after_request(_commit_or_rollback)
    app.register_error_handler(sa.exc.OperationalError, _database_unavailable)
