"""The Stripe secret key and webhook secret take part in `abowerk secrets reencrypt`."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from billing.payments import runtime
from saas.app import create_app
from saas.extensions import db
from saas.kernel.secretbox import SecretBox, SecretBoxError
from tests.conftest import TenantCtx, make_environ

OLD_KEY = "test-secret-key-not-for-production"  # the suite's key (tests/conftest.py)


def test_stripe_secrets_move_to_the_new_key_when_secrets_are_reencrypted(
    app: Flask,
    client: FlaskClient,
    tenant: TenantCtx,
    database_url: str,
    tmp_path: Path,
    owner_engine: sa.Engine,
) -> None:
    key, hook_secret = "sk_test_rotate_me_1234", "whsec_rotate_me_5678"
    resp = client.put(
        "/v1/payment-settings",
        json={"stripe_secret_key": key, "stripe_webhook_secret": hook_secret},
        headers=tenant.headers,
    )
    assert resp.status_code == 200, resp.json
    before = runtime._runtime  # the rotated app configures the process's payment runtime
    rotated = create_app(
        {
            "ENVIRON": make_environ(
                database_url,
                tmp_path,
                ABOWERK_SECRET_KEY="a-brand-new-secret-key",
                ABOWERK_SECRET_KEY_PREVIOUS=OLD_KEY,
            )
        }
    )
    try:
        result = rotated.test_cli_runner().invoke(args=["secrets", "reencrypt"])
        assert result.exit_code == 0, result.output
    finally:
        runtime._runtime = before
        with rotated.app_context():
            db.engine.dispose()
    with owner_engine.connect() as conn:
        tokens = conn.execute(
            sa.text(
                "SELECT stripe_secret_key_encrypted, stripe_webhook_secret_encrypted "
                "FROM payment_settings"
            )
        ).one()
    new = SecretBox("a-brand-new-secret-key")
    assert (new.decrypt(tokens[0]), new.decrypt(tokens[1])) == (key, hook_secret)
    for token in tokens:
        with pytest.raises(SecretBoxError):
            SecretBox(OLD_KEY).decrypt(token)
