"""The in-flight limit, learned from the API: as many jobs as it accepts, no more.

A 429 costs a whole ``Retry-After`` of silence, so the limit is found with as
few of them as possible:

- It starts small and grows by one per success (doubling each round trip)
  until the first 429 or the configured ceiling.
- A probe that fails goes back to the limit that held before it. Any other
  429 drops the limit to what the API just sustained, by Little's law: over
  the last round trip of successes, the sum of their latencies divided by the
  time they took is the mean number in flight. Under a rate limit R that is
  about R x latency; under a concurrency cap K, about K. One drop per
  throttling episode, however many requests the episode refused. Without
  enough successes to measure it halves; either way, when the measurement
  was blind or made while ramping up, it probes back up quickly.
- While jobs use the whole limit and no 429 comes for ``probe_interval_s``,
  it probes one higher, then two, then four: the API may allow more now. A
  probe that fails doubles the wait before the next one (up to five minutes),
  since each costs a Retry-After of silence; one that holds resets it.

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

_INITIAL = 2
_MIN_SAMPLES = 10
_KEPT_SAMPLES = 256
_MAX_STEP = 16
# Probes that keep failing back off to at most this long apart.
_MAX_PROBE_WAIT_S = 300.0
# After a drop it could not measure, the limit probes this much more often.
_BLIND_PROBE_SPEEDUP = 30.0
_QUICK_STEP = 2


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
        self._wait_s = probe_interval_s
        self._probing = False
        # The highest limit that ran a whole probe interval without a 429.
        self._safe: int | None = None
        self._calm_until = 0.0
        self._blind = False
        self._successes: deque[tuple[float, float]] = deque(maxlen=_KEPT_SAMPLES)

    def __call__(self) -> int:
        return self.value

    def succeeded(self, latency_s: float, in_flight: int) -> None:
        """A submission was accepted after ``latency_s``, with ``in_flight`` running."""
        now = self._clock()
        self._successes.append((now, latency_s))
        if in_flight < self.value or self.value >= self.ceiling:
            return

        interval = self._wait_s
        if self._blind:
            interval = self._probe_interval_s / _BLIND_PROBE_SPEEDUP
        if self._slow_start:
            self.value += 1
        elif now - self._changed_at >= interval:
            if self._probing:
                self._wait_s = self._probe_interval_s  # the last probe held
            self._probing = True
            self._safe = self.value  # it held for a whole interval
            self.value = min(self.ceiling, self.value + self._step)
            if not self._blind:
                # Quick probes climb evenly, so the first refusal lands just
                # above the limit; slow ones may have far to go.
                self._step = min(self._step * 2, _MAX_STEP)
            self._changed_at = now
            log.debug("probing a higher in-flight limit: %d", self.value)

    def throttled(self) -> None:
        """The API answered 429: settle at what it sustained."""
        now = self._clock()
        if now < self._calm_until:
            return  # the same throttling episode

        measured = self._measured()
        before = self.value
        if self._probing and not self._blind:
            # A probe failed: the API has not changed; ask less often.
            self._wait_s = min(2 * self._wait_s, _MAX_PROBE_WAIT_S)
        if self._probing and self._safe is not None:
            # A probe above a limit that held: go back to the one that held.
            self.value = self._safe
            measured = self._safe
        elif measured is None:
            self.value = max(1, self.value // 2)
        else:
            # Refused at a limit that held before, or never probed: measure.
            self.value = max(1, min(self.value - 1, measured))
            self._safe = None
        self._blind = measured is None or self._slow_start
        self._probing = False
        self._slow_start = False
        self._step = _QUICK_STEP if self._blind else 1
        self._changed_at = now
        # Every request in flight when the API started refusing may come back
        # 429; they are one episode, answered once.
        self._calm_until = now + max(1.0, 4 * self._mean_latency())
        log.info(
            "CXone throttled at %d jobs in flight; limit now %d", before, self.value
        )

    def resumed(self) -> None:
        """Submissions go on after a hold: what came before it says nothing now."""
        self._successes.clear()

    def _measured(self) -> int | None:
        """Mean jobs in flight over the last two round trips of successes.

        Little's law: the rate at which they completed times their mean latency.
        """
        wanted = max(_MIN_SAMPLES, 2 * self.value)
        if len(self._successes) < wanted:
            return None
        recent = list(self._successes)[-wanted:]
        span = recent[-1][0] - recent[0][0]
        if span <= 0:
            return None
        rate = (len(recent) - 1) / span
        latency = sum(latency for _, latency in recent) / len(recent)
        log.debug("sustained %.1f/s at %.1f ms", rate, latency * 1000)
        return max(1, math.floor(rate * latency + 0.5))

    def _mean_latency(self) -> float:
        if not self._successes:
            return 0.0
        return sum(latency for _, latency in self._successes) / len(self._successes)
