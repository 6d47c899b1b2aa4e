"""The simulated CXone Data Actions API, free of any HTTP server.

Each endpoint is a method that takes what the request carried and returns a
``Reply``. The server in ``server.py`` only moves bytes; everything a test
can assert on (status codes, headers, counts) is decided here, on an
injected clock, so it can be tested without sockets or sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from processor.simulator.behaviour import (
    ACTION_STATUSES,
    Behaviour,
    Window,
)
from processor.simulator.counters import Counters
from processor.simulator.limits import TokenBucket

Clock = Callable[[], float]

_MAX_LIVE_TOKENS = 10_000
_TIMELINE_LENGTH = 200_000
_ISSUED_TOKENS_KEPT = 10_000


@dataclass
class Reply:
    """An answer: status, JSON body, headers, and how long to hold it back."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class _Action:
    status: str
    config: dict[str, Any]
    updated: str


@dataclass(frozen=True)
class _Job:
    job_id: str
    action_id: str
    created: str


class SimulatedApi:
    """State and rules of one simulated API: tokens, actions, jobs, counts."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._started = clock()
        self.counters = Counters()
        self._tokens: dict[str, tuple[float, frozenset[str]]] = {}
        self._jobs: dict[tuple[str, str], _Job] = {}
        # Accepted submissions in order: ("in" | "out", Idempotency-Key, time).
        self.timeline: deque[tuple[str, str, float]] = deque(maxlen=_TIMELINE_LENGTH)
        # Every token handed out, newest last, so a test can look for leaks.
        self.issued_tokens: deque[str] = deque(maxlen=_ISSUED_TOKENS_KEPT)
        self._extra_outages: list[tuple[str, Window]] = []
        self.configure(behaviour or Behaviour())

    @property
    def behaviour(self) -> Behaviour:
        return self._behaviour

    def configure(self, behaviour: Behaviour) -> None:
        """Switch to new rules; actions are reset to the ones it lists."""
        self._behaviour = behaviour
        self._rng = random.Random(behaviour.seed)
        self._bucket = None
        if behaviour.rate_limit_per_s is not None:
            self._bucket = TokenBucket(
                behaviour.rate_limit_per_s, behaviour.burst, self._clock
            )
        now = self._timestamp()
        self._actions = {
            action_id: _Action(status, {}, now)
            for action_id, status in behaviour.actions.items()
        }

    def reset(self) -> None:
        """Forget counts, jobs, tokens and ad-hoc outages; keep the rules."""
        self.counters = Counters()
        self._tokens.clear()
        self.issued_tokens.clear()
        self._jobs.clear()
        self.timeline.clear()
        self._extra_outages.clear()
        self._started = self._clock()
        self.configure(self._behaviour)

    def start_outage(self, duration_s: float, target: str = "api") -> None:
        """Fail ``target`` ("api" or "token") from now for ``duration_s``."""
        if target not in ("api", "token"):
            raise ValueError(f"outage target {target!r} is neither 'api' nor 'token'")
        self._extra_outages.append((target, Window(self.elapsed_s(), duration_s)))

    def elapsed_s(self) -> float:
        return self._clock() - self._started

    # -- the token endpoint -------------------------------------------------

    def issue_token(self, form: Mapping[str, str]) -> Reply:
        """``POST /oauth/v2/token`` with a form-encoded client credentials grant."""
        self.counters.token_requests += 1
        behaviour = self._behaviour

        if self._in_outage("token"):
            self.counters.token_failures += 1
            return Reply(503, {"error": "temporarily_unavailable"})
        if form.get("grant_type") != "client_credentials":
            self.counters.token_failures += 1
            return Reply(400, {"error": "unsupported_grant_type"})
        if not _same(form.get("client_id"), behaviour.client_id) or not _same(
            form.get("client_secret"), behaviour.client_secret
        ):
            self.counters.token_failures += 1
            return Reply(401, {"error": "invalid_client"})

        requested = form.get("scope", "").split() or list(behaviour.allowed_scopes)
        refused = [
            scope for scope in requested if scope not in behaviour.allowed_scopes
        ]
        if refused:
            self.counters.token_failures += 1
            return Reply(400, {"error": "invalid_scope", "scope": " ".join(refused)})

        token = self._new_token(frozenset(requested))
        self.counters.tokens_issued += 1
        return Reply(
            200,
            {
                "access_token": token,
                "expires_in": behaviour.token_lifetime_s,
                "token_type": "Bearer",
                "scope": " ".join(requested),
            },
        )

    # -- action endpoints ----------------------------------------------------

    def read_action(self, authorization: str | None, action_id: str) -> Reply:
        """``GET /api/v2/data-actions/{id}``."""
        self.counters.action_reads += 1
        denied = self._authorize(authorization, "data-actions:read")
        if denied is not None:
            return denied

        action = self._action(action_id)
        if action is None:
            return self._unknown_action(action_id)
        return Reply(200, _action_body(action_id, action))

    def patch_action(
        self, authorization: str | None, action_id: str, body: bytes
    ) -> Reply:
        """``PATCH /api/v2/data-actions/{id}`` with ``{"id", "status", "config"}``."""
        self.counters.action_patches += 1
        denied = self._authorize(authorization, "data-actions:write")
        if denied is not None:
            return denied

        action = self._action(action_id)
        if action is None:
            return self._unknown_action(action_id)
        problem, patch = _parse_patch(action_id, body)
        if problem is not None:
            return Reply(400, {"error": "invalid_request", "message": problem})

        action.status = patch["status"]
        action.config = patch["config"]
        action.updated = self._timestamp()
        self._actions[action_id] = action
        return Reply(200, _action_body(action_id, action))

    # -- job submissions -----------------------------------------------------

    def begin_job(
        self,
        authorization: str | None,
        action_id: str,
        idempotency_key: str | None,
        body: bytes,
    ) -> Reply:
        """``POST /api/v2/data-actions/{id}/jobs``; pair with ``end_job``.

        The request counts as in flight from here until ``end_job``, which
        the server calls once the reply (after its delay) has been sent.
        """
        self.counters.submissions += 1
        self.counters.enter(action_id, self._clock())

        refused = self._refuse_request(authorization, action_id, body)
        if refused is None:
            refused = self._refuse_by_limits()
        if refused is None:
            refused = self._fail_on_purpose(action_id)
        if refused is not None:
            return refused
        return self._accept(action_id, idempotency_key)

    def end_job(
        self, action_id: str, reply: Reply | None = None, key: str | None = None
    ) -> None:
        """The answer to a job submission has been sent."""
        self.counters.leave(action_id, self._clock())
        if reply is not None and reply.status == 202 and key:
            self.timeline.append(("out", key, self._clock()))

    def unknown_request(self) -> Reply:
        """Any method and path outside the documented API."""
        self.counters.unknown_paths += 1
        return Reply(404, {"error": "not_found"})

    def stats(self) -> dict[str, Any]:
        """Every count, plus what a reader needs to make sense of them."""
        return {
            **self.counters.snapshot(self._clock()),
            "uptime_s": round(self.elapsed_s(), 3),
            "jobs_stored": len(self._jobs),
            "live_tokens": len(self._tokens),
            "behaviour": self._behaviour.describe(),
        }

    # -- the steps ------------------------------------------------------------

    def _authorize(self, authorization: str | None, scope: str) -> Reply | None:
        scheme, _, token = (authorization or "").partition(" ")
        granted = self._tokens.get(token) if scheme.lower() == "bearer" else None

        if granted is None:
            self.counters.unauthorized += 1
            return Reply(
                401, {"error": "invalid_token", "message": "missing or unknown token"}
            )
        expires_at, scopes = granted
        if self._clock() >= expires_at:
            self.counters.unauthorized += 1
            self.counters.expired_tokens += 1
            return Reply(401, {"error": "invalid_token", "message": "token expired"})
        if scope not in scopes:
            self.counters.forbidden += 1
            return Reply(403, {"error": "insufficient_scope", "scope": scope})
        return None

    def _refuse_request(
        self, authorization: str | None, action_id: str, body: bytes
    ) -> Reply | None:
        denied = self._authorize(authorization, "data-actions:execute")
        if denied is not None:
            return denied

        action = self._action(action_id)
        if action is None:
            return self._unknown_action(action_id)
        if action.status != "PUBLISHED":
            self.counters.unpublished += 1
            message = f"action {action_id} is {action.status}"
            return Reply(409, {"error": "action_not_published", "message": message})

        if not _valid_job_body(body):
            self.counters.bad_requests += 1
            message = 'body must be {"input": {...}, "options": {...}}'
            return Reply(400, {"error": "invalid_request", "message": message})
        return None

    def _fail_on_purpose(self, action_id: str) -> Reply | None:
        status = self._behaviour.failing_actions.get(action_id)
        if status is None:
            return None
        self.counters.failed_on_purpose += 1
        return Reply(status, {"error": "rejected", "message": f"{action_id} fails"})

    def _refuse_by_limits(self) -> Reply | None:
        counters = self.counters
        if self._in_outage("api"):
            counters.outage_rejections += 1
            return Reply(503, {"error": "service_unavailable", "message": "outage"})

        if self._bucket is not None:
            wait_s = self._bucket.take()
            if wait_s > 0:
                counters.throttled_rate += 1
                return self._throttled(wait_s, "rate limit exceeded")

        cap = self._behaviour.max_concurrency
        if cap is not None and counters.in_flight > cap:
            counters.throttled_concurrency += 1
            return self._throttled(1.0, "too many concurrent requests")

        if (
            self._behaviour.error_rate
            and self._rng.random() < self._behaviour.error_rate
        ):
            counters.faults += 1
            status = self._rng.choice((500, 503))
            return Reply(
                status, {"error": "internal_error", "message": "injected fault"}
            )
        return None

    def _accept(self, action_id: str, idempotency_key: str | None) -> Reply:
        counters = self.counters
        key = (action_id, idempotency_key) if idempotency_key else None
        job = self._jobs.get(key) if key is not None else None

        if idempotency_key:
            self.timeline.append(("in", idempotency_key, self._clock()))
        if job is not None:
            counters.duplicates += 1
        else:
            counters.accepted += 1
            if key is None:
                counters.accepted_without_key += 1
            job = _Job(f"job_{counters.accepted}", action_id, self._timestamp())
            if key is not None:
                self._jobs[key] = job

        return Reply(202, _job_body(job), delay_s=self._latency_s(action_id))

    def _latency_s(self, action_id: str) -> float:
        latency = self._behaviour.latency
        mean = self._behaviour.action_latency_ms.get(action_id)
        if mean is not None:
            latency = dataclasses.replace(latency, mean_ms=mean)
        return latency.sample_s(self._rng)

    def _throttled(self, wait_s: float, message: str) -> Reply:
        headers: dict[str, str] = {}
        if self._behaviour.retry_after_s is not None:
            wait_s = self._behaviour.retry_after_s
        match self._behaviour.retry_after:
            case "seconds":
                headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
            case "date":
                moment = datetime.fromtimestamp(
                    math.ceil(self._wall_clock() + max(wait_s, 1.0)), UTC
                )
                headers["Retry-After"] = format_datetime(moment, usegmt=True)
            case "absent":
                pass
        return Reply(429, {"error": "too_many_requests", "message": message}, headers)

    def _in_outage(self, target: str) -> bool:
        elapsed = self.elapsed_s()
        scheduled = (
            self._behaviour.outages
            if target == "api"
            else self._behaviour.token_outages
        )
        if any(window.covers(elapsed) for window in scheduled):
            return True
        return any(
            kind == target and window.covers(elapsed)
            for kind, window in self._extra_outages
        )

    def _unknown_action(self, action_id: str) -> Reply:
        self.counters.unknown_actions += 1
        message = f"unknown action {action_id}"
        return Reply(404, {"error": "not_found", "message": message})

    def _action(self, action_id: str) -> _Action | None:
        action = self._actions.get(action_id)
        if action is None and self._behaviour.other_actions is not None:
            action = _Action(self._behaviour.other_actions, {}, self._timestamp())
        return action

    def _new_token(self, scopes: frozenset[str]) -> str:
        now = self._clock()
        if len(self._tokens) >= _MAX_LIVE_TOKENS:
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (now + self._behaviour.token_lifetime_s, scopes)
        self.issued_tokens.append(token)
        return token

    def _timestamp(self) -> str:
        moment = datetime.fromtimestamp(self._wall_clock(), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given, expected)


def _action_body(action_id: str, action: _Action) -> dict[str, Any]:
    return {
        "id": action_id,
        "status": action.status,
        "config": action.config,
        "updatedTimestamp": action.updated,
    }


def _job_body(job: _Job) -> dict[str, Any]:
    return {
        "id": job.job_id,
        "actionId": job.action_id,
        "status": "QUEUED",
        "createdTimestamp": job.created,
    }


def _valid_job_body(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("input"), dict)
        and isinstance(payload.get("options", {}), dict)
    )


def _parse_patch(action_id: str, body: bytes) -> tuple[str | None, dict[str, Any]]:
    try:
        patch = json.loads(body)
    except ValueError:
        return "body is not JSON", {}
    if not isinstance(patch, dict):
        return "body must be a JSON object", {}
    if patch.get("id") != action_id:
        return f"id must be {action_id!r}, as in the path", {}
    if patch.get("status") not in ACTION_STATUSES:
        return f"status must be one of {', '.join(ACTION_STATUSES)}", {}
    if not isinstance(patch.get("config"), dict):
        return "config must be an object", {}
    return None, patch
