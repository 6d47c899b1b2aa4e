"""The processor's settings: one frozen, validated value built once at start.

Sources, lowest precedence first: defaults, a TOML file (``--config``), the
environment, command-line flags. Every setting has an environment name; the
TOML file uses the same names, in any case (``PROCESSOR_MAX_IN_FLIGHT = 64``
or ``processor_max_in_flight = 64``). Any ``KAFKA_*`` name becomes a
librdkafka property, and this module is the only place that mapping lives.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from processor.errors import SettingsError

Ordering = Literal["unordered", "key", "partition"]

DEFAULT_SCOPE = "data-actions:read data-actions:write data-actions:execute"
_ACTION_CAP_KEY = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,127})$")


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything ``cxone-processor run`` needs, checked before it starts."""

    cxone_base_url: str
    cxone_client_id: str
    cxone_client_secret: Secret
    cxone_scope: str = DEFAULT_SCOPE
    cxone_org_id: str | None = None
    cxone_ca_bundle: str | None = None
    # Hidden from repr: it may hold SASL and TLS passwords.
    kafka: Mapping[str, str] = field(default_factory=dict, repr=False)
    group_id: str = "cxone-processor"
    requests_topic: str = "cxone.jobs.requests"
    results_topic: str = "cxone.jobs.results"
    deadletter_topic: str = "cxone.jobs.deadletter"
    audit_topic: str = "cxone.jobs.audit"
    max_in_flight: int = 32
    action_concurrency: Mapping[str, int] = field(default_factory=dict)
    max_attempts: int = 5
    ordering: Ordering = "unordered"
    schema_registry_url: str | None = None
    grace_period_s: float = 30.0
    action_cache_ttl_s: float = 60.0
    request_timeout_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    commit_interval_s: float = 1.0
    buffer_max_records: int = 2000
    buffer_max_bytes: int = 64 * 1024 * 1024
    max_request_bytes: int = 512 * 1024
    drain_rate_window_s: float = 60.0
    limit_probe_interval_s: float = 30.0
    http_host: str = "127.0.0.1"
    http_port: int = 9464
    instance_id: str = field(
        default_factory=lambda: f"processor-{uuid.uuid4().hex[:8]}"
    )

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka["bootstrap.servers"]

    def consumer_config(self, **overrides: Any) -> dict[str, Any]:
        """``KAFKA_*`` properties for the consumer, with ``overrides`` on top."""
        chosen = {k: v for k, v in self.kafka.items() if not _producer_only(k)}
        return {**chosen, **overrides}

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """``KAFKA_*`` properties for the producer, with ``overrides`` on top."""
        chosen = {k: v for k, v in self.kafka.items() if not _consumer_only(k)}
        return {**chosen, **overrides}

    def cap_for(self, action_id: str) -> int:
        """Most jobs in flight for ``action_id``: its cap, ``*``, or the global one."""
        caps = self.action_concurrency
        return min(
            caps.get(action_id, caps.get("*", self.max_in_flight)), self.max_in_flight
        )


@dataclass(frozen=True)
class _Option:
    """How one environment variable becomes one ``Settings`` field."""

    env: str
    field: str
    parse: Callable[[str], Any]
    required: bool = False


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a whole number of at least 1")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a number of seconds, 0 or more")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError("must be a port number from 0 to 65535 (0 picks a free one)")
    return number


def _url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.strip().rstrip("/")


def _registry_url(value: str) -> str:
    if value.strip().startswith("mock://"):
        return value.strip()
    return _url(value)


def _ordering(value: str) -> str:
    if value not in ("unordered", "key", "partition"):
        raise ValueError("must be unordered, key or partition")
    return value


def _caps(value: str) -> dict[str, int]:
    caps: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not _ACTION_CAP_KEY.match(name):
            raise ValueError(f"has {item!r}, which is not ACTION=N (or *=N)")
        try:
            caps[name] = _positive_int(number.strip())
        except ValueError:
            raise ValueError(
                f"gives {name} a cap that is not a whole number >= 1"
            ) from None
    return caps


