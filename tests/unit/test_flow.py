"""Why consumption pauses: a held throttle, or an open breaker a job can probe."""

from __future__ import annotations

from processor.breaker import Breaker
from processor.flow import FlowControl
from processor.limiter import AdaptiveLimit
from processor.throttle import Throttle
from tests.fakes import FakeTime


def flow(clock: FakeTime) -> FlowControl:
    breaker = Breaker(window=10, min_samples=4, clock=clock)
    return FlowControl(Throttle(clock=clock), breaker, AdaptiveLimit(8), clock=clock)


def test_nothing_pauses_consumption_while_the_api_is_healthy() -> None:
    assert flow(FakeTime()).pause_reason(jobs_in_hand=5) is None


async def test_a_held_throttle_pauses_consumption_until_it_lifts() -> None:
    clock = FakeTime()
    control = flow(clock)

    control.throttle.hold(2.0)
    assert control.pause_reason(jobs_in_hand=0) == "throttled"

    clock.now += 2.5
    assert control.pause_reason(jobs_in_hand=0) is None


def test_an_open_breaker_pauses_consumption_while_jobs_wait_to_probe_it() -> None:
    control = flow(FakeTime())
    for _ in range(4):
        control.faulted("action_a")

    assert control.pause_reason(jobs_in_hand=3) == "breaker_open"


def test_an_open_breaker_with_no_job_in_hand_lets_one_be_fetched_to_probe() -> None:
    # Jobs revoked with their partitions leave none to probe with; a pause
    # now would hold the breaker open for good.
    control = flow(FakeTime())
    for _ in range(4):
        control.faulted("action_a")

    assert control.breaker.open
    assert control.pause_reason(jobs_in_hand=0) is None
