"""How the simulated CXone API behaves: credentials, limits, faults, latency.

A ``Behaviour`` is a frozen value. The simulator swaps it whole when a test
or benchmark changes it mid-run, so a request always sees one consistent set
of rules.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ACTION_STATUSES = ("DRAFT", "PUBLISHED", "DEPRECATED")
ALL_SCOPES = ("data-actions:read", "data-actions:write", "data-actions:execute")
ACTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

Distribution = Literal["constant", "uniform", "normal", "exponential"]
RetryAfterStyle = Literal["seconds", "date", "absent"]

DEFAULT_ACTIONS: Mapping[str, str] = {
    "action_123": "PUBLISHED",
    "action_a": "PUBLISHED",
    "action_b": "PUBLISHED",
    "action_c": "PUBLISHED",
    "action_draft": "DRAFT",
    "action_deprecated": "DEPRECATED",
}


class BehaviourError(ValueError):
    """A behaviour setting is out of range; the message names it."""


@dataclass(frozen=True)
class Latency:
    """How long an accepted job submission takes to answer, in milliseconds.

    ``jitter_ms`` is the half-width for ``uniform`` and the standard
    deviation for ``normal``; ``exponential`` uses ``mean_ms`` alone.
    """

    mean_ms: float = 0.0
    jitter_ms: float = 0.0
    distribution: Distribution = "normal"

    def sample_s(self, rng: random.Random) -> float:
        """One latency draw in seconds, never negative."""
        mean, jitter = self.mean_ms, self.jitter_ms
        if mean <= 0 and jitter <= 0:
            return 0.0

        match self.distribution:
            case "constant":
                drawn = mean
            case "uniform":
                drawn = rng.uniform(mean - jitter, mean + jitter)
            case "normal":
                drawn = rng.gauss(mean, jitter)
            case "exponential":
                drawn = rng.expovariate(1.0 / mean) if mean > 0 else 0.0
        return max(0.0, drawn) / 1000.0


@dataclass(frozen=True)
class Window:
    """A span of time, in seconds since the simulator started."""

    start_s: float
    duration_s: float

    def covers(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.start_s + self.duration_s

    @classmethod
    def parse(cls, text: str) -> Window:
        """``START:DURATION`` in seconds, as in ``30:10``."""
        start, sep, duration = text.partition(":")
        try:
            window = cls(float(start), float(duration))
        except ValueError:
            window = None
        if not sep or window is None or window.start_s < 0 or window.duration_s <= 0:
            raise BehaviourError(
                f"outage {text!r} is not START:DURATION in seconds, as in 30:10"
            )
        return window


@dataclass(frozen=True)
class Behaviour:
    """Every rule the simulated API follows."""

    client_id: str = "simulator-client"
    client_secret: str = "simulator-secret"  # noqa: S105 - a local test credential
    allowed_scopes: tuple[str, ...] = ALL_SCOPES
    token_lifetime_s: int = 3600

    actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    # Status of any well-formed action id not listed in ``actions``; None
    # answers 404, as the real API does for an unknown action.
    other_actions: str | None = None

    latency: Latency = Latency()
    # Per-action overrides: a mean latency (ms), or a status every job answers.
    action_latency_ms: Mapping[str, float] = field(default_factory=dict)
    failing_actions: Mapping[str, int] = field(default_factory=dict)
    rate_limit_per_s: float | None = None
    rate_burst: float | None = None
    max_concurrency: int | None = None
    retry_after: RetryAfterStyle = "seconds"
    # A fixed wait every 429 asks for, instead of the time to the next token.
    retry_after_s: float | None = None
    error_rate: float = 0.0
    outages: tuple[Window, ...] = ()
    token_outages: tuple[Window, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        _check(self.token_lifetime_s >= 1, "token_lifetime_s must be at least 1")
        _check(0.0 <= self.error_rate <= 1.0, "error_rate must be between 0 and 1")
        _check(
            self.rate_limit_per_s is None or self.rate_limit_per_s > 0,
            "rate_limit_per_s must be positive",
        )
        _check(
            self.rate_burst is None or self.rate_burst >= 1,
            "rate_burst must be at least 1",
        )
        _check(
            self.max_concurrency is None or self.max_concurrency >= 1,
            "max_concurrency must be at least 1",
        )
        _check(self.latency.mean_ms >= 0, "latency mean_ms must not be negative")
        _check(self.latency.jitter_ms >= 0, "latency jitter_ms must not be negative")
        for action_id, status in self.actions.items():
            _check(
                ACTION_ID_PATTERN.match(action_id) is not None,
                f"action id {action_id!r} is not a valid id",
            )
            _check(status in ACTION_STATUSES, f"action status {status!r} is unknown")
        for action_id, code in self.failing_actions.items():
            _check(
                400 <= code <= 599, f"failing_actions {action_id}: {code} is no error"
            )
        _check(
            self.other_actions is None or self.other_actions in ACTION_STATUSES,
            f"other_actions {self.other_actions!r} is not an action status",
        )

    @property
    def burst(self) -> float:
        """Tokens the rate limit's bucket holds: a tenth of a second by default."""
        if self.rate_burst is not None:
            return self.rate_burst
        return max(1.0, math.ceil((self.rate_limit_per_s or 0.0) / 10))

    def changed(self, changes: Mapping[str, Any]) -> Behaviour:
        """A copy with ``changes`` applied, given as plain JSON-like values."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise BehaviourError(f"unknown behaviour setting(s): {', '.join(unknown)}")

        converted = {name: _convert(name, value) for name, value in changes.items()}
        try:
            return dataclasses.replace(self, **converted)
        except TypeError as exc:
            raise BehaviourError(str(exc)) from exc

    def describe(self) -> dict[str, Any]:
        """The behaviour as JSON-ready values, with the secret hidden."""
        described = dataclasses.asdict(self)
        described["client_secret"] = "***"  # noqa: S105 - the mask itself
        described["actions"] = dict(self.actions)
        described["action_latency_ms"] = dict(self.action_latency_ms)
        described["failing_actions"] = dict(self.failing_actions)
        return described


def _convert(name: str, value: Any) -> Any:
    if name == "latency" and isinstance(value, Mapping):
        return Latency(**value)
    if name in ("outages", "token_outages"):
        return tuple(_window(item) for item in value)
    if name in ("allowed_scopes",):
        return tuple(value)
    return value


def _window(item: Any) -> Window:
    if isinstance(item, Window):
        return item
    if isinstance(item, str):
        return Window.parse(item)
    if isinstance(item, Mapping):
        return Window(float(item["start_s"]), float(item["duration_s"]))
    raise BehaviourError(f"outage {item!r} is neither START:DURATION nor an object")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BehaviourError(message)
