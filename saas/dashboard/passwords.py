"""Password hashing with scrypt (RFC 7914) from the standard library.

Parameters: N=2**15, r=8, p=1 (OWASP's minimum for scrypt), 16-byte random salt, 32-byte key;
they are stored in the hash string, so raising them later does not lock anybody out.
`needs_rehash` tells the login to upgrade an old hash. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**15, 8, 1
KEY_BYTES = 32
MIN_LENGTH = 12
_MAXMEM = 64 * 1024 * 1024  # 128 * N * r is 32 MiB: allow it with room to spare


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=_MAXMEM
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, N, R, P)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = _derive(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(derived, _unb64(key))


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${N}${R}${P}$")


# verifying against this when the account does not exist keeps the response time the same,
# so timing does not tell an attacker which e-mail addresses have accounts
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
