"""What the processor knows of each action's status, cached for a while.

A job is only submitted for a ``PUBLISHED`` action. The status is read once
per action and time-to-live, however many jobs for that action arrive at
once; an unknown action (404) is remembered as well, so a flood of requests
for it costs one look-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from processor.cxone import CxoneApi
from processor.errors import RejectedError

PUBLISHED = "PUBLISHED"
# Distinct actions remembered at once; expired ones make room first.
_MAX_ACTIONS = 10_000


@dataclass(frozen=True, slots=True)
class ActionStatus:
    """An action's status, or ``None`` when the API does not know it."""

    status: str | None

    @property
    def known(self) -> bool:
        return self.status is not None


class ActionCache:
    """Reads actions through ``api`` and keeps each answer for ``ttl_s``."""

    def __init__(
        self,
        api: CxoneApi,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._ttl_s = ttl_s
        self._clock = clock
        self._known: dict[str, tuple[float, ActionStatus]] = {}
        self._reading: dict[str, asyncio.Future[ActionStatus]] = {}

    async def status(self, action_id: str) -> ActionStatus:
        """The action's status; raises the API's error when it cannot be read."""
        while True:
            cached = self._known.get(action_id)
            if cached is not None and self._clock() < cached[0]:
                return cached[1]

            pending = self._reading.get(action_id)
            if pending is None:
                return await self._read_once(action_id)

            # Wait for the job already reading it; if that job was cancelled,
            # go round and read it ourselves.
            await asyncio.wait([pending])
            if not pending.cancelled():
                return pending.result()

    async def _read_once(self, action_id: str) -> ActionStatus:
        future: asyncio.Future[ActionStatus] = (
            asyncio.get_running_loop().create_future()
        )
        self._reading[action_id] = future
        try:
            answer = await self._read(action_id)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # waiters see it; this marks it retrieved
            raise
        finally:
            del self._reading[action_id]

        self._remember(action_id, answer)
        future.set_result(answer)
        return answer

    def _remember(self, action_id: str, answer: ActionStatus) -> None:
        now = self._clock()
        if len(self._known) >= _MAX_ACTIONS:
            self._known = {k: v for k, v in self._known.items() if v[0] > now}
        self._known[action_id] = (now + self._ttl_s, answer)

    async def _read(self, action_id: str) -> ActionStatus:
        try:
            action = await self._api.read_action(action_id)
        except RejectedError as exc:
            if exc.status == 404:
                return ActionStatus(None)
            raise
        return ActionStatus(action.status)
