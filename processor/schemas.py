"""Avro schemas of the four topics, and the two framings records travel in.

- Single-object encoding (the default): ``C3 01``, the writer schema's
  8-byte CRC-64-AVRO fingerprint (little-endian), then the Avro body.
- Schema Registry wire format (with ``SCHEMA_REGISTRY_URL``): ``00``, the
  4-byte big-endian schema id, then the Avro body; subjects ``<topic>-value``.

``Codec`` writes one schema in one framing; ``Reader`` reads either framing
into a chosen reader schema, resolving the writer schema by fingerprint or by
registry id.
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro.schema import fingerprint, to_parsing_canonical_form

from processor.errors import InvalidRequest

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
WIRE_FORMAT_MAGIC = b"\x00"

SCHEMA_FILES = {
    "job_request": "job_request.avsc",
    "job_result": "job_result.avsc",
    "dead_letter": "dead_letter.avsc",
    "audit_event": "audit_event.avsc",
}


@dataclass(frozen=True)
class AvroSchema:
    """One parsed schema with its JSON text and single-object fingerprint."""

    name: str
    text: str
    parsed: Any
    fingerprint: bytes


class Codec(Protocol):
    def encode(self, record: dict[str, Any]) -> bytes: ...


class Registry(Protocol):
    """The part of confluent-kafka's SchemaRegistryClient that is used here."""

    def register_schema(self, subject_name: str, schema: Any) -> int: ...

    def get_schema(self, schema_id: int) -> Any: ...


def schemas_dir() -> Path:
    """Where the ``.avsc`` files are: the checkout's, or the installed copy."""
    override = os.environ.get("PROCESSOR_SCHEMAS_DIR")
    candidates = [
        Path(override) if override else None,
        Path(__file__).resolve().parent.parent / "schemas",
        Path(sys.prefix) / "share" / "cxone-processor" / "schemas",
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / SCHEMA_FILES["job_request"]).exists():
            return candidate
    raise FileNotFoundError("the Avro schemas (schemas/*.avsc) are not installed")


@cache
def load(name: str) -> AvroSchema:
    """The schema called ``name`` (a key of ``SCHEMA_FILES``)."""
    text = (schemas_dir() / SCHEMA_FILES[name]).read_text()
    parsed = fastavro.parse_schema(json.loads(text))
    canonical = to_parsing_canonical_form(parsed)
    # fastavro gives the CRC-64-AVRO digest as hex of its little-endian bytes,
    # which is the order single-object encoding writes.
    digest = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return AvroSchema(name, text, parsed, digest)


def encode_body(schema: AvroSchema, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


class SingleObjectCodec:
    """Writes Avro single-object encoding."""

    def __init__(self, schema: AvroSchema) -> None:
        self.schema = schema
        self._prefix = SINGLE_OBJECT_MAGIC + schema.fingerprint

    def encode(self, record: dict[str, Any]) -> bytes:
        return self._prefix + encode_body(self.schema, record)


class RegistryCodec:
    """Writes the Schema Registry wire format under a registered id."""

    def __init__(self, schema: AvroSchema, schema_id: int) -> None:
        self.schema = schema
        self.schema_id = schema_id
        self._prefix = WIRE_FORMAT_MAGIC + schema_id.to_bytes(4, "big")

    def encode(self, record: dict[str, Any]) -> bytes:
        return self._prefix + encode_body(self.schema, record)


def registry_client(url: str) -> Registry:
    """A Schema Registry client; ``mock://`` gives confluent-kafka's in-memory one."""
    client: Registry = SchemaRegistryClient.new_client({"url": url})
    return client


def register(registry: Registry, topic: str, schema: AvroSchema) -> RegistryCodec:
    """Register ``schema`` under ``<topic>-value`` and return its codec."""
    schema_id = registry.register_schema(f"{topic}-value", Schema(schema.text, "AVRO"))
    return RegistryCodec(schema, schema_id)


class Reader:
    """Reads Avro records in either framing into a reader schema."""

    def __init__(self, registry: Registry | None = None) -> None:
        self._registry = registry
        self._by_fingerprint = {
            load(name).fingerprint: load(name) for name in SCHEMA_FILES
        }
        self._by_id: dict[int, Any] = {}

    def read(self, data: bytes, reader: AvroSchema) -> dict[str, Any]:
        """Decode ``data``; raises ``InvalidRequest`` saying what is wrong."""
        if data.startswith(SINGLE_OBJECT_MAGIC):
            writer = self._writer_by_fingerprint(data[2:10])
            body = data[10:]
        elif data.startswith(WIRE_FORMAT_MAGIC):
            writer = self._writer_by_id(int.from_bytes(data[1:5], "big"))
            body = data[5:]
        else:
            raise InvalidRequest("value is neither JSON nor Avro in a known framing")

        try:
            record = fastavro.schemaless_reader(io.BytesIO(body), writer, reader.parsed)
        except Exception as exc:  # fastavro raises many kinds on bad bytes
            raise InvalidRequest(
                f"value is not a valid Avro {reader.name}: {exc!r}"
            ) from None
        if not isinstance(record, dict):
            raise InvalidRequest(f"value is not a valid Avro {reader.name}")
        return record

    def _writer_by_fingerprint(self, digest: bytes) -> Any:
        schema = self._by_fingerprint.get(digest)
        if schema is None:
            raise InvalidRequest(
                f"single-object Avro with unknown schema fingerprint {digest.hex()}"
            )
        return schema.parsed

    def _writer_by_id(self, schema_id: int) -> Any:
        if schema_id in self._by_id:
            return self._by_id[schema_id]
        # Known limitation: a registry that cannot be reached at that moment
        # makes the record an invalid request (dead-lettered, replayable), not
        # a retry.
        if self._registry is None:
            raise InvalidRequest(
                f"Schema Registry framing (schema id {schema_id}) but no "
                "SCHEMA_REGISTRY_URL is set"
            )
        try:
            text = self._registry.get_schema(schema_id).schema_str
            parsed = fastavro.parse_schema(json.loads(text))
        except Exception as exc:  # registry and parse errors alike
            raise InvalidRequest(
                f"schema id {schema_id} cannot be used: {exc}"
            ) from None
        self._by_id[schema_id] = parsed
        return parsed
