"""Any record of the four topics as a JSON object a person can read.

``describe`` gives one object per record: ``topic``, ``partition``,
``offset``, ``timestamp`` (ISO 8601, UTC), ``key``, ``headers`` and what
``ValueDecoder`` made of the value:

- ``format``: ``json``, ``avro-single-object`` or ``avro-registry``, with
  ``schema`` (the project schema it was read with), ``schema_id`` for the
  registry framing, and ``value``, the decoded record;
- or, when the value cannot be decoded, ``error`` (why) and
  ``value_base64`` (the raw bytes); a tombstone is ``"value": null``.

Bytes, wherever they are (the key, header values, a dead letter's original
key, value and headers), are a string when they are valid UTF-8 and
``{"base64": "..."}`` when they are not. Avro timestamps are ISO 8601.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from typing import Any

import fastavro

from processor import schemas
from processor.errors import InvalidRequest
from processor.records import Record

_NAMES_BY_FINGERPRINT = {
    schemas.load(name).fingerprint: name for name in schemas.SCHEMA_FILES
}


def describe(record: Record, decoder: ValueDecoder) -> dict[str, Any]:
    """The JSON object for ``record``; it never raises for what a record holds."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": None
        if record.timestamp_ms is None
        else _iso(datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)),
        "key": readable(record.key),
        "headers": [
            {"key": name, "value": readable(value)} for name, value in record.headers
        ],
        **decoder.decode(record.value),
    }


def readable(data: bytes | None) -> str | dict[str, str] | None:
    """UTF-8 text as it is, other bytes as ``{"base64": ...}``."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


class ValueDecoder:
    """Reads a value as JSON or as Avro in either framing.

    ``kind`` is the project schema the topic's values should have (a key of
    ``schemas.SCHEMA_FILES``), or None for a topic that is not one of the
    four. A single-object value names its schema by fingerprint. A registry
    value names a schema id; when that id cannot be resolved (no registry, or
    not there) and the topic's schema is known, the body is read with the
    project's schema as the writer's, and ``warning`` says so.
    """

    def __init__(self, reader: schemas.Reader, kind: str | None) -> None:
        self._reader = reader
        self._kind = kind

    def decode(self, value: bytes | None) -> dict[str, Any]:
        if value is None:
            return {"value": None}
        try:
            if value.startswith(schemas.SINGLE_OBJECT_MAGIC):
                decoded = self._single_object(value)
            elif value.startswith(schemas.WIRE_FORMAT_MAGIC):
                decoded = self._registry(value)
            else:
                decoded = {"format": "json", "value": _json(value)}
        except InvalidRequest as exc:
            return {"error": str(exc), "value_base64": _base64(value)}
        # A round through json turns bytes and timestamps into readable text.
        plain: dict[str, Any] = json.loads(json.dumps(decoded, default=_jsonable))
        return plain

    def _single_object(self, value: bytes) -> dict[str, Any]:
        name = _NAMES_BY_FINGERPRINT.get(value[2:10])
        if name is None:
            raise InvalidRequest(
                "single-object Avro with an unknown schema fingerprint "
                f"{value[2:10].hex()}"
            )
        record = self._reader.read(value, schemas.load(name))
        return {"format": "avro-single-object", "schema": name, "value": record}

    def _registry(self, value: bytes) -> dict[str, Any]:
        schema_id = int.from_bytes(value[1:5], "big")
        framing = {"format": "avro-registry", "schema_id": schema_id}
        # Known limitation: an id the registry cannot resolve is asked for
        # again for every record that carries it.
        problems: list[InvalidRequest] = []
        for name in [self._kind] if self._kind else schemas.SCHEMA_FILES:
            try:
                record = self._reader.read(value, schemas.load(name))
            except InvalidRequest as exc:
                problems.append(exc)
                continue
            return {**framing, "schema": name, "value": record}

        problem = problems[-1]
        if self._kind is None:
            raise problem
        record = _assumed(value[5:], self._kind, problem)
        warning = f"{problem}; read with the project's {self._kind} schema instead"
        return {**framing, "schema": self._kind, "warning": warning, "value": record}


def _assumed(body: bytes, name: str, problem: InvalidRequest) -> dict[str, Any]:
    """``body`` read as written with the project's schema ``name``."""
    try:
        record = fastavro.schemaless_reader(io.BytesIO(body), schemas.load(name).parsed)
    except Exception as exc:  # fastavro raises many kinds on bad bytes
        raise InvalidRequest(
            f"{problem}; nor is it a valid Avro {name}: {exc!r}"
        ) from None
    if not isinstance(record, dict):
        raise InvalidRequest(f"{problem}; nor is it a valid Avro {name}")
    return record


def _json(value: bytes) -> Any:
    try:
        return json.loads(value.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequest(
            f"value is neither Avro in a known framing nor JSON ({exc})"
        ) from None


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; printed back they would break the line.
    raise ValueError(f"{name} is not a JSON number")


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return readable(value)
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _iso(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
