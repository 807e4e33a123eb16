"""API keys and OAuth clients: create, revoke, authenticate.

Authentication looks a secret up before any tenant is known; that lookup is the one vetted
cross-tenant read, after which the session is scoped to the key's tenant. On PostgreSQL it is
one call of a `SECURITY DEFINER` function (migration 0012) that finds the credential by its
exact hash and sets the transaction's tenant in the same round trip; the app role itself
cannot read other tenants' credentials. SQLite has no row-level security: there the lookup is
an unscoped ORM query (`_lookup_unscoped`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from saas.auth import scopes as scope_rules
from saas.auth.models import ApiKey, OAuthClient
from saas.kernel import tenancy
from saas.kernel.db import UTCDateTime
from saas.kernel.direct import DirectSelect
from saas.kernel.errors import NotFoundError, UnauthenticatedError, ValidationFailedError
from saas.kernel.ids import new_id
from saas.tenants.models import Tenant

LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write on every request


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    livemode: bool
    scopes: tuple[str, ...]
    credential_type: str  # "api_key" | "oauth_client"
    credential_id: str

    def allows(self, resource: str, action: str) -> bool:
        return scope_rules.allows(self.scopes, resource, action)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_FIND_API_KEY = sa.text("SELECT * FROM abowerk_find_api_key(:secret_hash)").columns(
    sa.column("tenant_id", sa.String()),
    sa.column("id", sa.String()),
    sa.column("livemode", sa.Boolean()),
    sa.column("scopes", sa.JSON()),
    sa.column("revoked_at", UTCDateTime()),
    sa.column("expires_at", UTCDateTime()),
    sa.column("last_used_at", UTCDateTime()),
    sa.column("tenant_status", sa.String()),
)
_FIND_API_KEY_DIRECT = DirectSelect.unscoped(_FIND_API_KEY)
_FIND_OAUTH_CLIENT = sa.text("SELECT * FROM abowerk_find_oauth_client(:client_id)")


def _on_postgres(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "postgresql"


def _lookup_unscoped(session: Session, stmt: sa.Executable) -> sa.Row[Any] | None:
    """Find a credential across tenants (the row the statement selects); SQLite only, where
    no row-level security stands in the way. PostgreSQL goes through the functions above."""
    with tenancy.unscoped(session):
        return session.execute(stmt).first()


def _found_in_tenant(session: Session, row: Any | None) -> Any | None:
    """Scope the session to a credential's tenant; on PostgreSQL the lookup function has
    already written the tenant into this transaction's setting."""
    if row is not None:
        if _on_postgres(session):
            tenancy.note_tenant_set_by_database(session, row.tenant_id)
        tenancy.set_tenant(session, row.tenant_id)
    return row


def create_api_key(
    session: Session,
    *,
    tenant_id: str,
    now: datetime,
    livemode: bool = False,
    scopes: list[str] | None = None,
    name: str = "default",
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Returns the key row and the plaintext secret, which is shown once and never stored."""
    if expires_at is not None and expires_at <= now:
        raise ValidationFailedError("expires_at must be in the future", code="invalid_expiry")
    prefix = "sk_live_" if livemode else "sk_test_"
    secret = prefix + secrets.token_urlsafe(24)  # 192 bits
    key = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        name=name,
        livemode=livemode,
        prefix=prefix,
        last4=secret[-4:],
        secret_hash=hash_secret(secret),
        scopes=scope_rules.normalise(scopes or list(scope_rules.ALL_SCOPES)),
        expires_at=expires_at,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key, secret


def revoke_api_key(session: Session, *, key_id: str, now: datetime) -> ApiKey:
    key = session.scalars(sa.select(ApiKey).where(ApiKey.id == key_id)).first()
    if key is None:
        raise NotFoundError(f"no API key {key_id}", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = now
    session.flush()
    return key


def authenticate_api_key(session: Session, secret: str, *, now: datetime) -> Principal:
    """One query on the hot path: the key and its tenant's status together."""
    secret_hash = hash_secret(secret)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # through the driver (saas.kernel.direct): it runs on every request
        found = _FIND_API_KEY_DIRECT.first(session, {"secret_hash": secret_hash})
    else:
        found = _lookup_unscoped(
            session,
            sa.select(
                ApiKey.tenant_id,
                ApiKey.id,
                ApiKey.livemode,
                ApiKey.scopes,
                ApiKey.revoked_at,
                ApiKey.expires_at,
                ApiKey.last_used_at,
                Tenant.status.label("tenant_status"),
            )
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.secret_hash == secret_hash),
        )
    key = _found_in_tenant(session, found)
    if key is None:
        raise UnauthenticatedError("the API key is not valid", code="invalid_api_key")
    if key.revoked_at is not None:
        raise UnauthenticatedError("the API key has been revoked", code="api_key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise UnauthenticatedError("the API key has expired", code="api_key_expired")
    if key.tenant_status != "active":
        raise UnauthenticatedError("the account is not active", code="tenant_inactive")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        session.execute(
            sa.update(ApiKey)
            .where(ApiKey.id == key.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return Principal(key.tenant_id, key.livemode, tuple(key.scopes), "api_key", key.id)


def check_tenant_active(session: Session, tenant_id: str) -> None:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.status != "active":
        raise UnauthenticatedError("the account is not active", code="tenant_inactive")


def create_oauth_client(
    session: Session,
    *,
    tenant_id: str,
    now: datetime,
    livemode: bool = False,
    scopes: list[str] | None = None,
    name: str = "default",
) -> tuple[OAuthClient, str]:
    secret = "cs_" + secrets.token_urlsafe(32)
    client = OAuthClient(
        id=new_id("oac"),
        tenant_id=tenant_id,
        client_id="ci_" + secrets.token_hex(12),
        secret_hash=hash_secret(secret),
        name=name,
        livemode=livemode,
        scopes=scope_rules.normalise(scopes or list(scope_rules.ALL_SCOPES)),
        created_at=now,
    )
    session.add(client)
    session.flush()
    return client, secret


def find_oauth_client(session: Session, client_id: str) -> OAuthClient | None:
    if _on_postgres(session):
        row = session.execute(_FIND_OAUTH_CLIENT, {"client_id": client_id}).first()
    else:
        row = _lookup_unscoped(
            session,
            sa.select(OAuthClient.tenant_id, OAuthClient.id).where(
                OAuthClient.client_id == client_id
            ),
        )
    found = _found_in_tenant(session, row)
    if found is None:
        return None
    return session.get(OAuthClient, (found.tenant_id, found.id))


def check_oauth_secret(client: OAuthClient, secret: str) -> bool:
    return hmac.compare_digest(client.secret_hash, hash_secret(secret))


def revoke_oauth_client(session: Session, *, client_id: str, now: datetime) -> OAuthClient:
    client = session.scalars(
        sa.select(OAuthClient).where(OAuthClient.client_id == client_id)
    ).first()
    if client is None:
        raise NotFoundError(f"no OAuth client {client_id}", code="oauth_client_not_found")
    if client.revoked_at is None:
        client.revoked_at = now
    session.flush()
    return client
