"""The CXone Data Actions API: read and patch an action, submit a job.

Answers are sorted into the project's error types here, so the layers above
decide by type alone: ``ThrottledError`` (429), ``UnauthorizedError`` (401),
``RetryableApiError`` (5xx, timeouts, connection failures) and
``RejectedError`` (every other 4xx, with the body cut to a readable length).
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from processor import telemetry
from processor.auth import TokenSource
from processor.errors import (
    RejectedError,
    RetryableApiError,
    ThrottledError,
    UnauthorizedError,
)
from processor.jobs import JobRequest
from processor.metrics import Metrics

MAX_ERROR_BODY_CHARS = 2000
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 120.0

ACTION_TEMPLATE = "/api/v2/data-actions/{id}"
JOBS_TEMPLATE = "/api/v2/data-actions/{id}/jobs"

_MAX_CACHED_ACTIONS = 1024
_DEFAULT_TIMEOUT = httpx.Timeout(30.0)
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class Action:
    action_id: str
    status: str


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    job_id: str
    status: str
    http_status: int
    created: str | None


class CxoneApi:
    """Calls the Data Actions endpoints with a bearer token from ``tokens``.

    Requests go straight to the httpx ``transport``: a client's redirects,
    cookies, auth flows and event hooks are nothing these calls want, and
    on the per-job path they cost more than the rest of the job's
    bookkeeping together.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        tokens: TokenSource,
        base_url: str,
        timeout: httpx.Timeout = _DEFAULT_TIMEOUT,
        metrics: Metrics | None = None,
    ) -> None:
        self._transport = transport
        self._tokens = tokens
        self._base = base_url
        self._metrics = metrics
        self._urls: dict[str, tuple[_Endpoint, _Endpoint]] = {}
        # The timeouts, carried by each request built here, as a client would.
        self._extensions = {"timeout": timeout.as_dict()}

    async def read_action(self, action_id: str) -> Action:
        """``GET /api/v2/data-actions/{id}``."""
        action_url, _ = self._urls_for(action_id)
        answer = await self._send("GET", action_url, None, {}, 0)
        payload = _json_body(answer)
        status = payload.get("status")
        if not isinstance(status, str):
            raise RetryableApiError("action answer has no status", answer.status_code)
        return Action(action_id, status)

    async def describe_action(self, action_id: str) -> dict[str, Any]:
        """``GET /api/v2/data-actions/{id}``: the action as the API describes it."""
        action_url, _ = self._urls_for(action_id)
        return _json_body(await self._send("GET", action_url, None, {}, 0))

    async def patch_action(
        self, action_id: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """``PATCH /api/v2/data-actions/{id}``: the updated action."""
        action_url, _ = self._urls_for(action_id)
        body = json.dumps(patch).encode()
        return _json_body(await self._send("PATCH", action_url, body, {}, 0))

    async def submit_job(
        self, request: JobRequest, resend_count: int = 0
    ) -> SubmittedJob:
        """``POST /api/v2/data-actions/{id}/jobs``, keyed by the request id.

        ``resend_count`` is how many times this job was sent before (after
        429s, 401s or faults); it goes on the request's span.
        """
        _, jobs_url = self._urls_for(request.action_id)
        headers = {"Idempotency-Key": request.request_id}
        answer = await self._send(
            "POST", jobs_url, request.body(), headers, resend_count
        )
        payload = _json_body(answer)
        job_id = payload.get("id")
        if not isinstance(job_id, str) or not job_id:
            # The job may exist; the same Idempotency-Key finds it next time.
            raise RetryableApiError("job answer has no id", answer.status_code)
        return SubmittedJob(
            job_id,
            str(payload.get("status", "")),
            answer.status_code,
            _text_or_none(payload.get("createdTimestamp")),
        )

    async def _send(
        self,
        method: str,
        endpoint: _Endpoint,
        body: bytes | None,
        headers: dict[str, str],
        resend_count: int,
    ) -> httpx.Response:
        token = await self._tokens.token()
        all_headers = {**_JSON, **headers, "Authorization": f"Bearer {token}"}
        request = httpx.Request(
            method,
            endpoint.url,
            content=body,
            headers=all_headers,
            extensions=self._extensions,
        )
        started = time.perf_counter()
        with telemetry.http_span(
            method, endpoint.template, endpoint.text, resend_count
        ) as span:
            try:
                answer = await self._transport.handle_async_request(request)
                await answer.aread()
            except httpx.TransportError as exc:
                telemetry.failed(span, exc)
                self._observe(method, started, type(exc).__name__)
                raise _unanswered(method, exc) from None
            telemetry.answered(span, answer.status_code)
        self._observe(method, started, str(answer.status_code))

        if answer.status_code == 401:
            self._tokens.invalidate(token)
        _raise_for(answer)
        return answer

    def _observe(self, method: str, started: float, outcome: str) -> None:
        if self._metrics is not None and method == "POST":
            self._metrics.api_latency.record(
                time.perf_counter() - started, {"outcome": outcome}
            )

    def _urls_for(self, action_id: str) -> tuple[_Endpoint, _Endpoint]:
        urls = self._urls.get(action_id)
        if urls is None:
            if len(self._urls) >= _MAX_CACHED_ACTIONS:
                self._urls.clear()
            # The id was checked against the contract's pattern already; quoting
            # keeps even a slipped-through one inside its path segment.
            action = f"{self._base}/api/v2/data-actions/{quote(action_id, safe='')}"
            urls = self._urls[action_id] = (
                _Endpoint(httpx.URL(action), action, ACTION_TEMPLATE),
                _Endpoint(httpx.URL(f"{action}/jobs"), f"{action}/jobs", JOBS_TEMPLATE),
            )
        return urls


@dataclass(frozen=True, slots=True)
class _Endpoint:
    url: httpx.URL
    text: str
    template: str


def _unanswered(method: str, exc: httpx.TransportError) -> RetryableApiError:
    if isinstance(exc, httpx.TimeoutException):
        return RetryableApiError(f"{method} timed out ({type(exc).__name__})")
    return RetryableApiError(f"{method} failed: {type(exc).__name__}: {exc}")


def _raise_for(answer: httpx.Response) -> None:
    status = answer.status_code
    if status < 400:
        return
    body = answer.text[:MAX_ERROR_BODY_CHARS]
    if status == 429:
        wait = retry_after_seconds(answer.headers.get("Retry-After"))
        raise ThrottledError(f"429 throttled, retry after {wait:.1f} s", wait, body)
    if status == 401:
        raise UnauthorizedError("401 unauthorized", status, body)
    if status >= 500:
        raise RetryableApiError(
            f"{status} {answer.reason_phrase}".strip(), status, body
        )
    raise RejectedError(f"{status} {answer.reason_phrase}".strip(), status, body)


def retry_after_seconds(value: str | None, now: float | None = None) -> float:
    """``Retry-After`` as seconds: a number or an HTTP date, within sane bounds."""
    if value is None or not value.strip():
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()

    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, time.time() if now is None else now)
    if seconds is None or not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    return moment.timestamp() - now


def _json_body(answer: httpx.Response) -> dict[str, Any]:
    try:
        payload = answer.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise RetryableApiError(
            f"{answer.status_code} answer is not a JSON object", answer.status_code
        )
    return payload


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
