"""The pacer: a rate learned from 429s that came with few jobs in flight."""

from __future__ import annotations

from itertools import pairwise

import pytest

from processor.pacer import MAX_IN_FLIGHT_TO_PACE, Pacer
from tests.fakes import FakeTime


def accepted(pacer: Pacer, clock: FakeTime, count: int, over_s: float) -> None:
    for _ in range(count):
        pacer.accepted()
        clock.now += over_s / count


def test_it_does_not_pace_before_the_api_throttles() -> None:
    assert Pacer(clock=FakeTime()).rate() is None


def test_a_429_with_many_in_flight_is_left_to_the_in_flight_limit() -> None:
    clock = FakeTime()
    pacer = Pacer(clock=clock)
    accepted(pacer, clock, 100, 1.0)

    pacer.throttled(in_flight=MAX_IN_FLIGHT_TO_PACE + 1)

    assert pacer.rate() is None


def test_a_429_with_few_in_flight_paces_at_what_the_last_second_accepted() -> None:
    clock = FakeTime(100)
    pacer = Pacer(clock=clock)
    accepted(pacer, clock, 30, 2.0)  # 15 of them in the last second

    pacer.throttled(in_flight=1)

    assert pacer.rate() == pytest.approx(15, abs=1)


def test_it_doubles_each_second_until_a_429_then_cuts_and_grows_slowly() -> None:
    clock = FakeTime(100)
    pacer = Pacer(clock=clock)
    accepted(pacer, clock, 10, 1.0)
    pacer.throttled(in_flight=1)
    accepted(pacer, clock, 15, 1.0)
    accepted(pacer, clock, 30, 1.0)  # the API took 30 in the last second
    doubled_twice = pacer.rate()

    pacer.throttled(in_flight=1)
    cut = pacer.rate()
    clock.now += 10.0
    grown = pacer.rate()

    assert doubled_twice == pytest.approx(40)
    assert cut == pytest.approx(27)
    assert grown is not None and cut is not None
    assert cut < grown < 1.1 * cut


def test_a_429_right_after_a_long_wait_keeps_it_doubling() -> None:
    clock = FakeTime(100)
    pacer = Pacer(clock=clock)
    accepted(pacer, clock, 10, 1.0)
    pacer.throttled(in_flight=1)
    clock.now += 2.0  # a Retry-After: nothing accepted meanwhile
    accepted(pacer, clock, 2, 0.1)

    pacer.throttled(in_flight=1)
    clock.now += 1.0
    low = pacer.rate()
    clock.now += 1.0

    assert low is not None and pacer.rate() == pytest.approx(2 * low)


def test_refusals_of_one_burst_cut_the_rate_once() -> None:
    clock = FakeTime(100)
    pacer = Pacer(clock=clock)
    accepted(pacer, clock, 20, 1.0)
    pacer.throttled(in_flight=1)
    clock.now += 5.0
    pacer.throttled(in_flight=2)
    after_one = pacer.rate()

    pacer.throttled(in_flight=2)
    pacer.throttled(in_flight=1)

    assert pacer.rate() == after_one


async def test_submissions_start_no_sooner_than_the_rate_allows() -> None:
    clock = FakeTime(100)
    pacer = Pacer(clock=clock.clock, sleep=clock.sleep)
    accepted(pacer, clock, 10, 1.0)
    pacer.throttled(in_flight=1)
    pacer.throttled(in_flight=1)  # same episode: still 10 a second, doubling

    starts = []
    for _ in range(5):
        await pacer.wait()
        starts.append(clock.now)

    gaps = [later - earlier for earlier, later in pairwise(starts)]
    assert all(0.05 < gap <= 0.1 for gap in gaps)
