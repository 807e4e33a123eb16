from __future__ import annotations

import json

from flask import Flask


def test_tenants_create_prints_tenant_and_working_key_when_json_requested(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["tenants", "create", "--name", "CLI GmbH", "--country", "AT", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["tenant_id"].startswith("ten_")
    assert out["api_key"].startswith("sk_test_")
    resp = app.test_client().get(
        "/v1/customers", headers={"Authorization": f"Bearer {out['api_key']}"}
    )
    assert resp.status_code == 200


def test_tenants_create_fails_clearly_when_country_is_invalid(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["tenants", "create", "--name", "X", "--country", "XX"]
    )
    assert result.exit_code != 0
    assert "validation_failed" in result.output


def test_keys_create_and_revoke_change_access_when_run(app: Flask) -> None:
    runner = app.test_cli_runner()
    tenant = json.loads(
        runner.invoke(args=["tenants", "create", "--name", "K GmbH", "--json"]).output
    )
    created = runner.invoke(
        args=[
            "keys",
            "create",
            "--tenant",
            tenant["tenant_id"],
            "--scope",
            "customers:read",
            "--json",
        ]
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert key["scopes"] == ["customers:read"]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    assert client.get("/v1/customers", headers=headers).status_code == 200
    revoked = runner.invoke(
        args=["keys", "revoke", "--tenant", tenant["tenant_id"], key["api_key_id"]]
    )
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/v1/customers", headers=headers).status_code == 401
    listed = runner.invoke(args=["keys", "list", "--tenant", tenant["tenant_id"]])
    assert key["api_key"] not in listed.output
    assert key["api_key"][-4:] in listed.output


def test_demo_creates_tenant_once_when_run_twice(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert "API key (shown once): sk_test_" in first.output
    assert "exists" in second.output
    assert "sk_test_" not in second.output


def test_oauth_clients_create_prints_credentials_when_run(app: Flask) -> None:
    runner = app.test_cli_runner()
    tenant = json.loads(
        runner.invoke(args=["tenants", "create", "--name", "O GmbH", "--json"]).output
    )
    result = runner.invoke(
        args=["oauth-clients", "create", "--tenant", tenant["tenant_id"], "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["client_id"].startswith("ci_") and out["client_secret"].startswith("cs_")
