"""Submitting one job: action check, retries with backoff, 429s and 401s.

Attempts are spent only on faults worth retrying (``RetryableApiError``),
with exponential backoff and full jitter from tenacity. A 429 waits out its
``Retry-After`` on the shared throttle and a 401 fetches a new token; neither
spends an attempt, and neither dead-letters a job by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from processor.actions import PUBLISHED, ActionCache
from processor.cxone import CxoneApi
from processor.errors import (
    RejectedError,
    RetryableApiError,
    ThrottledError,
    UnauthorizedError,
)
from processor.flow import FlowControl
from processor.jobs import JobRequest
from processor.outcomes import Failed, Outcome, Reason, Submitted

# A fresh token answered 401 this many times in a row is not an expiry.
_MAX_UNAUTHORIZED_IN_A_ROW = 3

Sleep = Callable[[float], Awaitable[None]]
RetryListener = Callable[[JobRequest, int, float, BaseException], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff for faults worth retrying."""

    max_attempts: int
    initial_s: float
    max_s: float

    def retrying(
        self, sleep: Sleep, before_sleep: Callable[[RetryCallState], None]
    ) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            # Full jitter: uniform between 0 and the exponential bound.
            wait=wait_random_exponential(multiplier=self.initial_s, max=self.max_s),
            retry=retry_if_exception_type(RetryableApiError),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


@dataclass(slots=True)
class _Job:
    """One job's submission: what is sent, since when, and how many times."""

    request: JobRequest
    started: float
    sends: int = 0


class Submitter:
    """Turns a valid job request into an outcome."""

    def __init__(
        self,
        api: CxoneApi,
        actions: ActionCache,
        flow: FlowControl,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        on_retry: RetryListener | None = None,
        on_throttled: Callable[[float], None] | None = None,
    ) -> None:
        self._api = api
        self._actions = actions
        self._flow = flow
        self._policy = policy
        self._sleep = sleep
        self._on_retry = on_retry
        self._on_throttled = on_throttled

    async def submit(self, request: JobRequest) -> Outcome:
        job = _Job(request, time.perf_counter())

        # Most jobs succeed at once, so the first attempt runs outside
        # tenacity, whose machinery costs more than the rest of the job's
        # bookkeeping; a fault hands over to it as its attempt 1.
        try:
            return await self._attempt(job, 1)
        except RetryableApiError as first:
            return await self._retry(job, first)
        except RejectedError as exc:
            return _rejected(exc, 1)

    async def _retry(self, job: _Job, first: RetryableApiError) -> Outcome:
        """Attempt 1 failed with ``first``; tenacity backs off and runs the rest."""
        pending: RetryableApiError | None = first
        attempts = 1

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            if self._on_retry is not None and error is not None:
                self._on_retry(job.request, state.attempt_number, wait, error)

        try:
            async for attempt in self._policy.retrying(self._sleep, before_sleep):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if pending is not None:
                        replayed, pending = pending, None
                        raise replayed
                    outcome = await self._attempt(job, attempts)
        except RetryableApiError as exc:
            return Failed(
                Reason.RETRIES_EXHAUSTED,
                f"gave up after {attempts} attempts; last: {_describe(exc)}",
                exc.status,
                attempts,
            )
        except RejectedError as exc:
            return _rejected(exc, attempts)
        return outcome

    async def _attempt(self, job: _Job, attempts: int) -> Outcome:
        """One attempt: 429s, 401s and outage faults repeat it without spending it."""
        request = job.request
        unauthorized = 0
        while True:
            probe = await self._flow.admit()
            sent = self._flow.clock()
            try:
                refused = await self._check_action(request, attempts)
                if refused is not None:
                    self._flow.unused(probe)
                    return refused
                job.sends += 1
                accepted = await self._api.submit_job(request, job.sends - 1)
            except ThrottledError as exc:
                self._flow.throttled(sent, exc.retry_after_s, request.action_id)
                if self._on_throttled is not None:
                    self._on_throttled(exc.retry_after_s)
                continue
            except UnauthorizedError as exc:
                self._flow.answered(sent, request.action_id)
                unauthorized += 1
                if unauthorized >= _MAX_UNAUTHORIZED_IN_A_ROW:
                    raise _persistent_401(exc, unauthorized) from None
                continue
            except RetryableApiError:
                if self._flow.faulted(request.action_id):
                    continue  # an outage is not this job's fault
                raise
            except RejectedError:
                self._flow.answered(sent, request.action_id)
                raise
            except BaseException:
                self._flow.unused(probe)
                raise
            else:
                self._flow.accepted(sent, request.action_id)
                latency_ms = (time.perf_counter() - job.started) * 1000
                return Submitted(accepted, attempts, latency_ms)
            finally:
                # Every way out of the attempt above gives its slot back, and
                # nothing between the answer and here waits on anything.
                self._flow.release()

    async def _check_action(self, request: JobRequest, attempts: int) -> Failed | None:
        action = await self._actions.status(request.action_id)
        if not action.known:
            return Failed(
                Reason.UNKNOWN_ACTION,
                f"action {request.action_id} does not exist (404)",
                404,
                attempts,
            )
        if action.status != PUBLISHED:
            return Failed(
                Reason.ACTION_NOT_PUBLISHED,
                f"action {request.action_id} is {action.status}, not {PUBLISHED}",
                None,
                attempts,
            )
        return None


def _persistent_401(exc: UnauthorizedError, times: int) -> RejectedError:
    return RejectedError(f"401 even with a fresh token, {times} times", 401, exc.body)


def _rejected(exc: RejectedError, attempts: int) -> Failed:
    reason = Reason.UNKNOWN_ACTION if exc.status == 404 else Reason.REJECTED
    return Failed(reason, _describe(exc), exc.status, attempts)


def _describe(exc: RetryableApiError | RejectedError) -> str:
    return f"{exc}: {exc.body}" if exc.body else str(exc)
