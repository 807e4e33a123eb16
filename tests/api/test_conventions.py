from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from saas.app import create_app
from saas.extensions import db
from tests.conftest import IN_CI, TenantCtx, make_environ


def test_openapi_document_describes_customers_and_bearer_auth_when_fetched(
    client: FlaskClient,
) -> None:
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert "/v1/customers" in spec["paths"]
    assert "/v1/customers/{customer_id}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    post = spec["paths"]["/v1/customers"]["post"]
    assert "application/problem+json" in post["responses"]["422"]["content"]


def test_interactive_docs_page_and_its_assets_are_served_locally_when_opened(
    client: FlaskClient,
) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/docs/assets/swagger-ui-bundle.js" in html
    with client.get("/docs/assets/swagger-ui-bundle.js") as asset:  # closes the file response
        assert asset.status_code == 200
        assert len(asset.get_data()) > 100_000


def test_unknown_route_and_wrong_method_are_problems_when_requested(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    missing = client.get("/v1/nothing-here", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.json["code"] == "route_not_found"
    wrong = client.delete("/v1/customers", headers=tenant.headers)
    assert wrong.status_code == 405
    assert wrong.json["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


REDIS_URL = os.environ.get("ABOWERK_TEST_REDIS_URL", "")
LIMIT_STORAGES = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(
            not REDIS_URL and not IN_CI, reason="set ABOWERK_TEST_REDIS_URL to test Redis"
        ),
    ),
]


@pytest.mark.parametrize("storage", LIMIT_STORAGES)
def test_rate_limit_answers_429_with_retry_after_when_exceeded(
    database_url: str, tmp_path: Path, app: Flask, make_tenant: Any, storage: str
) -> None:
    tenant = make_tenant("Eilig GmbH")
    extra = {"ABOWERK_RATE_LIMIT": "3 per minute"}
    if storage == "redis":
        assert REDIS_URL, "CI must export ABOWERK_TEST_REDIS_URL"
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()  # a dedicated test database number
        extra["ABOWERK_REDIS_URL"] = REDIS_URL
    limited = create_app({"ENVIRON": make_environ(database_url, tmp_path, **extra)})
    try:
        _check_rate_limit(limited, tenant, make_tenant)
    finally:
        with limited.app_context():
            db.engine.dispose()


def _check_rate_limit(limited: Flask, tenant: TenantCtx, make_tenant: Any) -> None:
    client = limited.test_client()
    statuses = [client.get("/v1/customers", headers=tenant.headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    resp = client.get("/v1/customers", headers=tenant.headers)
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0
    # another credential has its own budget
    other = make_tenant("Geduldig GmbH")
    assert client.get("/v1/customers", headers=other.headers).status_code == 200
    assert client.get("/healthz").status_code == 200
