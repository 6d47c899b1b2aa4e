"""The in-flight limit, learned from the API: as many jobs as it accepts, no more.

A 429 costs a whole ``Retry-After`` of silence, so the limit is found with as
few of them as possible:

- It starts small and grows by one per success (doubling each round trip)
  until the first 429 or the configured ceiling.
- On a 429 it drops to what the API just sustained, by Little's law: the
  accepted rate since the last resume times the mean latency. Under a rate
  limit R that is about R x latency; under a concurrency cap K, about K. One
  drop per throttling episode, however many requests the episode refused.
- While jobs use the whole limit and no 429 comes for ``probe_interval_s``,
  it probes one higher, then two, then four: the API may allow more now.

The limit never exceeds the ceiling (``PROCESSOR_MAX_IN_FLIGHT``) and never
falls below one.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

_INITIAL = 8
_LATENCY_SMOOTHING = 0.1
# Accepted-rate estimates look this far back, and need this many successes.
_RATE_WINDOW_S = 2.0
_MIN_SAMPLES = 5
_MAX_STEP = 16


class AdaptiveLimit:
    """How many jobs may be in flight right now."""

    def __init__(
        self,
        ceiling: int,
        *,
        probe_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = ceiling
        self.value = min(ceiling, _INITIAL)
        self._probe_interval_s = probe_interval_s
        self._clock = clock
        self._slow_start = True
        self._step = 1
        self._changed_at = clock()
        self._calm_until = 0.0
        self._active_since = clock()
        self._latency_s = 0.0
        self._successes: deque[float] = deque()

    def __call__(self) -> int:
        return self.value

    def succeeded(self, latency_s: float, in_flight: int) -> None:
        """A submission was accepted after ``latency_s``, with ``in_flight`` running."""
        now = self._clock()
        self._remember(now, latency_s)
        if in_flight < self.value or self.value >= self.ceiling:
            return

        if self._slow_start:
            self.value += 1
        elif now - self._changed_at >= self._probe_interval_s:
            self.value = min(self.ceiling, self.value + self._step)
            self._step = min(self._step * 2, _MAX_STEP)
            self._changed_at = now
            log.debug("probing a higher in-flight limit: %d", self.value)

    def throttled(self) -> None:
        """The API answered 429: settle at what it sustained."""
        now = self._clock()
        if now < self._calm_until:
            return  # the same throttling episode

        sustained = self._sustained()
        lower = max(1, self.value - 1)
        before = self.value
        self.value = (
            max(1, min(lower, sustained)) if sustained else max(1, self.value // 2)
        )
        self._slow_start = False
        self._step = 1
        self._changed_at = now
        # Every request in flight when the API started refusing may come back
        # 429; they are one episode, answered once.
        self._calm_until = now + max(1.0, 4 * self._latency_s)
        log.info(
            "CXone throttled at %d jobs in flight; limit now %d", before, self.value
        )

    def resumed(self) -> None:
        """Submissions go on after a hold: measure the accepted rate afresh."""
        self._active_since = self._clock()
        self._successes.clear()

    def _remember(self, now: float, latency_s: float) -> None:
        if self._latency_s == 0.0:
            self._latency_s = latency_s
        else:
            self._latency_s += _LATENCY_SMOOTHING * (latency_s - self._latency_s)
        successes = self._successes
        successes.append(now)
        while successes and successes[0] < now - _RATE_WINDOW_S:
            successes.popleft()

    def _sustained(self) -> int | None:
        """Little's law over the recent past: accepted rate x latency."""
        now = self._clock()
        recent = [t for t in self._successes if t >= now - _RATE_WINDOW_S]
        if len(recent) < _MIN_SAMPLES:
            return None
        span = now - max(recent[0], self._active_since)
        if span <= 0:
            return None
        rate = len(recent) / span
        return max(1, math.floor(rate * self._latency_s))
