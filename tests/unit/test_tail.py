"""What ``tail`` prints for a record, whatever its value holds."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Message

from processor import schemas
from processor.errors import SettingsError
from processor.records import Record
from processor.rendering import ValueDecoder, describe, readable
from processor.tail import parse_start
from processor.topic_reader import Ends

COMPLETED_AT = datetime(2026, 12, 3, 10, 0, 0, 123000, tzinfo=UTC)
RESULT: dict[str, Any] = {
    "request_id": "r-1",
    "action_id": "action_a",
    "job_id": "job_1",
    "job_status": "QUEUED",
    "http_status": 202,
    "attempts": 1,
    "latency_ms": 12.5,
    "source_topic": "requests",
    "source_partition": 0,
    "source_offset": 7,
    "completed_at": COMPLETED_AT,
    "job_created_at": None,
    "instance_id": "processor-1",
}


def dead_letter(value: bytes, key: bytes | None) -> dict[str, Any]:
    return {
        "reason": "INVALID_REQUEST",
        "error": "value is not valid JSON",
        "http_status": None,
        "attempts": 0,
        "request_id": None,
        "action_id": None,
        "original_key": key,
        "original_value": value,
        "original_headers": [{"key": "h", "value": b"\x00\xff"}],
        "source_topic": "requests",
        "source_partition": 0,
        "source_offset": 3,
        "failed_at": COMPLETED_AT,
        "instance_id": None,
    }


def single_object(name: str, fields: dict[str, Any]) -> bytes:
    return schemas.SingleObjectCodec(schemas.load(name)).encode(fields)


def decoder(kind: str | None, registry: schemas.Registry | None = None) -> ValueDecoder:
    return ValueDecoder(schemas.Reader(registry), kind)


def record(value: bytes | None, **changes: Any) -> Record:
    fields: dict[str, Any] = {
        "topic": "results",
        "partition": 1,
        "offset": 42,
        "key": b"r-1",
        "value": value,
        "headers": [
            ("traceparent", b"00-abc-01"),
            ("raw", b"\xc3\x28"),
            ("none", None),
        ],
        "timestamp_ms": 1796292000123,
    }
    return Record(**{**fields, **changes})


def test_a_line_has_the_records_coordinates_key_headers_and_value() -> None:
    line = describe(record(single_object("job_result", RESULT)), decoder("job_result"))

    assert line == {
        "topic": "results",
        "partition": 1,
        "offset": 42,
        "timestamp": "2026-12-03T10:00:00.123Z",
        "key": "r-1",
        "headers": [
            {"key": "traceparent", "value": "00-abc-01"},
            {"key": "raw", "value": {"base64": "wyg="}},
            {"key": "none", "value": None},
        ],
        "format": "avro-single-object",
        "schema": "job_result",
        "value": {**RESULT, "completed_at": "2026-12-03T10:00:00.123Z"},
    }
    assert json.loads(json.dumps(line)) == line


def test_a_record_without_timestamp_or_key_says_null() -> None:
    line = describe(record(b"{}", key=None, timestamp_ms=None), decoder(None))

    assert line["key"] is None
    assert line["timestamp"] is None


def test_a_dead_letters_bytes_are_text_when_utf8_and_base64_when_not() -> None:
    value = single_object("dead_letter", dead_letter(b'{"broken', b"\xff\x00"))

    decoded = decoder("dead_letter").decode(value)["value"]

    assert decoded["original_value"] == '{"broken'
    assert decoded["original_key"] == {"base64": base64.b64encode(b"\xff\x00").decode()}
    assert decoded["original_headers"] == [{"key": "h", "value": {"base64": "AP8="}}]
    assert decoded["failed_at"] == "2026-12-03T10:00:00.123Z"


def test_a_single_object_value_is_read_by_its_fingerprint_on_any_topic() -> None:
    value = single_object("job_result", RESULT)

    assert decoder("audit_event").decode(value)["schema"] == "job_result"
    assert decoder(None).decode(value)["value"]["job_id"] == "job_1"


def test_json_requests_are_shown_as_they_are() -> None:
    value = b'{"request_id": "r-1", "extra": [1, 2]}'

    assert decoder("job_request").decode(value) == {
        "format": "json",
        "value": {"request_id": "r-1", "extra": [1, 2]},
    }


def test_a_registry_value_resolves_its_schema_id() -> None:
    registry = schemas.registry_client("mock://tail-unit")
    codec = schemas.register(registry, "results", schemas.load("job_result"))

    decoded = decoder("job_result", registry).decode(codec.encode(RESULT))

    assert decoded["format"] == "avro-registry"
    assert decoded["schema_id"] == codec.schema_id
    assert decoded["value"]["request_id"] == "r-1"
    assert "warning" not in decoded


def test_a_registry_value_on_an_unnamed_topic_is_read_by_whichever_schema_fits() -> (
    None
):
    registry = schemas.registry_client("mock://tail-unit-any")
    schemas.register(registry, "results", schemas.load("job_result"))
    codec = schemas.register(registry, "audit", schemas.load("audit_event"))
    event = {
        "event_type": "JOB_STARTED",
        "time": COMPLETED_AT,
        "instance_id": "processor-1",
        "request_id": "r-1",
        "action_id": None,
        "details": {"attempt": "1"},
    }

    decoded = decoder(None, registry).decode(codec.encode(event))

    assert decoded["schema"] == "audit_event"
    assert decoded["value"]["event_type"] == "JOB_STARTED"


def test_an_unresolvable_schema_id_falls_back_to_the_topics_schema_and_says_so() -> (
    None
):
    value = schemas.RegistryCodec(schemas.load("job_result"), 7).encode(RESULT)

    decoded = decoder("job_result").decode(value)

    assert decoded["schema_id"] == 7
    assert decoded["value"]["job_id"] == "job_1"
    assert "schema id 7" in decoded["warning"]
    assert "read with the project's job_result schema" in decoded["warning"]


@pytest.mark.parametrize(
    ("value", "kind", "reason"),
    [
        (
            b"\xff\xfe not json",
            "job_request",
            "neither Avro in a known framing nor JSON",
        ),
        (b'{"x": NaN}', "job_request", "NaN is not a JSON number"),
        (
            b"\xc3\x01" + b"\x00" * 8 + b"body",
            "job_result",
            "unknown schema fingerprint",
        ),
        (b"\x00\x00\x00\x00\x07\xff", None, "schema id 7"),
        (b"\x00\x00\x00\x00\x07\xff\xff", "job_result", "nor is it a valid Avro"),
        (b"\x00\x01", "job_result", "nor is it a valid Avro"),
    ],
)
def test_an_undecodable_value_is_an_error_with_its_raw_bytes(
    value: bytes, kind: str | None, reason: str
) -> None:
    decoded = decoder(kind).decode(value)

    assert reason in decoded["error"]
    assert base64.b64decode(decoded["value_base64"]) == value
    assert "value" not in decoded


def test_a_tombstone_has_a_null_value() -> None:
    assert decoder("job_request").decode(None) == {"value": None}


def test_readable_bytes() -> None:
    assert readable(None) is None
    assert readable("é".encode()) == "é"
    assert readable(b"\xe9") == {"base64": "6Q=="}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("beginning", "beginning"),
        ("end", "end"),
        ("2026-12-03T10:00:00Z", 1796292000000),
        ("2026-12-03T10:00:00", 1796292000000),
        ("2026-12-03T11:00:00.5+01:00", 1796292000500),
    ],
)
def test_where_to_start(text: str, expected: object) -> None:
    assert parse_start(text) == expected


def test_a_start_that_is_no_time_names_the_flag() -> None:
    with pytest.raises(SettingsError, match="--from 'yesterday' is not beginning"):
        parse_start("yesterday")


def message(partition: int, offset: int) -> Message:
    return Message(topic="t", partition=partition, offset=offset, value=b"{}")


def test_reading_stops_at_each_partitions_end_offset() -> None:
    ends = Ends("t", {0: 2, 1: 1})

    wanted = [ends.wants(message(0, 0)), ends.wants(message(1, 0))]
    ends.passed(message(0, 0))
    ends.passed(message(1, 0))
    after_first = ends.reached
    beyond = ends.wants(message(1, 1))
    ends.passed(message(0, 1))

    assert wanted == [True, True]
    assert not after_first
    assert not beyond
    assert ends.reached


def test_following_never_reaches_an_end() -> None:
    ends = Ends("t", None)
    ends.passed(message(0, 99))

    assert ends.wants(message(0, 10**9))
    assert not ends.reached


def test_a_topic_with_nothing_to_read_is_at_its_end_at_once() -> None:
    assert Ends("t", {}).reached
