from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import CUSTOMER, TenantCtx


def test_api_responses_carry_security_headers_when_served(
    client: FlaskClient, tenant: TenantCtx
) -> None:
    resp = client.get("/v1/customers", headers=tenant.headers)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP: never pin


def test_hsts_is_sent_when_request_came_over_tls(client: FlaskClient) -> None:
    resp = client.get("/healthz", base_url="https://abowerk.example")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_docs_page_gets_a_policy_that_allows_only_own_assets_when_rendered(
    client: FlaskClient,
) -> None:
    csp = client.get("/docs").headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp


def test_logs_hold_no_personal_data_when_customers_are_created_and_refused(
    client: FlaskClient, tenant: TenantCtx, caplog: pytest.LogCaptureFixture
) -> None:
    email = "geheim.person@example.de"
    name = "Gudrun Geheimnis"
    with caplog.at_level(logging.DEBUG):
        body: dict[str, Any] = CUSTOMER | {"email": email, "name": name}
        created = client.post("/v1/customers", json=body, headers=tenant.headers).json
        client.patch(
            f"/v1/customers/{created['id']}", json={"vat_id": "DE1"}, headers=tenant.headers
        )
        client.post("/v1/customers", json=body | {"email": "kaputt"}, headers=tenant.headers)
        client.get(f"/v1/customers?email={email}", headers=tenant.headers)
    text = "\n".join(r.getMessage() + " " + str(getattr(r, "fields", "")) for r in caplog.records)
    assert caplog.records, "nothing was logged: the scan would prove nothing"
    for secret in (email, name, "Hauptstr"):
        assert secret not in text
