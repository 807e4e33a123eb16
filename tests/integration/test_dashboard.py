"""The tenant dashboard: staff accounts from the CLI, sign-in with password and TOTP,
throttling, roles, CSRF, tenant isolation and the live/test switch."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.app import create_app
from saas.dashboard import passwords, totp
from saas.extensions import db
from saas.kernel.secretbox import SecretBox
from tests.api.test_invoices import finalize, make_draft
from tests.conftest import CUSTOMER, TenantCtx, make_environ

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
PASSWORD = "correct horse battery staple"


@dataclass
class Staff:
    workspace: str
    email: str
    password: str
    secret: str
    staff_id: str


def workspace_of(app: Flask, owner_engine: sa.Engine, tenant_id: str) -> str:
    with owner_engine.connect() as conn:
        return str(
            conn.execute(
                sa.text("SELECT slug FROM tenants WHERE id = :t"), {"t": tenant_id}
            ).scalar_one()
        )


def make_staff(
    app: Flask, owner_engine: sa.Engine, t: TenantCtx, role: str = "owner", email: str = ""
) -> Staff:
    """Through the operator command, as an operator would."""
    email = email or f"{role}@muster.example"
    result = app.test_cli_runner().invoke(
        args=["staff", "create", "--tenant", t.tenant_id, "--email", email, "--role", role,
              "--password-stdin", "--json"],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    out = json.loads(result.output)
    uri = urlsplit(out["totp_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    secret = parse_qs(uri.query)["secret"][0]
    return Staff(out["workspace"], email, PASSWORD, secret, out["staff_id"])


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


def password_step(client: FlaskClient, staff: Staff, password: str | None = None) -> Any:
    csrf = csrf_of(client.get("/dashboard/login").get_data(as_text=True))
    return client.post(
        "/dashboard/login",
        data={
            "csrf_token": csrf,
            "workspace": staff.workspace,
            "email": staff.email.upper(),  # e-mail addresses are matched case-insensitively
            "password": password if password is not None else staff.password,
        },
    )


def code_step(client: FlaskClient, code: str) -> Any:
    csrf = csrf_of(client.get("/dashboard/login/code").get_data(as_text=True))
    return client.post("/dashboard/login/code", data={"csrf_token": csrf, "code": code})


def sign_in(client: FlaskClient, staff: Staff) -> str:
    """Signs in; returns the CSRF token of the session."""
    resp = password_step(client, staff)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert resp.headers["Location"].endswith("/dashboard/login/code")
    resp = code_step(client, totp.code_at(staff.secret, time.time()))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = client.get("/dashboard/")
    assert page.status_code == 200, page.get_data(as_text=True)
    return csrf_of(page.get_data(as_text=True))


# --- accounts -----------------------------------------------------------------------------


def test_staff_account_stores_a_scrypt_hash_and_an_encrypted_totp_secret_when_created(
    app: Flask, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    with owner_engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT password_hash, totp_secret_encrypted FROM staff_accounts")
        ).one()
    assert row.password_hash.startswith("scrypt$") and PASSWORD not in row.password_hash
    assert passwords.verify_password(PASSWORD, row.password_hash)
    assert staff.secret not in row.totp_secret_encrypted
    box = SecretBox("test-secret-key-not-for-production")
    assert box.decrypt(row.totp_secret_encrypted) == staff.secret


def test_short_password_is_refused_when_creating_staff(app: Flask, tenant: TenantCtx) -> None:
    result = app.test_cli_runner().invoke(
        args=["staff", "create", "--tenant", tenant.tenant_id, "--email", "a@b.example",
              "--password-stdin"],
        input="short\n",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output


def test_totp_secret_moves_to_the_new_key_when_secrets_are_reencrypted(
    app: Flask,
    tenant: TenantCtx,
    database_url: str,
    tmp_path: Path,
    owner_engine: sa.Engine,
) -> None:
    old_key = "test-secret-key-not-for-production"
    staff = make_staff(app, owner_engine, tenant)
    rotated = create_app(
        {
            "ENVIRON": make_environ(
                database_url,
                tmp_path,
                ABOWERK_SECRET_KEY="a-brand-new-secret-key",
                ABOWERK_SECRET_KEY_PREVIOUS=old_key,
            )
        }
    )
    try:
        result = rotated.test_cli_runner().invoke(args=["secrets", "reencrypt"])
        assert result.exit_code == 0, result.output
    finally:
        with rotated.app_context():
            db.engine.dispose()
    with owner_engine.connect() as conn:
        token = conn.execute(
            sa.text("SELECT totp_secret_encrypted FROM staff_accounts")
        ).scalar_one()
    assert SecretBox("a-brand-new-secret-key").decrypt(token) == staff.secret


# --- sign-in ------------------------------------------------------------------------------


def test_staff_signs_in_with_password_and_totp_when_both_are_right(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    assert client.get("/dashboard/").status_code == 401
    sign_in(client, staff)
    page = client.get("/dashboard/")
    html = page.get_data(as_text=True)
    assert "Monthly recurring revenue" in html and staff.email in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    chart = client.get("/dashboard/charts/mrr.svg")
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert chart.data.lstrip().startswith(b"<?xml")


def test_password_alone_is_not_a_session_when_the_code_step_is_skipped(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    assert password_step(client, staff).status_code == 303
    assert client.get("/dashboard/").status_code == 401


@pytest.mark.parametrize("field", ["workspace", "email", "password"])
def test_sign_in_fails_alike_when_any_first_factor_is_wrong(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine, field: str
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    wrong = Staff(**{**staff.__dict__, field: "wrong-" + getattr(staff, field)})
    resp = password_step(client, wrong)
    assert resp.status_code == 401
    assert "workspace, e-mail address or password is wrong" in resp.get_data(as_text=True)


def test_wrong_and_reused_codes_are_refused_when_signing_in(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    now = time.time()
    password_step(client, staff)
    right = totp.code_at(staff.secret, now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert code_step(client, wrong).status_code == 401
    assert code_step(client, right).status_code == 303
    other = client.application.test_client()
    password_step(other, staff)
    assert code_step(other, right).status_code == 401  # each code works once


def test_account_locks_after_repeated_failures_when_guessing(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    for _ in range(5):
        assert password_step(client, staff, password="not the password").status_code == 401
    locked = password_step(client, staff)  # the right password does not help now
    assert locked.status_code == 401
    assert "locked" in locked.get_data(as_text=True)
    with owner_engine.connect() as conn:
        row = conn.execute(sa.text("SELECT failed_logins, locked_until FROM staff_accounts")).one()
    assert row.failed_logins == 5 and row.locked_until is not None


def test_login_form_without_csrf_token_is_rejected_when_posted(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    client.get("/dashboard/login")
    resp = client.post(
        "/dashboard/login",
        data={"workspace": staff.workspace, "email": staff.email, "password": staff.password},
    )
    assert resp.status_code == 400


def test_session_ends_when_signed_out(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    staff = make_staff(app, owner_engine, tenant)
    csrf = sign_in(client, staff)
    assert client.post("/dashboard/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/dashboard/").status_code == 401


# --- roles, CSRF, isolation ---------------------------------------------------------------


def _verified_gdpr_request(client: FlaskClient, t: TenantCtx, kind: str = "access") -> str:
    customer = client.post("/v1/customers", json=CUSTOMER, headers=t.headers).json["id"]
    req = client.post(
        "/v1/gdpr/requests", json={"customer_id": customer, "kind": kind}, headers=t.headers
    ).json
    resp = client.post(
        f"/v1/gdpr/requests/{req['id']}/verify_identity",
        json={"method": "tenant_attestation", "note": "ID card seen"},
        headers=t.headers,
    )
    assert resp.status_code == 200, resp.json
    return str(req["id"])


def _test_mode(client: FlaskClient, csrf: str) -> None:
    # the suite's API keys are test-mode keys: show test data
    resp = client.post("/dashboard/mode", data={"csrf_token": csrf, "livemode": "0"})
    assert resp.status_code == 303


def test_read_only_staff_sees_but_cannot_change_when_acting(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    request_id = _verified_gdpr_request(client, tenant)
    staff = make_staff(app, owner_engine, tenant, role="read_only")
    csrf = sign_in(client, staff)
    _test_mode(client, csrf)
    page = client.get(f"/dashboard/gdpr/{request_id}").get_data(as_text=True)
    assert "in progress" in page and "Your role is read-only" in page
    resp = client.post(f"/dashboard/gdpr/{request_id}/fulfil", data={"csrf_token": csrf})
    assert resp.status_code == 403
    state = client.get(f"/v1/gdpr/requests/{request_id}", headers=tenant.headers).json["state"]
    assert state == "in_progress"
    keys = client.get("/v1/customers", headers=tenant.headers)
    assert keys.status_code == 200
    revoke = client.post(
        f"/dashboard/api_keys/{tenant.api_key_id}/revoke", data={"csrf_token": csrf}
    )
    assert revoke.status_code == 403


def test_admin_fulfils_a_gdpr_request_when_signed_in(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    request_id = _verified_gdpr_request(client, tenant)
    staff = make_staff(app, owner_engine, tenant, role="admin")
    csrf = sign_in(client, staff)
    _test_mode(client, csrf)
    listing = client.get("/dashboard/gdpr").get_data(as_text=True)
    assert request_id in listing and "days" in listing
    assert client.post(f"/dashboard/gdpr/{request_id}/fulfil").status_code == 400  # no CSRF
    resp = client.post(f"/dashboard/gdpr/{request_id}/fulfil", data={"csrf_token": csrf})
    assert resp.status_code == 303
    state = client.get(f"/v1/gdpr/requests/{request_id}", headers=tenant.headers).json["state"]
    assert state == "completed"


def test_another_tenants_objects_are_not_found_when_ids_are_put_in_urls(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    other_tenant: TenantCtx,
    owner_engine: sa.Engine,
) -> None:
    foreign_request = _verified_gdpr_request(client, other_tenant)
    foreign_invoice = finalize(client, other_tenant, make_draft(client, other_tenant)["id"])
    endpoint = client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "enabled_events": ["customer.*"]},
        headers=other_tenant.headers,
    ).json
    staff = make_staff(app, owner_engine, tenant, role="owner")
    csrf = sign_in(client, staff)
    _test_mode(client, csrf)
    assert client.get(f"/dashboard/gdpr/{foreign_request}").status_code == 404
    assert (
        client.post(
            f"/dashboard/gdpr/{foreign_request}/fulfil", data={"csrf_token": csrf}
        ).status_code
        == 404
    )
    assert client.get(f"/dashboard/invoices/{foreign_invoice['id']}.pdf").status_code == 404
    assert client.get(f"/dashboard/webhooks/{endpoint['id']}").status_code == 404
    assert (
        client.post(
            f"/dashboard/api_keys/{other_tenant.api_key_id}/revoke", data={"csrf_token": csrf}
        ).status_code
        == 404
    )
    for page in ("customers", "invoices", "gdpr", "webhooks", "api_keys"):
        html = client.get(f"/dashboard/{page}").get_data(as_text=True)
        assert other_tenant.api_key_id not in html
        assert foreign_invoice["number"] not in html or page != "invoices"
        assert "Nordlicht" not in html


def test_test_data_shows_only_after_the_switch_when_keys_are_test_mode(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    client.post("/v1/customers", json=CUSTOMER, headers=tenant.headers)
    staff = make_staff(app, owner_engine, tenant)
    csrf = sign_in(client, staff)
    assert CUSTOMER["name"] not in client.get("/dashboard/customers").get_data(as_text=True)
    _test_mode(client, csrf)
    assert CUSTOMER["name"] in client.get("/dashboard/customers").get_data(as_text=True)


def test_every_page_renders_when_signed_in(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    finalize(client, tenant, make_draft(client, tenant)["id"])
    endpoint = client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "enabled_events": ["customer.*"]},
        headers=tenant.headers,
    ).json
    staff = make_staff(app, owner_engine, tenant)
    csrf = sign_in(client, staff)
    _test_mode(client, csrf)
    for path in (
        "/dashboard/",
        "/dashboard/churn",
        "/dashboard/cohorts",
        "/dashboard/customers",
        "/dashboard/subscriptions",
        "/dashboard/invoices",
        "/dashboard/tax",
        "/dashboard/gdpr",
        "/dashboard/webhooks",
        f"/dashboard/webhooks/{endpoint['id']}",
        "/dashboard/api_keys",
        "/dashboard/staff",
        "/dashboard/charts/movements.svg",
    ):
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.get_data(as_text=True)[:500])


def test_oss_quarter_lists_supplies_per_member_state_when_seller_uses_oss(
    app: Flask, client: FlaskClient, tenant: TenantCtx, owner_engine: sa.Engine
) -> None:
    from decimal import Decimal

    from tests.api.test_seller_profile import put_profile

    # over the EUR 10,000 EU-wide limit last year: B2C supplies are taxed where the consumer
    # lives, and reported through the OSS
    put_profile(client, tenant, oss_registered=True, counters={"eu_b2c_previous_year": 2_000_000})
    invoice = finalize(client, tenant, make_draft(client, tenant, customer="fr_consumer")["id"])
    assert invoice["vat_amount"] > 0
    domestic = finalize(client, tenant, make_draft(client, tenant, customer="de_consumer")["id"])
    staff = make_staff(app, owner_engine, tenant)
    csrf = sign_in(client, staff)
    _test_mode(client, csrf)
    html = client.get("/dashboard/tax").get_data(as_text=True)
    row = re.search(r'<th scope="row">FR</th>(.*?)</tr>', html, re.S)
    assert row, html
    cells = row.group(1)
    assert "20.00 %" in cells
    for amount in (invoice["net_amount"], invoice["vat_amount"]):
        assert f"€{Decimal(amount).scaleb(-2):,.2f}" in cells
    assert '<th scope="row">DE</th>' not in html  # a domestic supply is not OSS
    thresholds = re.search(r'<table data-testid="thresholds">(.*?)</table>', html, re.S)
    assert thresholds and "eu b2c services" in thresholds.group(1)
    assert domestic["number"] not in html
