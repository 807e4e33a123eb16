"""Secrets at rest, across every table: stored only as a hash or encrypted, and every encrypted
column is re-encrypted by `abowerk secrets reencrypt` after a key rotation.

A schema-wide guard rather than one test per feature: a package that adds a column for a
secret (a payment provider's key, a TOTP seed, a session token) is checked the moment its
model exists. Encryption and rotation themselves are proven in
tests/integration/test_secret_rotation.py and tests/api/test_webhooks.py.
"""

from __future__ import annotations

import re

from saas import models as _models  # noqa: F401  (every table registered)
from saas.kernel.db import Base
from saas.ops import secrets as rotation

SECRET_NAME = re.compile(r"secret|token|totp|password|passphrase|private_key", re.IGNORECASE)
PROTECTED = ("_hash", "_encrypted")
# columns whose names mention a secret but hold none: when a secret expires, a TOTP step
NOT_SECRETS = {
    ("webhook_endpoints", "previous_secret_expires_at"),
    ("staff_accounts", "totp_last_step"),
}


def _columns() -> list[tuple[str, str]]:
    return [(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns]


def test_secret_columns_hold_only_hashes_or_ciphertext_when_the_schema_is_built() -> None:
    suspicious = [
        (table, column)
        for table, column in _columns()
        if SECRET_NAME.search(column)
        and not column.endswith(PROTECTED)
        and (table, column) not in NOT_SECRETS
    ]
    assert suspicious == [], "store secrets as a hash or with saas.kernel.secretbox"


def test_every_encrypted_column_is_reencrypted_when_the_secret_key_is_rotated() -> None:
    registered = set()
    for provider in rotation._REGISTRY:  # the registry itself is under test
        model, columns = provider()
        registered |= {(model.__tablename__, c) for c in columns}  # type: ignore[attr-defined]
    encrypted = {(t, c) for t, c in _columns() if c.endswith("_encrypted")}
    assert encrypted, "no encrypted column found: the scan would prove nothing"
    assert encrypted - registered == set(), "register it in saas.ops.secrets"
