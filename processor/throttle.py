"""The API's "wait": after a 429, no submission starts until Retry-After passes.

One ``Throttle`` is shared by every job of the process, so a single 429
holds them all, as the API asked, instead of each job finding out by itself.
Listeners hear when a hold starts and when it ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable

Listener = Callable[[float], None]


class Throttle:
    """Holds submissions until a deadline the API set.

    Known limitation: the hold is per process. Other instances of the group
    learn of the API's limit from their own 429s.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._until = 0.0
        self._resume_timer: asyncio.TimerHandle | None = None
        self.on_hold: list[Listener] = []
        self.on_resume: list[Listener] = []
        self._held_since = 0.0

    @property
    def held(self) -> bool:
        return self._clock() < self._until

    def hold(self, seconds: float) -> None:
        """Hold submissions for ``seconds`` from now (never shortening a hold)."""
        now = self._clock()
        was_held = now < self._until
        self._until = max(self._until, now + seconds)
        if was_held:
            return

        self._held_since = now
        for listener in self.on_hold:
            listener(seconds)
        self._schedule_resume()

    async def wait(self) -> None:
        """Return once no hold is in force."""
        while (remaining := self._until - self._clock()) > 0:
            await self._sleep(remaining)

    def _schedule_resume(self) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._until - self._clock())
        # In a context of its own: the job whose 429 began the hold is not
        # the one its end belongs to (log lines would name it otherwise).
        self._resume_timer = loop.call_later(
            delay, self._maybe_resumed, context=contextvars.Context()
        )

    def _maybe_resumed(self) -> None:
        if self.held:
            self._schedule_resume()
            return
        waited = self._clock() - self._held_since
        for listener in self.on_resume:
            listener(waited)
