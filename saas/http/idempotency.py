"""`Idempotency-Key` on every POST (and PATCH) under /v1.

Same key + same request → the stored response is replayed (`Idempotent-Replayed: true`);
same key + different request → 422 `idempotency_key_reused`; the first request still
running → 409 `idempotency_request_in_progress`. Keys are kept 24 hours.

Two phases. (1) Before the view, the key is claimed in a short transaction of its own, so a
concurrent duplicate sees the claim at once and gets 409 instead of waiting. (2) The stored
response is written in the request's own transaction, together with the view's changes: the
business write and the key's completion commit or roll back as one. A request that dies
between the phases leaves a claim whose lease (`locked_until`) expires, after which a retry
takes it over; that retry finds none of the dead request's writes, because they never
committed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Request, Response
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from saas.http.models import IdempotencyKey
from saas.http.problems import problem
from saas.kernel.db import table_of
from saas.kernel.direct import DirectWrite
from saas.kernel.ids import new_id

RETENTION = timedelta(hours=24)
LEASE = timedelta(seconds=60)
METHODS = frozenset({"POST", "PATCH"})
_table = table_of(IdempotencyKey)
_REPLAYED_HEADERS = ("Content-Type", "Location")


@dataclass(frozen=True)
class Claim:
    tenant_id: str
    livemode: bool
    key: str


def request_fingerprint(req: Request) -> str:
    body = req.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    h = hashlib.sha256()
    for part in (req.method.encode(), req.full_path.encode(), canonical):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _set_pg_tenant(conn: sa.Connection, tenant_id: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "SELECT set_config('abowerk.tenant_id', %(t)s, true)", {"t": tenant_id}
        )


def _where(claim: Claim) -> Any:
    return sa.and_(
        _table.c.tenant_id == claim.tenant_id,
        _table.c.livemode == claim.livemode,
        _table.c.key == claim.key,
    )


# The statements of every keyed request, built once: constructing them cost more CPU than
# executing them (their compiled form is cached either way). The values come with the
# execution, named after their columns; the claim's key is bound under names of its own.
# the claim and the stored answer of every POST with a key: through the driver
# (saas.kernel.direct)
_INSERTS = {
    "postgresql": DirectWrite(
        pg_insert(_table)
        .on_conflict_do_nothing(index_elements=["tenant_id", "livemode", "key"])
        .returning(_table.c.id)
    ),
    "sqlite": DirectWrite(
        sqlite_insert(_table)
        .on_conflict_do_nothing(index_elements=["tenant_id", "livemode", "key"])
        .returning(_table.c.id)
    ),
}
_UPDATE_CLAIMED = DirectWrite(
    _table.update().where(
        _table.c.tenant_id == sa.bindparam("claim_tenant_id"),
        _table.c.livemode == sa.bindparam("claim_livemode"),
        _table.c.key == sa.bindparam("claim_key"),
    )
)


def _claim_params(claim: Claim) -> dict[str, Any]:
    return {
        "claim_tenant_id": claim.tenant_id,
        "claim_livemode": claim.livemode,
        "claim_key": claim.key,
    }


def begin(
    engine: sa.Engine, req: Request, claim: Claim, *, now: datetime
) -> tuple[Claim | None, Response | None]:
    """Claim the key in a transaction of its own. Returns (claim, None) to go on, or
    (None, response) to answer at once."""
    with engine.begin() as conn:
        _set_pg_tenant(conn, claim.tenant_id)
        return claim_on(conn, req, claim, now=now)


def claim_on(  # noqa: PLR0911  (one return per outcome of the claim)
    conn: sa.Connection, req: Request, claim: Claim, *, now: datetime
) -> tuple[Claim | None, Response | None]:
    """Claim the key within the connection's transaction, whose tenant setting is already
    the claim's; the caller commits right after, so a concurrent duplicate sees the claim.

    `ON CONFLICT DO NOTHING` rather than catching the unique violation: on PostgreSQL an
    error would abort the whole transaction, and the request's transaction (which has just
    authenticated the caller) carries the claim to save a round trip and a pool checkout.
    """
    fingerprint = request_fingerprint(req)
    inserted = _INSERTS["sqlite" if conn.dialect.name == "sqlite" else "postgresql"].execute(
        conn,
        {
            "tenant_id": claim.tenant_id,
            "id": new_id("idk"),
            "livemode": claim.livemode,
            "key": claim.key,
            "request_method": req.method,
            "request_path": req.path[:500],
            "request_hash": fingerprint,
            "status": "in_progress",
            "locked_until": now + LEASE,
            "created_at": now,
            "expires_at": now + RETENTION,
        },
        returning=True,
    )
    if inserted.rows:
        return claim, None

    # the key exists (a concurrent insert of it has committed: ON CONFLICT waited for it)
    stmt = sa.select(_table).where(_where(claim))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:  # purged between our insert and this read; the client may retry
        return None, _in_progress()
    if row["expires_at"] <= now:
        # an expired key is a new key: reuse the row for this request
        conn.execute(
            _table.update()
            .where(_where(claim))
            .values(
                request_method=req.method,
                request_path=req.path[:500],
                request_hash=fingerprint,
                status="in_progress",
                locked_until=now + LEASE,
                response_status=None,
                response_headers=None,
                response_body=None,
                created_at=now,
                expires_at=now + RETENTION,
            )
        )
        return claim, None
    if row["request_hash"] != fingerprint:
        return None, problem(
            422,
            "idempotency_key_reused",
            "Idempotency key reused",
            "This Idempotency-Key was used with a different request; use a new key.",
        )
    if row["status"] == "completed":
        return None, _replay(row)
    if row["locked_until"] is not None and row["locked_until"] > now:
        return None, _in_progress()
    # the first request died without finishing: its writes never committed; take over
    conn.execute(_table.update().where(_where(claim)).values(locked_until=now + LEASE))
    return claim, None


def _in_progress() -> Response:
    return problem(
        409,
        "idempotency_request_in_progress",
        "Request in progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        headers={"Retry-After": "1"},
    )


def _replay(row: Any) -> Response:
    resp = Response(row["response_body"] or "", status=row["response_status"])
    for name, value in (row["response_headers"] or {}).items():
        resp.headers[name] = value
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _stored_values(response: Response) -> dict[str, Any]:
    headers = {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}
    return {
        "status": "completed",
        "locked_until": None,
        "response_status": response.status_code,
        "response_headers": headers,
        "response_body": response.get_data(as_text=True),
    }


def complete_in(session: Session, claim: Claim, response: Response) -> None:
    """Store the response inside the request's transaction (before its commit).

    A Core statement on the session's connection, with the tenant named in its WHERE: the
    ORM's bulk-update path (tenant scoping, session synchronisation) cost as much CPU as the
    rest of the commit, for a row the session never loaded."""
    _UPDATE_CLAIMED.execute(session, {**_stored_values(response), **_claim_params(claim)})


def complete_apart(engine: sa.Engine, claim: Claim, response: Response) -> None:
    """Store a 4xx answer after the request's transaction rolled back: the same request will
    fail the same way, so a retry gets the same answer without running again."""
    with engine.begin() as conn:
        _set_pg_tenant(conn, claim.tenant_id)
        _UPDATE_CLAIMED.execute(conn, {**_stored_values(response), **_claim_params(claim)})


def release(engine: sa.Engine, claim: Claim) -> None:
    """A 5xx is not an answer to keep: free the key so the client can retry."""
    with engine.begin() as conn:
        _set_pg_tenant(conn, claim.tenant_id)
        conn.execute(_table.delete().where(_where(claim)))


def purge_expired(engine: sa.Engine, *, now: datetime) -> int:
    """Delete expired keys, tenant by tenant (run by the worker).

    Per tenant rather than one global DELETE: on PostgreSQL the app role sees one tenant at a
    time through row-level security, and maintenance gets no back door around that.
    """
    from saas.tenants.models import Tenant

    with engine.connect() as conn:
        tenant_ids = conn.execute(sa.select(Tenant.__table__.c.id)).scalars().all()
    deleted = 0
    for tenant_id in tenant_ids:
        with engine.begin() as conn:
            _set_pg_tenant(conn, tenant_id)
            result = conn.execute(
                _table.delete().where(_table.c.tenant_id == tenant_id, _table.c.expires_at <= now)
            )
            deleted += result.rowcount or 0
    return deleted
