"""The circuit breaker: an outage is not the jobs' fault.

When most recent submissions fail with faults (5xx, timeouts, refused
connections, the token endpoint down), and no action among them is being
answered, the breaker opens: nothing goes out
but one probe at a time, at growing intervals, and the first probe that gets
an answer closes it. A job that fails while the breaker is open spends no
attempt; it waits in line. Probes are handed out in waiting order, so a job
that fails for reasons of its own cannot keep the breaker open: the next
probe is somebody else's.

An action that fails while another is answered is that action's trouble, not
an outage: its jobs spend their attempts and end as dead letters, and the
rest go on.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)

Listener = Callable[[], None]


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    PROBING = "probing"


# Known limitation: with a single action in use, that action failing on its
# own cannot be told from an outage; its jobs wait for it, with the breaker
# open and probing, instead of being dead-lettered.
class Breaker:
    """Opens when at least ``threshold`` of the last ``window`` submissions failed."""

    def __init__(
        self,
        *,
        window: int = 20,
        min_samples: int = 10,
        threshold: float = 0.5,
        first_probe_s: float = 0.5,
        max_probe_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # (action, failed) for the last ``window`` answers.
        self._outcomes: deque[tuple[str, bool]] = deque(maxlen=window)
        self._min_samples = min_samples
        self._threshold = threshold
        self._first_probe_s = first_probe_s
        self._max_probe_s = max_probe_s
        self._clock = clock
        self.state = State.CLOSED
        self._interval_s = first_probe_s
        self._probe_at = 0.0
        self._opened_at = 0.0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.on_open: list[Listener] = []
        self.on_close: list[Listener] = []

    @property
    def open(self) -> bool:
        return self.state is not State.CLOSED

    async def admit(self) -> bool:
        """Wait until a submission may go out; True when it goes as the probe."""
        if self.state is State.CLOSED:
            return False

        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._hand_out()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release_probe()  # it was picked as the probe, then cancelled
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def release_probe(self) -> None:
        """The probe ended without an answer from the API: the next one goes now."""
        if self.state is State.PROBING:
            self.state = State.OPEN
            self._probe_at = self._clock()
            self._hand_out()

    def succeeded(self, sent_at: float | None = None, action: str = "") -> None:
        """An answer that is no fault, to a request for ``action`` sent at ``sent_at``.

        An answer to a request sent before the breaker opened proves nothing
        about the API now, so only later ones close it.
        """
        self._outcomes.append((action, False))
        if self.state is State.CLOSED:
            return
        if sent_at is None or sent_at >= self._opened_at:
            self._close()

    def failed(self, action: str = "") -> None:
        """A fault of a request for ``action``; the breaker may be open after it."""
        self._outcomes.append((action, True))
        if self.state is State.PROBING:
            self._interval_s = min(self._interval_s * 2, self._max_probe_s)
            self._reopen()
        elif self.state is State.CLOSED and self._tripped():
            self._interval_s = self._first_probe_s
            self._opened_at = self._clock()
            log.warning("CXone is failing; circuit breaker open, probing")
            self._reopen()
            for listener in self.on_open:
                listener()

    def _tripped(self) -> bool:
        outcomes = self._outcomes
        if len(outcomes) < self._min_samples:
            return False
        faults = sum(failed for _, failed in outcomes)
        if faults / len(outcomes) < self._threshold:
            return False

        latest = {action: failed for action, failed in outcomes}
        return all(latest.values())

    def _reopen(self) -> None:
        self.state = State.OPEN
        self._probe_at = self._clock() + self._interval_s
        self._hand_out()

    def _close(self) -> None:
        self.state = State.CLOSED
        self._outcomes.clear()
        self._cancel_timer()
        log.info("CXone answers again; circuit breaker closed")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)
        for listener in self.on_close:
            listener()

    def _hand_out(self) -> None:
        """Give the probe to the longest waiter once its time has come."""
        self._cancel_timer()
        if self.state is not State.OPEN or not self._waiters:
            return
        delay = self._probe_at - self._clock()
        if delay > 0:
            loop = asyncio.get_running_loop()
            # A context of its own, not that of the job that scheduled it.
            self._timer = loop.call_later(
                delay, self._hand_out, context=contextvars.Context()
            )
            return

        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.state = State.PROBING
                waiter.set_result(True)
                return

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
