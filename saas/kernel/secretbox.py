"""Secrets at rest (webhook signing secrets, later Stripe keys and TOTP seeds).

Encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the application's
secret key by HKDF, so one configured secret protects them all. Rotation: set the new key as
ABOWERK_SECRET_KEY and the old one in ABOWERK_SECRET_KEY_PREVIOUS; everything still decrypts,
and `reencrypt` moves a value to the new key.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBoxError(RuntimeError):
    pass


def _fernet(secret_key: str) -> Fernet:
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"abowerk secrets at rest v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


class SecretBox:
    def __init__(self, secret_key: str, previous_keys: tuple[str, ...] = ()) -> None:
        self._box = MultiFernet([_fernet(k) for k in (secret_key, *previous_keys) if k])

    def encrypt(self, plaintext: str) -> str:
        return self._box.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._box.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretBoxError("secret cannot be decrypted with the configured keys") from exc

    def reencrypt(self, token: str) -> str:
        return self._box.rotate(token.encode()).decode()
