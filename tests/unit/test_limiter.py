"""The adaptive in-flight limit: slow start, Little's law on 429, probing."""

from __future__ import annotations

from processor.limiter import AdaptiveLimit
from tests.fakes import FakeTime


def run(
    limit: AdaptiveLimit, clock: FakeTime, seconds: float, rate: float, latency: float
) -> None:
    """Successes at ``rate`` per second, each with the whole limit in flight."""
    steps = int(seconds * rate)
    for _ in range(steps):
        clock.now += 1.0 / rate
        limit.succeeded(latency, in_flight=limit.value)


def test_it_starts_small_and_grows_while_jobs_fill_it() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)
    start = limit.value

    run(limit, clock, 1.0, 200, 0.05)

    assert start == 2
    assert limit.value == 64


def test_it_does_not_grow_while_jobs_leave_it_unused() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)

    for _ in range(100):
        clock.now += 0.01
        limit.succeeded(0.05, in_flight=1)

    assert limit.value == 2


def test_a_429_settles_at_what_a_rate_limit_sustained() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)
    limit.value = 30
    limit._slow_start = False

    run(limit, clock, 2.0, 200, 0.05)  # the API sustained 200/s at 50 ms
    limit.throttled()

    assert 9 <= limit.value <= 11


def test_a_429_settles_at_a_concurrency_cap() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)
    limit.value = 20
    limit._slow_start = False

    run(limit, clock, 2.0, 16 / 0.05, 0.05)  # 16 at a time, 50 ms each
    limit.throttled()

    assert 15 <= limit.value <= 17


def test_one_episode_of_429s_lowers_the_limit_once() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)
    limit.value = 20
    run(limit, clock, 2.0, 200, 0.05)

    limit.throttled()
    after_first = limit.value
    for _ in range(10):
        limit.throttled()

    assert limit.value == after_first


def test_without_measurements_a_429_halves_the_limit_and_never_below_one() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)

    limit.value = 8
    limit.throttled()
    assert limit.value == 4
    for _ in range(5):
        clock.now += 10
        limit.throttled()
    assert limit.value == 1


def test_it_probes_higher_after_a_quiet_interval_and_never_past_the_ceiling() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(12, probe_interval_s=10, clock=clock)
    limit.value = 5
    limit._slow_start = False
    limit._changed_at = clock.now

    run(limit, clock, 9.0, 100, 0.05)
    assert limit.value == 5
    run(limit, clock, 2.0, 100, 0.05)
    assert limit.value == 6
    run(limit, clock, 10.0, 100, 0.05)
    assert limit.value == 8
    run(limit, clock, 60.0, 100, 0.05)
    assert limit.value == 12


def test_after_a_blind_drop_it_probes_back_up_quickly() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, probe_interval_s=30, clock=clock)
    limit.value = 8

    limit.throttled()  # nothing measured yet: halve
    run(limit, clock, 5.0, 100, 0.05)

    assert limit.value > 4


def test_a_failed_probe_doubles_the_wait_before_the_next() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, probe_interval_s=10, clock=clock)
    limit.value = 10
    limit._slow_start = False
    limit._changed_at = clock.now

    run(limit, clock, 10.5, 100, 0.1)  # probe to 11 ...
    assert limit.value == 11
    clock.now += 2
    limit.throttled()  # ... which fails
    settled = limit.value
    run(limit, clock, 15.0, 100, 0.1)

    assert limit.value == settled, "no probe 15 s later: the wait is now 20 s"
    run(limit, clock, 6.0, 100, 0.1)
    assert limit.value == settled + 1


def test_a_failed_probe_returns_to_the_limit_that_held_and_a_change_is_measured() -> (
    None
):
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, probe_interval_s=10, clock=clock)
    limit.value = 10
    limit._slow_start = False
    limit._changed_at = clock.now

    run(limit, clock, 10.5, 200, 0.05)
    assert limit.value == 11
    limit.throttled()
    assert limit.value == 10, "back to the limit that held, whatever was measured"

    clock.now += 5
    run(limit, clock, 2.0, 100, 0.05)  # the API now sustains half as much
    limit.throttled()
    assert 4 <= limit.value <= 6
