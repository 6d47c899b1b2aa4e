"""Job request values that are broken on purpose, each with what its reason must say.

Every one is something a careless or hostile publisher could put on the
requests topic: bytes that are not text, Avro that is cut short or is junk
after a valid magic byte, wrong types, values over the size limit, nesting
deep enough to overflow a recursive parser, action ids that would walk out
of their URL path segment, and request ids that would inject a header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from processor import schemas

# Over the processor's default PROCESSOR_MAX_REQUEST_BYTES (512 KiB), under
# the broker's default message.max.bytes (1 MB), so the dead letter that
# carries it back unchanged still fits.
OVERSIZED_BYTES = 600 * 1024


# Marks a field to leave out of the request altogether.
_DROP = object()


@dataclass(frozen=True)
class Broken:
    """A broken value and the words its dead letter's ``error`` must contain."""

    name: str
    value: bytes | None
    mentions: tuple[str, ...]


def request(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": "r-hostile",
        "action_id": "action_a",
        "input": {"sourceId": "src_1"},
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not _DROP}


def as_json(**changes: Any) -> bytes:
    return json.dumps(request(**changes)).encode()


def as_avro(**changes: Any) -> bytes:
    fields = {
        "request_id": "r-hostile",
        "action_id": "action_a",
        "input": '{"sourceId": "src_1"}',
        "options": None,
        **changes,
    }
    return schemas.SingleObjectCodec(schemas.load("job_request")).encode(fields)


def broken_records() -> list[Broken]:
    """Every kind of broken value, in a fixed order."""
    fingerprint = schemas.load("job_request").fingerprint
    single_object = schemas.SINGLE_OBJECT_MAGIC
    wire_format = schemas.WIRE_FORMAT_MAGIC
    whole_avro = as_avro()
    nested_arrays = b"[" * 100_000 + b"]" * 100_000
    return [
        # Not text at all, or not JSON.
        Broken("utf8-invalid", b'{"request_id": "r-\xff\xfe"}', ("utf-8",)),
        Broken("utf8-bytes-only", b"\xff\xfe\xfd\xfc", ("utf-8",)),
        Broken("utf8-overlong", b'{"a": "\xc0\xaf"}', ("utf-8",)),
        Broken("json-truncated", as_json()[:25], ("json",)),
        Broken("json-garbage", b"<xml>not json</xml>", ("json",)),
        Broken(
            "json-nan",
            b'{"request_id": "r", "action_id": "a", "input": {"x": NaN}}',
            ("nan",),
        ),
        Broken("json-array", b"[1, 2, 3]", ("object", "list")),
        Broken("json-string", b'"just a string"', ("object", "str")),
        # Avro: cut short, or junk after either framing's magic bytes.
        Broken("avro-truncated", whole_avro[: len(whole_avro) // 2], ("avro",)),
        Broken("avro-magic-only", single_object, ("fingerprint",)),
        Broken(
            "avro-unknown-fingerprint",
            single_object + b"\x01" * 8 + b"junk",
            ("fingerprint",),
        ),
        Broken("avro-junk-body", single_object + fingerprint + b"\xff" * 24, ("avro",)),
        Broken(
            "avro-negative-length", single_object + fingerprint + b"\x01", ("avro",)
        ),
        Broken(
            "registry-magic-junk",
            wire_format + b"\x00\x00\x00\x2a" + b"junk",
            ("schema_registry_url",),
        ),
        Broken("registry-magic-only", wire_format, ("schema_registry_url",)),
        Broken("avro-input-not-json", as_avro(input="{not json"), ("input", "json")),
        Broken("avro-path-trick", as_avro(action_id="../jobs"), ("action_id",)),
        # Wrong types and missing or empty fields.
        Broken("request-id-number", as_json(request_id=42), ("request_id",)),
        Broken("request-id-null", as_json(request_id=None), ("request_id", "missing")),
        Broken("request-id-empty", as_json(request_id=""), ("request_id",)),
        Broken("action-id-list", as_json(action_id=["action_a"]), ("action_id",)),
        Broken("action-id-null", as_json(action_id=None), ("action_id", "missing")),
        Broken("action-id-missing", as_json(action_id=_DROP), ("action_id", "missing")),
        Broken("action-id-empty", as_json(action_id=""), ("action_id",)),
        Broken("input-string", as_json(input="sourceId=1"), ("input", "object")),
        Broken("input-null", as_json(input=None), ("input",)),
        Broken("input-missing", as_json(input=_DROP), ("input", "missing")),
        Broken("options-list", as_json(options=[True]), ("options", "object")),
        Broken("empty-object", b"{}", ("request_id", "missing")),
        Broken("empty-value", b"", ("json",)),
        Broken("tombstone", None, ("tombstone",)),
        # Too big, or nested deep enough to overflow a recursive parser.
        Broken(
            "oversized",
            as_json(input={"pad": "x" * OVERSIZED_BYTES}),
            ("processor_max_request_bytes",),
        ),
        Broken("nested-arrays-100k", nested_arrays, ("nest",)),
        Broken(
            "nested-in-input",
            as_json(input=_DROP)[:-1] + b', "input": {"x": ' + nested_arrays + b"}}",
            ("nest",),
        ),
        # Action ids that would leave their path segment, or only look valid.
        Broken("action-dot-dot", as_json(action_id="../x"), ("action_id",)),
        Broken("action-slash", as_json(action_id="a/b"), ("action_id",)),
        Broken("action-encoded-dots", as_json(action_id="%2e%2e"), ("action_id",)),
        Broken(
            "action-encoded-slash", as_json(action_id="action%2Fjobs"), ("action_id",)
        ),
        Broken("action-query", as_json(action_id="action?x=1"), ("action_id",)),
        Broken("action-fragment", as_json(action_id="action#x"), ("action_id",)),
        Broken("action-cyrillic-a", as_json(action_id="\u0430ction_a"), ("action_id",)),
        Broken("action-nul", as_json(action_id="action_a\x00"), ("action_id",)),
        Broken(
            "action-trailing-newline", as_json(action_id="action_a\n"), ("action_id",)
        ),
        Broken("action-too-long", as_json(action_id="a" * 129), ("action_id",)),
        # Request ids that would inject into the Idempotency-Key header.
        Broken(
            "request-id-crlf",
            as_json(request_id="r-1\r\nX-Injected: yes"),
            ("request_id", "idempotency-key"),
        ),
        Broken(
            "request-id-nul",
            as_json(request_id="r-1\x00"),
            ("request_id", "idempotency-key"),
        ),
        Broken(
            "request-id-space",
            as_json(request_id="r 1"),
            ("request_id", "idempotency-key"),
        ),
        Broken(
            "request-id-too-long", as_json(request_id="r" * 129), ("request_id", "128")
        ),
    ]
