"""Flow control: the gates every submission passes, and what answers teach them.

Five parts, each its own module: the ``Throttle`` (a 429's Retry-After holds
every submission), the ``Breaker`` (an outage holds them but one probe), the
``AdaptiveLimit`` (how many may be in flight), the ``Slots`` that enforce it
on the wire, and the ``Pacer`` (how many may start a second, once the API
throttles with few in flight). While the throttle holds, or the breaker is
open with jobs waiting to probe it, the consumer pauses its partitions too,
so nothing piles up behind the gates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from processor.breaker import Breaker
from processor.limiter import AdaptiveLimit
from processor.pacer import Pacer
from processor.slots import Slots
from processor.throttle import Throttle


class FlowControl:
    """One per process, shared by every job.

    Each submission calls ``admit`` and, once its answer is recorded with
    one of ``accepted``, ``answered``, ``throttled``, ``faulted`` or
    ``unused``, calls ``release``.
    """

    def __init__(
        self,
        throttle: Throttle,
        breaker: Breaker,
        limit: AdaptiveLimit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.throttle = throttle
        self.breaker = breaker
        self.limit = limit
        self.slots = Slots(limit)
        self.pacer = Pacer(clock=clock)

    async def admit(self) -> bool:
        """Wait for the gates and a slot; True when this submission is the probe."""
        while True:
            await self.throttle.wait()
            probe = await self.breaker.admit()
            try:
                await self.pacer.wait()
                await self.slots.acquire()
            except asyncio.CancelledError:
                self.unused(probe)
                raise
            if not self.throttle.held:
                return probe

            # A 429 came while this one waited for its slot: wait it out too.
            self.slots.release()
            self.unused(probe)

    def release(self) -> None:
        """The submission's answer is in: its slot goes to the next one."""
        self.slots.release()

    def pause_reason(self, jobs_in_hand: int) -> str | None:
        """Why consumption should pause now, if it should.

        ``jobs_in_hand`` counts the jobs started and not ended. Only a job can
        probe an open breaker: with none in hand (all revoked with their
        partitions, say), pausing would wait for a probe that never comes, so
        consumption goes on until one arrives.
        """
        if self.throttle.held:
            return "throttled"
        if self.breaker.open and jobs_in_hand > 0:
            return "breaker_open"
        return None

    def clock(self) -> float:
        """The time flow control measures in; pass it back as ``sent_at``."""
        return self._clock()

    def accepted(self, sent_at: float, action: str) -> None:
        self.breaker.succeeded(sent_at, action)
        # Counted before this submission's slot is released, so a limit in
        # full use can be told from one with room to spare.
        self.limit.succeeded(self._clock() - sent_at, self.slots.in_use)
        self.pacer.accepted()

    def answered(self, sent_at: float, action: str) -> None:
        """An answer that is no fault (a 4xx): the API is up."""
        self.breaker.succeeded(sent_at, action)

    def throttled(self, sent_at: float, retry_after_s: float, action: str) -> None:
        self.breaker.succeeded(sent_at, action)
        # Counted before the refused submission's slot is released.
        self.limit.throttled(self.slots.in_use)
        self.pacer.throttled(self.slots.in_use)
        self.throttle.hold(retry_after_s)

    def faulted(self, action: str) -> bool:
        """A fault; True when it is part of an outage, which costs no attempt."""
        self.breaker.failed(action)
        return self.breaker.open

    def unused(self, probe: bool) -> None:
        """The submission asked the API nothing after all."""
        if probe:
            self.breaker.release_probe()
