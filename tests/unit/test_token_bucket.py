from __future__ import annotations

import pytest

from processor.simulator.limits import TokenBucket
from tests.fakes import FakeTime


def test_a_full_bucket_admits_its_burst_then_says_how_long_to_wait() -> None:
    clock = FakeTime(100)
    bucket = TokenBucket(rate=10.0, burst=3.0, clock=clock)

    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.1)


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = FakeTime(100)
    bucket = TokenBucket(rate=10.0, burst=2.0, clock=clock)
    bucket.take()
    bucket.take()

    clock.now += 0.05
    assert bucket.take() == pytest.approx(0.05)

    clock.now += 10.0
    assert bucket.take() == 0.0
    assert bucket.take() == 0.0
    assert bucket.take() > 0.0


def test_admissions_over_a_long_run_match_the_rate() -> None:
    clock = FakeTime(100)
    bucket = TokenBucket(rate=200.0, burst=20.0, clock=clock)
    admitted = 0

    for _ in range(60_000):  # 60 s in 1 ms steps, two attempts per step
        clock.now += 0.001
        admitted += sum(1 for _ in range(2) if bucket.take() == 0.0)

    assert 200 * 60 <= admitted <= 200 * 60 + 20
