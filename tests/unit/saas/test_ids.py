from __future__ import annotations

import base64
import time

import pytest

from saas.kernel.ids import _ALPHABET, _TO_CROCKFORD, _b32, new_id


def test_ids_sort_by_creation_time_when_created_apart() -> None:
    first = new_id("cus")
    time.sleep(0.002)
    second = new_id("cus")
    assert first < second
    assert first.startswith("cus_") and len(first) == 4 + 26


def test_ids_are_unique_when_created_in_the_same_millisecond() -> None:
    ids = {new_id("x") for _ in range(10_000)}
    assert len(ids) == 10_000


@pytest.mark.parametrize("raw", [bytes(10), b"\xff" * 10, bytes(range(10)), b"\x80" + bytes(9)])
def test_random_part_is_the_crockford_digits_of_the_bytes_when_encoded_by_the_c_encoder(
    raw: bytes,
) -> None:
    # new_id encodes its 80 random bits with base64's encoder and a digit translation: it
    # must give the digits of the number, most significant first, in Crockford's alphabet
    fast = base64.b32encode(raw).translate(_TO_CROCKFORD).decode("ascii")
    assert fast == _b32(int.from_bytes(raw, "big"), 16)
    assert set(fast) <= set(_ALPHABET)


def test_ids_use_only_crockford_digits_after_the_prefix() -> None:
    for _ in range(1_000):
        assert set(new_id("in")[3:]) <= set(_ALPHABET)
