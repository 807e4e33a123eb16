from __future__ import annotations

import time

from saas.kernel.ids import new_id


def test_ids_sort_by_creation_time_when_created_apart() -> None:
    first = new_id("cus")
    time.sleep(0.002)
    second = new_id("cus")
    assert first < second
    assert first.startswith("cus_") and len(first) == 4 + 26


def test_ids_are_unique_when_created_in_the_same_millisecond() -> None:
    ids = {new_id("x") for _ in range(10_000)}
    assert len(ids) == 10_000
