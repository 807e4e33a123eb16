"""OAuth 2.0 client-credentials grant (RFC 6749 §4.4) with Authlib's authorization server.

Access tokens are JWTs (RFC 9068 profile: `iss`, `aud`, `sub`, `client_id`, `scope`, `jti`)
signed with HS256 by joserfc. Only abowerk itself validates them, so a symmetric key derived
from the secret key is enough; each request re-checks signature, expiry and that the client
still exists and is not revoked, so revoking a client cuts its tokens off at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from flask import Flask, current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy.orm import Session

from saas.auth import scopes as scope_rules
from saas.auth.models import OAuthClient
from saas.auth.services import (
    Principal,
    check_oauth_secret,
    check_tenant_active,
    find_oauth_client,
)
from saas.kernel import tenancy
from saas.kernel.errors import UnauthenticatedError

ISSUER = "abowerk"
AUDIENCE = "abowerk-api"


def _covered(granted: list[str], scope: str) -> bool:
    resource, _, action = scope.partition(":")
    return scope_rules.allows(granted, resource, action)


def _signing_key(secret_key: str) -> OctKey:
    derived = hmac.new(secret_key.encode(), b"abowerk oauth access tokens v1", hashlib.sha256)
    return OctKey.import_key(derived.digest())


@dataclass
class ClientAdapter(ClientMixin):
    row: OAuthClient

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(sorted(self.row.scopes))
        return " ".join(s for s in scope.split() if _covered(self.row.scopes, s))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return check_oauth_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        requested = (self.request.payload.scope or "").split()
        client = self.request.client
        if any(not _covered(client.row.scopes, s) for s in requested):
            # RFC 6749 §5.2: asking for more than the client holds is an error, not a
            # silently empty token
            raise InvalidScopeError()


def _query_client(client_id: str) -> ClientAdapter | None:
    from saas.extensions import session

    row = find_oauth_client(session(), client_id)
    if row is None or row.revoked_at is not None:
        return None
    return ClientAdapter(row)


def _save_token(token: dict[str, Any], request: Any) -> None:
    """Tokens are self-contained JWTs; nothing to store (issuance is logged instead)."""


def _generate_token(  # noqa: PLR0917  (the signature Authlib calls)
    grant_type: str,
    client: ClientAdapter,
    user: Any = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = False,
) -> dict[str, Any]:
    settings = current_app.config["ABOWERK_SETTINGS"]
    ttl = settings.oauth_token_ttl
    # no requested scope means all the client may have; a requested one is cut to what it may
    scope = client.get_allowed_scope(scope)
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client.row.client_id,
        "client_id": client.row.client_id,
        "tid": client.row.tenant_id,
        "livemode": client.row.livemode,
        "scope": scope or "",
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_hex(16),
    }
    token = jwt.encode({"alg": "HS256", "typ": "at+jwt"}, claims, _signing_key(settings.secret_key))
    return {"token_type": "Bearer", "access_token": token, "expires_in": ttl, "scope": scope or ""}


def authenticate_access_token(
    session: Session, token: str, *, secret_key: str, now_ts: int
) -> Principal:
    try:
        decoded = jwt.decode(token, _signing_key(secret_key), algorithms=["HS256"])
        jwt.JWTClaimsRegistry(
            now=now_ts,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            tid={"essential": True},
            client_id={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise UnauthenticatedError(
            "the access token is not valid or has expired", code="invalid_access_token"
        ) from exc
    claims = decoded.claims
    tenancy.set_tenant(session, claims["tid"])
    row = find_oauth_client(session, claims["client_id"])
    if row is None or row.revoked_at is not None or row.tenant_id != claims["tid"]:
        raise UnauthenticatedError("the OAuth client has been revoked", code="oauth_client_revoked")
    check_tenant_active(session, row.tenant_id)  # a suspended tenant's tokens stop at once
    # a client whose scopes were narrowed after issuance gets the narrower set at once
    granted = [s for s in str(claims.get("scope", "")).split() if _covered(row.scopes, s)]
    return Principal(row.tenant_id, row.livemode, tuple(granted), "oauth_client", row.id)


def init_app(app: Flask) -> AuthorizationServer:
    server = AuthorizationServer()
    server.init_app(app, query_client=_query_client, save_token=_save_token)
    server.register_token_generator("default", _generate_token)
    server.register_grant(ClientCredentialsGrant)
    app.extensions["abowerk_oauth"] = server
    return server
