"""Flow control: the gates every submission passes, and what answers teach them.

Three parts, each its own module: the ``Throttle`` (a 429's Retry-After holds
every submission), the ``Breaker`` (an outage holds them but one probe) and
the ``AdaptiveLimit`` (how many may be in flight). While the throttle holds
or the breaker is open, the consumer pauses its partitions too, so nothing
piles up behind the gates.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from processor.breaker import Breaker
from processor.limiter import AdaptiveLimit
from processor.throttle import Throttle


class FlowControl:
    """One per process, shared by every job."""

    def __init__(
        self,
        throttle: Throttle,
        breaker: Breaker,
        limit: AdaptiveLimit,
        in_flight: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.throttle = throttle
        self.breaker = breaker
        self.limit = limit
        self._in_flight = in_flight
        throttle.on_resume.append(lambda _held_s: limit.resumed())

    async def admit(self) -> bool:
        """Wait for the gates; True when this submission is the breaker's probe."""
        await self.throttle.wait()
        return await self.breaker.admit()

    def pause_reason(self) -> str | None:
        """Why consumption should pause now, if it should."""
        if self.throttle.held:
            return "throttled"
        if self.breaker.open:
            return "breaker_open"
        return None

    def clock(self) -> float:
        """The time flow control measures in; pass it back as ``sent_at``."""
        return self._clock()

    def accepted(self, sent_at: float) -> None:
        self.breaker.succeeded(sent_at)
        self.limit.succeeded(self._clock() - sent_at, self._in_flight())

    def answered(self, sent_at: float) -> None:
        """An answer that is no fault (a 4xx): the API is up."""
        self.breaker.succeeded(sent_at)

    def throttled(self, sent_at: float, retry_after_s: float) -> None:
        self.breaker.succeeded(sent_at)
        self.limit.throttled()
        self.throttle.hold(retry_after_s)

    def faulted(self) -> bool:
        """A fault; True when it is part of an outage, which costs no attempt."""
        self.breaker.failed()
        return self.breaker.open

    def unused(self, probe: bool) -> None:
        """The submission asked the API nothing after all."""
        if probe:
            self.breaker.release_probe()
