"""What the simulated API counts, for tests and benchmarks to assert on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Counters:
    """Every count the simulator keeps; all start at zero."""

    # Job submissions (POST .../jobs), whatever their answer.
    submissions: int = 0
    # New jobs created; a repeated Idempotency-Key creates none.
    accepted: int = 0
    accepted_without_key: int = 0
    # Submissions whose Idempotency-Key named an existing job.
    duplicates: int = 0
    # 429s from the global rate limit and from the concurrency cap.
    throttled_rate: int = 0
    throttled_concurrency: int = 0
    # Injected 500/503s, and 503s during an outage.
    faults: int = 0
    outage_rejections: int = 0
    # 401s (of which expired tokens), 403s, 404s for unknown actions.
    unauthorized: int = 0
    expired_tokens: int = 0
    forbidden: int = 0
    unknown_actions: int = 0
    unpublished: int = 0
    # Submissions answered with a configured error status (failing_actions).
    failed_on_purpose: int = 0
    bad_requests: int = 0
    # Requests to any method and path outside the documented API.
    unknown_paths: int = 0
    action_reads: int = 0
    action_patches: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    token_failures: int = 0
    # Job submissions being answered now, and the most there ever were.
    in_flight: int = 0
    max_concurrent: int = 0
    in_flight_by_action: dict[str, int] = field(default_factory=dict)
    max_concurrent_by_action: dict[str, int] = field(default_factory=dict)
    # Seconds job submissions have been held, summed over all of them: its
    # growth over a window, divided by the window, is the mean concurrency;
    # divided by the answers given in it, the mean time to answer.
    in_flight_s: float = 0.0

    @property
    def throttled(self) -> int:
        return self.throttled_rate + self.throttled_concurrency

    def enter(self, action_id: str, now: float) -> None:
        # Held time is kept as the sum of leave times less enter times; the
        # submissions still held are added at their snapshot.
        self.in_flight_s -= now
        self.in_flight += 1
        self.max_concurrent = max(self.max_concurrent, self.in_flight)

        current = self.in_flight_by_action.get(action_id, 0) + 1
        self.in_flight_by_action[action_id] = current
        if current > self.max_concurrent_by_action.get(action_id, 0):
            self.max_concurrent_by_action[action_id] = current

    def leave(self, action_id: str, now: float) -> None:
        self.in_flight_s += now
        self.in_flight -= 1
        remaining = self.in_flight_by_action[action_id] - 1
        if remaining:
            self.in_flight_by_action[action_id] = remaining
        else:
            del self.in_flight_by_action[action_id]

    def snapshot(self, now: float) -> dict[str, Any]:
        counts = dataclasses.asdict(self)
        counts["throttled"] = self.throttled
        counts["in_flight_s"] = round(self.in_flight_s + self.in_flight * now, 6)
        return counts
