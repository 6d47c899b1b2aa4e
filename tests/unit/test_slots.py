"""The slots that hold submissions on the wire to the adaptive limit."""

from __future__ import annotations

import asyncio

import pytest

from processor.slots import Slots


class Limit:
    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value


async def test_no_more_than_the_limit_are_taken_and_waiters_go_in_order() -> None:
    slots = Slots(Limit(2))
    order: list[int] = []

    async def take(n: int) -> None:
        await slots.acquire()
        order.append(n)

    await take(1)
    await take(2)
    waiting = [asyncio.create_task(take(n)) for n in (3, 4)]
    await asyncio.sleep(0)
    blocked = (slots.in_use, slots.waiting)
    slots.release()
    await asyncio.sleep(0)
    slots.release()
    await asyncio.gather(*waiting)

    assert blocked == (2, 2)
    assert order == [1, 2, 3, 4]
    assert slots.in_use == 2


async def test_a_higher_limit_hands_out_slots_to_waiters() -> None:
    limit = Limit(1)
    slots = Slots(limit)
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)

    limit.value = 2
    slots.hand_out()
    await waiter

    assert slots.in_use == 2


async def test_a_lower_limit_holds_new_ones_until_enough_are_released() -> None:
    limit = Limit(3)
    slots = Slots(limit)
    for _ in range(3):
        await slots.acquire()
    limit.value = 1
    waiter = asyncio.create_task(slots.acquire())

    slots.release()
    await asyncio.sleep(0)
    after_one = waiter.done()
    slots.release()
    await asyncio.sleep(0)
    after_two = waiter.done()
    slots.release()
    await waiter

    assert (after_one, after_two) == (False, False)
    assert slots.in_use == 1


async def test_a_cancelled_waiter_gives_its_slot_to_the_next() -> None:
    slots = Slots(Limit(1))
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)

    first.cancel()
    slots.release()
    await second
    with pytest.raises(asyncio.CancelledError):
        await first

    assert slots.in_use == 1
    assert slots.waiting == 0


async def test_a_waiter_cancelled_after_being_handed_a_slot_releases_it() -> None:
    slots = Slots(Limit(1))
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)

    slots.release()  # hands the slot to the waiter ...
    waiter.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert slots.in_use == 0
