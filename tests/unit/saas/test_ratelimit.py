"""The in-memory fixed windows behind the rate limits (the embedded default and the fallback
when Redis is unreachable): counts per key, a new window once the old one has passed, and a
check of several limits that stops at the first one over its budget."""

from __future__ import annotations

import pytest

from saas.http import ratelimit
from saas.http.ratelimit import Hit, MemoryCounters

SECOND = Hit("LIMITER/cred:a/global/2/1/second", 1, 2)
MINUTE = Hit("LIMITER/cred:a/global/5/1/minute", 60, 5)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    return now


def test_counts_within_a_window_and_reports_when_it_resets(clock: list[float]) -> None:
    counters = MemoryCounters()
    assert counters.incr_many([MINUTE], stop_at_breach=True) == [(1, 1_060.0)]
    clock[0] += 30
    assert counters.incr_many([MINUTE], stop_at_breach=True) == [(2, 1_060.0)]


def test_a_new_window_starts_when_the_old_one_has_passed(clock: list[float]) -> None:
    counters = MemoryCounters()
    counters.incr_many([SECOND], stop_at_breach=True)
    counters.incr_many([SECOND], stop_at_breach=True)
    clock[0] += 1
    assert counters.incr_many([SECOND], stop_at_breach=True) == [(1, 1_002.0)]


def test_a_breach_stops_the_count_of_the_longer_windows(clock: list[float]) -> None:
    counters = MemoryCounters()
    answers = [counters.incr_many([SECOND, MINUTE], stop_at_breach=True) for _ in range(3)]
    assert [len(a) for a in answers] == [2, 2, 1]  # the third stopped at the second's breach
    assert answers[2] == [(3, 1_001.0)]
    assert counters.incr_many([MINUTE], stop_at_breach=True)[0][0] == 3  # 2 counted, not 3


def test_other_keys_have_their_own_windows(clock: list[float]) -> None:
    counters = MemoryCounters()
    counters.incr_many([SECOND], stop_at_breach=True)
    other = Hit("LIMITER/cred:b/global/2/1/second", 1, 2)
    assert counters.incr_many([other], stop_at_breach=True) == [(1, 1_001.0)]


def test_expired_windows_are_swept(clock: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MemoryCounters, "SWEEP_EVERY", 2)
    counters = MemoryCounters()
    counters.incr_many([SECOND], stop_at_breach=True)
    clock[0] += 5
    counters.incr_many([MINUTE], stop_at_breach=True)  # the second call sweeps
    assert list(counters._windows) == [MINUTE.key]
