"""Logs: one JSON object per line on stderr, with the job's fields where there is one.

Each line has ``time``, ``level``, ``logger`` and ``message``; lines logged
while a job runs also carry its ``request_id``, ``action_id``, ``trace_id``,
``topic``, ``partition`` and ``offset`` (from a context variable the worker
sets, so no call site has to pass them), and ``extra={...}`` fields of a call
are added as they are. Secrets are never logged on purpose; as a second line
of defence, the client secret and the access tokens in use are replaced by
``***`` in every line before it is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

# The fields a LogRecord has of its own; anything else came in ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_KEPT_SECRETS = 16

_job: contextvars.ContextVar[Mapping[str, object] | None] = contextvars.ContextVar(
    "processor_job", default=None
)


@contextmanager
def job_fields(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every line logged inside this block (and its tasks)."""
    token = _job.set(fields)
    try:
        yield
    finally:
        _job.reset(token)


class Redactor:
    """Remembers values that must never be written, and blanks them out."""

    def __init__(self) -> None:
        self._secrets: deque[str] = deque(maxlen=_KEPT_SECRETS)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


redact = Redactor()


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_job.get() or {})
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure(level_name: str) -> None:
    """Send every logger's lines to stderr as JSON, at ``level_name`` and up."""
    level = level_name.upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    # httpx logs every request at INFO; that is per-job noise for an operator.
    logging.getLogger("httpx").setLevel(logging.WARNING)
