"""Submissions on the wire: never more at once than the adaptive limit allows.

A slot is held from just before a job's request is sent until its answer is
in, and nothing else: decoding, producing outputs and starting the next job
happen outside it. So the API sees as many requests at once as the limit
says, not fewer, however long the processor's own work per job takes.
Waiters are served in arrival order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Slots:
    """A counting gate whose size is read from ``limit`` at every hand-out."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Wait for a free slot and take it."""
        if not self._waiters and self.in_use < self._limit():
            self.in_use += 1
            return

        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled before using it
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give back a slot taken with ``acquire``."""
        self.in_use -= 1
        self.hand_out()

    def hand_out(self) -> None:
        """Wake waiters while there is room (call it when the limit grows)."""
        while self._waiters and self.in_use < self._limit():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)