_OPTIONS = (
    _Option("CXONE_BASE_URL", "cxone_base_url", _url, required=True),
    _Option("CXONE_CLIENT_ID", "cxone_client_id", _text, required=True),
    _Option(
        "CXONE_CLIENT_SECRET",
        "cxone_client_secret",
        lambda v: Secret(_text(v)),
        required=True,
    ),
    _Option("CXONE_SCOPE", "cxone_scope", _text),
    _Option("CXONE_ORG_ID", "cxone_org_id", _text),
    _Option("CXONE_CA_BUNDLE", "cxone_ca_bundle", _text),
    _Option("PROCESSOR_GROUP_ID", "group_id", _text),
    _Option("PROCESSOR_REQUESTS_TOPIC", "requests_topic", _text),
    _Option("PROCESSOR_RESULTS_TOPIC", "results_topic", _text),
    _Option("PROCESSOR_DEADLETTER_TOPIC", "deadletter_topic", _text),
    _Option("PROCESSOR_AUDIT_TOPIC", "audit_topic", _text),
    _Option("PROCESSOR_MAX_IN_FLIGHT", "max_in_flight", _positive_int),
    _Option("PROCESSOR_ACTION_CONCURRENCY", "action_concurrency", _caps),
    _Option("PROCESSOR_MAX_ATTEMPTS", "max_attempts", _positive_int),
    _Option("PROCESSOR_ORDERING", "ordering", _ordering),
    _Option("SCHEMA_REGISTRY_URL", "schema_registry_url", _registry_url),
    _Option("PROCESSOR_GRACE_PERIOD_S", "grace_period_s", _seconds),
    _Option("PROCESSOR_ACTION_CACHE_TTL_S", "action_cache_ttl_s", _seconds),
    _Option("PROCESSOR_REQUEST_TIMEOUT_S", "request_timeout_s", _seconds),
    _Option("PROCESSOR_BACKOFF_INITIAL_S", "backoff_initial_s", _seconds),
    _Option("PROCESSOR_BACKOFF_MAX_S", "backoff_max_s", _seconds),
    _Option("PROCESSOR_COMMIT_INTERVAL_S", "commit_interval_s", _seconds),
    _Option("PROCESSOR_BUFFER_MAX_RECORDS", "buffer_max_records", _positive_int),
    _Option("PROCESSOR_BUFFER_MAX_BYTES", "buffer_max_bytes", _positive_int),
    _Option("PROCESSOR_MAX_REQUEST_BYTES", "max_request_bytes", _positive_int),
    _Option("PROCESSOR_DRAIN_RATE_WINDOW_S", "drain_rate_window_s", _seconds),
    _Option("PROCESSOR_LIMIT_PROBE_INTERVAL_S", "limit_probe_interval_s", _seconds),
    _Option("PROCESSOR_HTTP_HOST", "http_host", _text),
    _Option("PROCESSOR_HTTP_PORT", "http_port", _port),
    _Option("PROCESSOR_INSTANCE_ID", "instance_id", _text),
)
KNOWN_VARIABLES = frozenset(option.env for option in _OPTIONS)

# librdkafka warns when a client gets a property of the other kind; KAFKA_*
# settings go to both clients, so these are sorted out by name.
_CONSUMER_ONLY = (
    "auto.offset.reset",
    "auto.commit.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "group.",
    "partition.assignment.strategy",
    "isolation.level",
    "enable.partition.eof",
    "fetch.",
    "queued.",
    "check.crcs",
    "coordinator.query.interval.ms",
)
_PRODUCER_ONLY = (
    "acks",
    "request.required.acks",
    "linger.ms",
    "queue.buffering.",
    "batch.",
    "compression.",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "message.send.max.retries",
    "retries",
    "transactional.id",
    "transaction.timeout.ms",
    "partitioner",
    "sticky.partitioning.linger.ms",
    "request.timeout.ms",
)


