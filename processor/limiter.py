"""The in-flight limit, learned from the API: as many jobs as it accepts, no more.

A 429 costs a whole ``Retry-After`` of silence for every job, so the limit is
found with as few of them as possible. What a 429 tells is how many of the
submissions on the wire the API held on to: the ones in flight when it came,
less the ones it refused with it. Under a concurrency cap K that is K; under
a rate limit R at latency L it is about R x L (Little's law, applied by the
API itself). A token bucket lets a burst through first, so the count is only
exact when the limit went over by little; the limit therefore settles in two
steps, the way TCP does:

- Slow start: from a small limit, one more per success (doubling each round
  trip) until the first 429 or the ceiling.
- The first 429 sets the limit to half of what the API held, and from there
  it grows by one per round trip.
- The next 429, one step over what the API takes, settles it: one below the
  limit that was refused, or what the API held if that is less. A 429 while
  settled that is no probe's (the API takes less now, or a burst had made it
  look roomier) settles it the same way, one step lower.
- Settled, and once jobs have used the whole limit for ``probe_interval_s``
  without a 429, it probes one higher, then two, then four: the API may
  allow more now. A probe that fails goes back to the limit that held and
  doubles the wait before the next one (up to five minutes); one that holds
  resets it.

The limit never exceeds the ceiling (``PROCESSOR_MAX_IN_FLIGHT``) and never
falls below one. Refusals within one episode (the 429s of requests already in
flight when the first came back) lower what the API held, not the limit again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)

_INITIAL = 2
_MAX_PROBE_STEP = 16
# Probes that keep failing back off to at most this long apart.
_MAX_PROBE_WAIT_S = 300.0
# Refusals that come back this long after the first belong to its episode.
_MIN_EPISODE_S = 1.0
_LATENCY_WEIGHT = 0.05


class Phase(StrEnum):
    SLOW_START = "slow_start"
    GROWING = "growing"
    SETTLED = "settled"


class _Episode(StrEnum):
    """What the first 429 of an episode meant."""

    PROBE_FAILED = "probe_failed"
    ONE_STEP_OVER = "one_step_over"
    FAR_OVER = "far_over"


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
        self.phase = Phase.SLOW_START
        self._probe_interval_s = probe_interval_s
        self._clock = clock
        self._wait_s = probe_interval_s
        self._changed_at = clock()
        self._credit = 0
        self._probe_step = 1
        # The limit that held before the current probe, while one runs.
        self._safe: int | None = None
        self._safe_before: int | None = None
        self._episode_until = 0.0
        self._episode_from = self.value
        self._episode = _Episode.FAR_OVER
        self._held = 0
        self._latency_s = 0.0

    def __call__(self) -> int:
        return self.value

    def succeeded(self, latency_s: float, in_flight: int) -> None:
        """A submission was accepted after ``latency_s``, with ``in_flight`` running."""
        self._latency_s += _LATENCY_WEIGHT * (latency_s - self._latency_s)
        if in_flight < self.value or self.value >= self.ceiling:
            return  # a limit with room to spare says nothing about the API

        if self.phase is Phase.SLOW_START:
            self.value += 1
        elif self.phase is Phase.GROWING:
            self._grow_by_one_per_round_trip()
        else:
            self._maybe_probe()

    def throttled(self, in_flight: int) -> None:
        """The API answered 429 to one of the ``in_flight`` submissions on the wire."""
        now = self._clock()
        first = now >= self._episode_until
        if first:
            self._begin_episode(in_flight)
            self._episode_until = now + max(_MIN_EPISODE_S, 4 * self._latency_s)
        else:
            self._held = max(0, self._held - 1)  # one more it did not take

        self._settle()
        self._changed_at = now
        if first:
            log.info(
                "CXone throttled at %d jobs in flight; limit now %d (%s)",
                self._episode_from,
                self.value,
                self.phase,
            )

    def _begin_episode(self, in_flight: int) -> None:
        self._episode_from = self.value
        self._held = max(0, in_flight - 1)
        self._credit = 0
        self._probe_step = 1
        if self.phase is Phase.SETTLED and self._safe is not None:
            # A probe failed: the API has not changed; ask less often.
            self._episode = _Episode.PROBE_FAILED
            self._wait_s = min(2 * self._wait_s, _MAX_PROBE_WAIT_S)
        elif self.phase is Phase.SLOW_START:
            self._episode = _Episode.FAR_OVER
        else:
            # Growing by one per round trip, or settled where a token bucket's
            # burst made the API look roomier than it is: one step over.
            self._episode = _Episode.ONE_STEP_OVER
            self._wait_s = self._probe_interval_s
        self._safe_before = self._safe
        self._safe = None

    def _settle(self) -> None:
        """Set the limit from the episode's kind and what the API held."""
        was, held = self._episode_from, max(1, self._held)
        if self._episode is _Episode.PROBE_FAILED:
            self.value = min(self._safe_before or was, held)
            self.phase = Phase.SETTLED
        elif self._episode is _Episode.ONE_STEP_OVER:
            self.value = min(was - 1, held)
            self.phase = Phase.SETTLED
        else:
            self.value = held // 2
            self.phase = Phase.GROWING
        self.value = max(1, min(self.value, self.ceiling))

    def _grow_by_one_per_round_trip(self) -> None:
        self._credit += 1
        if self._credit >= self.value:
            self._credit = 0
            self.value += 1

    def _maybe_probe(self) -> None:
        now = self._clock()
        if now - self._changed_at < self._wait_s:
            return
        if self._safe is not None:
            self._wait_s = self._probe_interval_s  # the last probe held
        self._safe = self.value
        self.value = min(self.ceiling, self.value + self._probe_step)
        self._probe_step = min(2 * self._probe_step, _MAX_PROBE_STEP)
        self._changed_at = now
        log.debug("probing a higher in-flight limit: %d", self.value)
