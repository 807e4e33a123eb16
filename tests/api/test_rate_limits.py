"""Rate limits beyond the basic 429: buckets per credential, failed-auth throttling, outages."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from saas.app import create_app
from saas.auth.services import create_oauth_client
from saas.extensions import db
from saas.kernel import tenancy
from saas.kernel.clock import utcnow
from tests.conftest import make_environ


@pytest.fixture
def limited_app(database_url: str, tmp_path: Path, app: Flask) -> Iterator[Any]:
    """Build an app with its own limits over the already migrated test database."""
    built: list[Flask] = []

    def build(**extra: str) -> Flask:
        made = create_app({"ENVIRON": make_environ(database_url, tmp_path, **extra)})
        built.append(made)
        return made

    yield build
    for made in built:
        with made.app_context():
            db.engine.dispose()


def test_failed_authentications_are_throttled_per_ip_when_guessing_keys(
    limited_app: Any,
) -> None:
    client = limited_app(ABOWERK_AUTH_FAILURE_LIMIT="3 per minute").test_client()
    guesses = [
        client.get("/v1/customers", headers={"Authorization": f"Bearer sk_test_guess{i}"})
        for i in range(4)
    ]
    assert [r.status_code for r in guesses] == [401, 401, 401, 429]
    assert guesses[0].headers["WWW-Authenticate"].startswith("Bearer")
    assert guesses[3].json["code"] == "rate_limited"
    assert int(guesses[3].headers["Retry-After"]) > 0


def test_fresh_oauth_tokens_share_the_clients_budget_when_limited(
    limited_app: Any, make_tenant: Any, app: Flask
) -> None:
    limited = limited_app(ABOWERK_RATE_LIMIT="3 per minute")
    tenant = make_tenant("Token GmbH")
    with limited.app_context():
        tenancy.set_tenant(db.session, tenant.tenant_id)
        oauth_client, secret = create_oauth_client(
            db.session, tenant_id=tenant.tenant_id, now=utcnow()
        )
        client_id = oauth_client.client_id
        db.session.commit()
        db.session.remove()
    http = limited.test_client()
    issuer = app.test_client()  # same database and secret, no tight limit on /oauth/token
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def token() -> str:
        resp = issuer.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        return str(resp.json["access_token"])

    statuses = []
    for _ in range(4):  # a new token for every call: still one bucket, the client's
        resp = http.get("/v1/customers", headers={"Authorization": f"Bearer {token()}"})
        statuses.append(resp.status_code)
    assert statuses == [200, 200, 200, 429]


def test_requests_are_served_when_the_limit_store_is_down(
    limited_app: Any, make_tenant: Any
) -> None:
    tenant = make_tenant("Ausfall GmbH")
    # nothing listens on port 1: every Redis call fails; the limiter falls back to memory
    client = limited_app(ABOWERK_REDIS_URL="redis://127.0.0.1:1/0").test_client()
    resp = client.get("/v1/customers", headers=tenant.headers)
    assert resp.status_code == 200


def test_retry_after_is_only_sent_when_limited(client: Any, tenant: Any) -> None:
    resp = client.get("/v1/customers", headers=tenant.headers)
    assert resp.status_code == 200
    assert "Retry-After" not in resp.headers


def test_budget_is_shared_across_routes_when_one_credential_calls_several(
    limited_app: Any, make_tenant: Any
) -> None:
    limited = limited_app(ABOWERK_RATE_LIMIT="3 per minute")
    tenant = make_tenant("Budget GmbH")
    client = limited.test_client()
    paths = ["/v1/customers", "/v1/products", "/v1/invoices", "/v1/customers"]
    codes = [client.get(p, headers=tenant.headers).status_code for p in paths]
    assert codes == [200, 200, 200, 429]
    # another credential has its own budget
    other = make_tenant("Other GmbH")
    assert client.get("/v1/products", headers=other.headers).status_code == 200
