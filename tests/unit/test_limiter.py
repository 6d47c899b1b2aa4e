"""The adaptive in-flight limit: slow start, what the API held, probing."""

from __future__ import annotations

from processor.limiter import AdaptiveLimit, Phase
from tests.fakes import FakeTime


def run(
    limit: AdaptiveLimit, clock: FakeTime, seconds: float, rate: float, latency: float
) -> None:
    """Successes at ``rate`` per second, each with the whole limit in flight."""
    steps = int(seconds * rate)
    for _ in range(steps):
        clock.now += 1.0 / rate
        limit.succeeded(latency, in_flight=limit.value)


def refused(limit: AdaptiveLimit, in_flight: int, times: int = 1) -> None:
    """One episode: ``times`` 429s, the first with ``in_flight`` on the wire."""
    for _ in range(times):
        limit.throttled(in_flight)


def settled_at(value: int, clock: FakeTime, probe_interval_s: float) -> AdaptiveLimit:
    limit = AdaptiveLimit(64, probe_interval_s=probe_interval_s, clock=clock)
    limit.value = value
    limit.phase = Phase.SETTLED
    limit._changed_at = clock.now
    return limit


def test_it_starts_small_and_doubles_while_jobs_fill_it() -> None:
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


def test_the_first_429_halves_what_the_api_held_then_it_grows_per_round_trip() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)
    limit.value = 21

    # 21 on the wire; the API refused 5 of them: it held 16.
    refused(limit, in_flight=21, times=5)
    halved = limit.value
    clock.now += 2
    for _ in range(8 * 3):  # three round trips' worth of successes at 8, 9, 10
        limit.succeeded(0.05, in_flight=limit.value)

    assert halved == 8
    assert limit.phase is Phase.GROWING
    assert limit.value == 10


def test_a_429_while_growing_settles_one_below_the_refused_limit() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)
    refused(limit, in_flight=33, times=1)  # slow start over: held 32, grow from 16
    clock.now += 2

    limit.value = 17
    refused(limit, in_flight=17)

    assert limit.phase is Phase.SETTLED
    assert limit.value == 16


def test_a_429_while_growing_settles_at_what_the_api_held_if_that_is_less() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(64, clock=clock)
    refused(limit, in_flight=40)
    clock.now += 2
    limit.value = 20

    refused(limit, in_flight=20, times=9)  # the API held 11 of the 20

    assert limit.value == 11


def test_later_429s_of_one_episode_do_not_lower_the_limit_each_time() -> None:
    clock = FakeTime(100)
    limit = settled_at(10, clock, probe_interval_s=60)

    refused(limit, in_flight=10)
    after_first = limit.value
    refused(limit, in_flight=10, times=2)  # two more in flight, refused with it

    assert after_first == 9
    assert limit.value == 7, "what the API held, 10 - 3, not 9 - 2 again"


def test_a_429_while_settled_steps_down_by_one_each_episode_and_never_below_one() -> (
    None
):
    clock = FakeTime(100)
    limit = settled_at(3, clock, probe_interval_s=60)
    values = []

    for _ in range(4):
        clock.now += 5
        refused(limit, in_flight=limit.value)
        values.append(limit.value)

    assert values == [2, 1, 1, 1]


def test_it_probes_higher_after_a_quiet_interval_and_never_past_the_ceiling() -> None:
    clock = FakeTime(100)
    limit = AdaptiveLimit(12, probe_interval_s=10, clock=clock)
    limit.value = 5
    limit.phase = Phase.SETTLED
    limit._changed_at = clock.now

    run(limit, clock, 9.0, 100, 0.05)
    assert limit.value == 5
    run(limit, clock, 2.0, 100, 0.05)
    assert limit.value == 6
    run(limit, clock, 10.0, 100, 0.05)
    assert limit.value == 8
    run(limit, clock, 60.0, 100, 0.05)
    assert limit.value == 12


def test_a_failed_probe_returns_to_the_limit_that_held_and_doubles_the_wait() -> None:
    clock = FakeTime(100)
    limit = settled_at(10, clock, probe_interval_s=10)

    run(limit, clock, 10.5, 100, 0.1)  # probe to 11 ...
    assert limit.value == 11
    clock.now += 2
    refused(limit, in_flight=11)  # ... which fails
    settled = limit.value
    run(limit, clock, 15.0, 100, 0.1)
    not_yet = limit.value
    run(limit, clock, 6.0, 100, 0.1)

    assert settled == 10
    assert not_yet == 10, "no probe 15 s later: the wait is now 20 s"
    assert limit.value == 11


def test_a_failed_probe_goes_lower_than_the_old_limit_when_the_api_held_less() -> None:
    clock = FakeTime(100)
    limit = settled_at(10, clock, probe_interval_s=10)
    run(limit, clock, 10.5, 100, 0.1)

    refused(limit, in_flight=11, times=6)  # the API now takes 5

    assert limit.value == 5
