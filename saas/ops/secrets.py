"""Re-encrypt secrets at rest after the secret key was rotated.

Rotation: put the new key in ABOWERK_SECRET_KEY and the old one in
ABOWERK_SECRET_KEY_PREVIOUS, deploy, run `abowerk secrets reencrypt`, then drop the previous
key. Every registered column is read with either key and written back under the new one,
tenant by tenant (row-level security shows one tenant at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from saas.kernel.secretbox import SecretBox
from saas.kernel.tasks import tenant_session
from saas.tenants.models import Tenant

# (model, column names) holding SecretBox tokens; packages with secrets add theirs here.
Registered = tuple[type, tuple[str, ...]]
_REGISTRY: list[Callable[[], Registered]] = []


def register(provider: Callable[[], Registered]) -> None:
    _REGISTRY.append(provider)


def _webhook_secrets() -> Registered:
    from saas.webhooks.models import WebhookEndpoint

    return WebhookEndpoint, ("secret_encrypted", "previous_secret_encrypted")


register(_webhook_secrets)


def _payment_secrets() -> Registered:
    from billing.payments.models import PaymentSettings

    return PaymentSettings, ("stripe_secret_key_encrypted", "stripe_webhook_secret_encrypted")


register(_payment_secrets)


def _staff_totp_secrets() -> Registered:
    from saas.dashboard.models import StaffAccount

    return StaffAccount, ("totp_secret_encrypted",)


register(_staff_totp_secrets)


def reencrypt_all(engine: sa.Engine, box: SecretBox) -> int:
    with engine.connect() as conn:
        tenant_ids = list(conn.execute(sa.select(Tenant.id)).scalars())
    changed = 0
    for tenant_id in tenant_ids:
        with tenant_session(engine, tenant_id) as session:
            for provider in _REGISTRY:
                model, columns = provider()
                rows: list[Any] = list(session.scalars(sa.select(model)))
                for row in rows:
                    for column in columns:
                        token = getattr(row, column)
                        if token:
                            setattr(row, column, box.reencrypt(token))
                            changed += 1
            session.commit()
    return changed
