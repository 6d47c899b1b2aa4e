"""The circuit breaker: opens on mostly faults, one probe at a time, in turn."""

from __future__ import annotations

import asyncio

from processor.breaker import Breaker, State
from tests.fakes import FakeTime


def tripped() -> Breaker:
    breaker = Breaker(window=10, min_samples=4, first_probe_s=0.0, clock=FakeTime())
    for _ in range(4):
        breaker.failed()
    return breaker


def test_it_stays_closed_while_most_submissions_succeed() -> None:
    breaker = Breaker(window=10, min_samples=4)
    for _ in range(20):
        breaker.succeeded()
        breaker.succeeded()
        breaker.failed()

    assert breaker.state is State.CLOSED


def test_it_opens_once_most_recent_submissions_fail_and_says_so() -> None:
    opened: list[bool] = []
    breaker = Breaker(window=10, min_samples=4)
    breaker.on_open.append(lambda: opened.append(True))

    for _ in range(3):
        breaker.failed()
    assert breaker.state is State.CLOSED
    breaker.failed()

    assert breaker.open
    assert opened == [True]


async def test_closed_admits_at_once_and_not_as_a_probe() -> None:
    assert await Breaker().admit() is False


async def test_open_admits_one_probe_and_holds_the_rest() -> None:
    breaker = tripped()
    waiters = [asyncio.create_task(breaker.admit()) for _ in range(3)]
    await asyncio.sleep(0.01)

    done = [w for w in waiters if w.done()]
    assert len(done) == 1
    assert done[0].result() is True
    assert breaker.state is State.PROBING

    breaker.succeeded()
    results = await asyncio.gather(*waiters)
    assert sorted(results) == [False, False, True]
    assert not breaker.open


async def test_a_failed_probe_passes_the_next_probe_to_another_waiter() -> None:
    breaker = tripped()
    first = asyncio.create_task(breaker.admit())
    second = asyncio.create_task(breaker.admit())
    await asyncio.sleep(0.01)
    assert first.done() and first.result() is True

    # The failed prober asks again: it queues behind the one already waiting.
    breaker.failed()
    again = asyncio.create_task(breaker.admit())
    await asyncio.sleep(0.05)

    assert second.done() and second.result() is True
    assert not again.done()
    breaker.succeeded()
    assert await again is False


async def test_probe_intervals_grow_after_each_failed_probe() -> None:
    clock = FakeTime()
    breaker = Breaker(window=10, min_samples=4, first_probe_s=10.0, clock=clock)
    for _ in range(4):
        breaker.failed()

    waiter = asyncio.create_task(breaker.admit())
    await asyncio.sleep(0.01)
    assert not waiter.done()

    clock.now = 10.0
    breaker._hand_out()
    assert await waiter is True
    breaker.failed()

    nxt = asyncio.create_task(breaker.admit())
    clock.now = 25.0
    breaker._hand_out()
    await asyncio.sleep(0.01)
    assert not nxt.done(), "the second interval is 20 s, not 10"
    clock.now = 30.0
    breaker._hand_out()
    assert await nxt is True


async def test_a_probe_that_asked_nothing_hands_over_at_once() -> None:
    breaker = tripped()
    probe = await breaker.admit()
    waiting = asyncio.create_task(breaker.admit())
    await asyncio.sleep(0.01)

    breaker.release_probe()

    assert probe is True
    assert await waiting is True


def test_one_action_failing_while_another_is_answered_is_no_outage() -> None:
    breaker = Breaker(window=10, min_samples=4)
    breaker.succeeded(action="healthy")
    for _ in range(9):
        breaker.failed(action="broken")

    assert breaker.state is State.CLOSED


def test_it_opens_once_every_action_in_the_window_is_failing() -> None:
    breaker = Breaker(window=10, min_samples=4)
    breaker.succeeded(action="healthy")
    for _ in range(6):
        breaker.failed(action="broken")
    assert breaker.state is State.CLOSED

    breaker.failed(action="healthy")

    assert breaker.open