def _consumer_only(key: str) -> bool:
    return key.startswith(_CONSUMER_ONLY)


def _producer_only(key: str) -> bool:
    return key.startswith(_PRODUCER_ONLY)


# librdkafka properties the processor sets itself, because offsets and
# delivery guarantees depend on them.
_KAFKA_MANAGED = frozenset(
    {"enable.auto.commit", "enable.auto.offset.store", "group.id", "enable.idempotence"}
)


def load(
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings, or raise ``SettingsError`` naming the bad one."""
    environ = os.environ if environ is None else environ
    merged = _read_file(config_file) if config_file else {}
    merged.update({k: v for k, v in environ.items() if _is_setting(k)})
    merged.update(flags or {})

    values: dict[str, Any] = {}
    for option in _OPTIONS:
        raw = merged.get(option.env)
        if raw is None or raw == "":
            if option.required:
                raise SettingsError(option.env, "is required")
            continue
        try:
            values[option.field] = option.parse(raw)
        except ValueError as exc:
            raise SettingsError(option.env, _shown(option, raw, exc)) from None

    values["kafka"] = _kafka_properties(merged)
    settings = Settings(**values)
    _check_together(settings)
    return settings


def _is_setting(name: str) -> bool:
    return name in KNOWN_VARIABLES or name.startswith("KAFKA_")


def _read_file(path: str | Path) -> dict[str, str]:
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SettingsError(
            "--config", f"cannot be read: {exc.strerror} ({path})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError("--config", f"is not valid TOML: {exc}") from None

    values: dict[str, str] = {}
    for key, value in document.items():
        name = key.upper()
        if not _is_setting(name):
            raise SettingsError(key, f"is not a known setting (in {path})")
        values[name] = _toml_text(value)
    return values


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _kafka_properties(merged: Mapping[str, str]) -> dict[str, str]:
    # A new group starts from the earliest offset, so no request published
    # before the first start is skipped; KAFKA_AUTO_OFFSET_RESET overrides.
    properties = {
        "bootstrap.servers": "localhost:9092",
        "auto.offset.reset": "earliest",
    }
    for name, value in merged.items():
        if not name.startswith("KAFKA_") or name in KNOWN_VARIABLES:
            continue
        key = name[len("KAFKA_") :].lower().replace("_", ".")
        if key in _KAFKA_MANAGED:
            raise SettingsError(name, "is managed by the processor and cannot be set")
        properties[key] = value
    return properties


def _check_together(settings: Settings) -> None:
    if settings.backoff_max_s < settings.backoff_initial_s:
        raise SettingsError(
            "PROCESSOR_BACKOFF_MAX_S", "must not be below PROCESSOR_BACKOFF_INITIAL_S"
        )
    if settings.request_timeout_s <= 0:
        raise SettingsError("PROCESSOR_REQUEST_TIMEOUT_S", "must be more than 0")
    topics = [
        settings.requests_topic,
        settings.results_topic,
        settings.deadletter_topic,
        settings.audit_topic,
    ]
    if len(set(topics)) != len(topics):
        raise SettingsError("PROCESSOR_*_TOPIC", "the four topics must all differ")


def _shown(option: _Option, raw: str, exc: ValueError) -> str:
    # A secret's value is never echoed back, even when it is wrong.
    value = "(hidden)" if "SECRET" in option.env else repr(raw)
    return f"{value} {exc}"


def kafka_setting_error(message: str) -> SettingsError:
    """librdkafka's refusal of a property, as the ``KAFKA_*`` setting to fix."""
    found = re.search(r'property:? "([^"]+)"', message)
    name = "KAFKA_" + found.group(1).upper().replace(".", "_") if found else "KAFKA_*"
    return SettingsError(name, f"is refused by librdkafka: {message}")
