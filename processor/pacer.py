"""Pacing: submissions spaced out in time, for a rate limit that concurrency misses.

The in-flight limit holds an API's rate R only through its latency L, as
R x L jobs in flight. When R x L is a handful or less (a fast API, a low
limit), one job in flight can already send faster than R, or one step of the
in-flight limit is a large share of it; each 429 then costs every job a whole
Retry-After. So once the API throttles with that few in flight, submissions
are also spaced to a rate, learned the way TCP learns a window:

- It starts at what the API accepted in the last second before the 429 (a
  low guess when the 429 came early) and doubles each second until a 429,
  which sets it to ``_DECREASE`` of what the API accepted in the second
  before.
- Each later 429 lowers the rate to ``_DECREASE`` of itself.
- From then on it grows by ``_GROWTH_PER_S`` of itself each second, so it
  finds more room when the API allows it, slowly enough that 429s are rare.

While the in-flight limit holds the rate (many in flight at a 429), no pacing
starts. A pacer whose rate has grown far past what is sent limits nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Pacing starts when the API throttles with this many or fewer in flight.
MAX_IN_FLIGHT_TO_PACE = 4
_DECREASE = 0.9
_GROWTH_PER_S = 0.005
# Refusals within this long of the first belong to one episode.
_EPISODE_S = 1.0
_MEASURE_S = 1.0
_MIN_RATE = 0.1
_MAX_DOUBLINGS = 30


class Pacer:
    """Gives each submission a start time no sooner than the rate allows."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._base: float | None = None
        self._based_at = 0.0
        self._doubling = False
        self._next_at = 0.0
        self._episode_until = 0.0
        self._accepted: deque[float] = deque()

    def rate(self) -> float | None:
        """Submissions per second allowed now; ``None`` while not pacing."""
        if self._base is None:
            return None
        elapsed = self._clock() - self._based_at
        if self._doubling:
            # Capped: a pacer left doubling with nothing to send limits nothing.
            grown = 2 ** min(elapsed, _MAX_DOUBLINGS)
        else:
            grown = 1 + _GROWTH_PER_S * elapsed
        return self._base * grown

    async def wait(self) -> None:
        """Return at this submission's turn."""
        rate = self.rate()
        if rate is None:
            return

        now = self._clock()
        turn = max(now, self._next_at)
        self._next_at = turn + 1 / rate
        if turn > now:
            await self._sleep(turn - now)

    def accepted(self) -> None:
        now = self._clock()
        self._accepted.append(now)
        while self._accepted[0] < now - _MEASURE_S:
            self._accepted.popleft()

    def throttled(self, in_flight: int) -> None:
        """A 429 came with ``in_flight`` submissions on the wire."""
        now = self._clock()
        if now < self._episode_until:
            return  # the rest of the burst the first refusal answered
        self._episode_until = now + _EPISODE_S

        rate, recent = self.rate(), self._recent(now)
        if rate is None and in_flight > MAX_IN_FLIGHT_TO_PACE:
            return
        if rate is None:
            self._base, self._doubling = recent, True
        elif self._doubling:
            # Doubling overshoots by up to a second's growth; what the API took
            # in the last second is nearer its rate. A last second mostly spent
            # waiting out a 429 says little: then keep doubling from there.
            cut = min(rate, recent) * _DECREASE
            self._base, self._doubling = cut, cut < rate / 2
        else:
            self._base = rate * _DECREASE
        self._base = max(_MIN_RATE, self._base)
        self._based_at = now
        log.info("CXone throttled; pacing submissions at %.1f a second", self._base)

    def _recent(self, now: float) -> float:
        """Submissions accepted in the last second."""
        return float(sum(1 for at in self._accepted if at >= now - _MEASURE_S))
