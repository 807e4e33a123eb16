"""Public identifiers: a type prefix plus a ULID-like, time-ordered random part.

Time order lets cursor pagination walk the primary key index (newest first) without an extra
created_at sort, and the prefix tells a support engineer what an id is (`cus_`, `ten_`, ...).
"""

from __future__ import annotations

import base64
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
# RFC 4648 base32 digit i -> Crockford digit i: the standard encoder (C code) does the bit
# work, which matters when a billing run makes five ids per invoice
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode("ascii"))
_last: tuple[int, str] = (-1, "")


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _time_part(millis: int) -> str:
    # ids made within the same millisecond share it: encode it once (one tuple, replaced
    # whole, so a thread never pairs one millisecond with another's digits)
    global _last  # noqa: PLW0603 - a one-entry cache
    last = _last
    if last[0] != millis:
        last = (millis, _b32(millis, 10))
        _last = last
    return last[1]


def new_id(prefix: str) -> str:
    """`prefix_` + 10 chars of milliseconds + 16 chars of randomness (80 bits)."""
    millis = time.time_ns() // 1_000_000
    # 10 random bytes are exactly 16 base32 digits, most significant first, as _b32 writes
    rand = base64.b32encode(os.urandom(10)).translate(_TO_CROCKFORD).decode("ascii")
    return f"{prefix}_{_time_part(millis)}{rand}"
