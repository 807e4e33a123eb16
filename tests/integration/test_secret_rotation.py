"""Rotating the secret key: secrets at rest stay readable, then move to the new key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from saas.app import create_app
from saas.extensions import db
from saas.kernel.secretbox import SecretBox, SecretBoxError
from tests.conftest import TenantCtx, make_environ


def test_reencrypt_moves_secrets_to_new_key_when_key_was_rotated(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    database_url: str,
    tmp_path: Path,
    owner_engine: sa.Engine,
) -> None:
    old_key = "test-secret-key-not-for-production"  # the suite's key (tests/conftest.py)
    created = client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "enabled_events": ["customer.*"]},
        headers=tenant.headers,
    ).json
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
        assert "re-encrypted 1 secret" in result.output
    finally:
        with rotated.app_context():
            db.engine.dispose()
    with owner_engine.connect() as conn:
        token = conn.execute(sa.text("SELECT secret_encrypted FROM webhook_endpoints")).scalar_one()
    assert SecretBox("a-brand-new-secret-key").decrypt(token) == created["secret"]
    with pytest.raises(SecretBoxError):
        SecretBox(old_key).decrypt(token)
