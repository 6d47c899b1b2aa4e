from __future__ import annotations

import asyncio

from processor.throttle import Throttle
from tests.fakes import FakeTime


def throttle_with(time: FakeTime) -> tuple[Throttle, list[float]]:
    throttle = Throttle(clock=time.clock, sleep=time.sleep)
    holds: list[float] = []
    throttle.on_hold.append(holds.append)
    return throttle, holds


async def test_wait_returns_at_once_when_not_held() -> None:
    time = FakeTime(1000)
    throttle, _ = throttle_with(time)

    await throttle.wait()

    assert not throttle.held
    assert time.slept == []


async def test_wait_sleeps_until_the_deadline() -> None:
    time = FakeTime(1000)
    throttle, _ = throttle_with(time)
    throttle.hold(5.0)
    time.now += 1.5

    await throttle.wait()

    assert time.slept == [3.5]
    assert time.now == 1005.0
    assert not throttle.held


async def test_a_hold_is_announced_once_per_episode() -> None:
    time = FakeTime(1000)
    throttle, holds = throttle_with(time)

    throttle.hold(2.0)
    time.now += 1.0
    throttle.hold(4.0)  # extends the running hold

    assert holds == [2.0]
    await throttle.wait()
    assert time.now == 1005.0

    throttle.hold(3.0)  # a new episode
    assert holds == [2.0, 3.0]


async def test_a_hold_is_never_shortened() -> None:
    time = FakeTime(1000)
    throttle, holds = throttle_with(time)

    throttle.hold(10.0)
    throttle.hold(2.0)
    time.now += 5.0

    assert throttle.held
    await throttle.wait()
    assert time.now == 1010.0
    assert holds == [10.0]


async def test_every_waiter_waits_out_the_hold() -> None:
    time = FakeTime(1000)
    throttle, _ = throttle_with(time)
    throttle.hold(1.0)

    await asyncio.gather(*(throttle.wait() for _ in range(3)))

    assert time.now >= 1001.0
    assert not throttle.held


async def test_resume_is_announced_after_the_hold_ends() -> None:
    throttle = Throttle()  # the real clock: call_later runs on loop time
    holds: list[float] = []
    resumed: list[float] = []
    throttle.on_hold.append(holds.append)
    throttle.on_resume.append(resumed.append)

    throttle.hold(0.01)
    throttle.hold(0.02)
    assert resumed == []
    for _ in range(100):  # normally the first 50 ms; at most a second
        await asyncio.sleep(0.05 if _ == 0 else 0.01)
        if resumed:
            break

    assert holds == [0.01]
    assert len(resumed) == 1
    assert resumed[0] >= 0.02
    assert not throttle.held
