"""Turning JSON Lines into the records ``produce`` sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from processor import jobs, schemas
from processor.errors import InvalidRequest
from processor.request_lines import Preparer

LIMIT = 512 * 1024
GOOD: dict[str, Any] = {
    "request_id": "r-1",
    "action_id": "action_a",
    "input": {"sourceId": "src_456"},
    "customer": "c-9",
}


def line(fields: dict[str, Any] | list[Any]) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def refused(text: bytes, preparer: Preparer | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        (preparer or Preparer(schemas.Reader(), LIMIT)).prepare(text)
    return str(caught.value)


def single_object() -> Preparer:
    codec = schemas.SingleObjectCodec(schemas.load("job_request"))
    return Preparer(schemas.Reader(), LIMIT, codec=codec)


def test_a_json_line_is_sent_as_written_keyed_by_its_request_id() -> None:
    text = b'{"request_id": "r-1", "action_id": "action_a", "input": {"n": 1.50}}'

    record = Preparer(schemas.Reader(), LIMIT).prepare(text + b"\r\n")

    assert record.value == text
    assert record.key == b"r-1"


def test_the_key_comes_from_the_chosen_field() -> None:
    preparer = Preparer(schemas.Reader(), LIMIT, key_field="customer")

    assert preparer.prepare(line(GOOD)).key == b"c-9"
    assert preparer.prepare(line({**GOOD, "customer": 42})).key == b"42"


def test_no_key_field_means_keyless_records() -> None:
    assert (
        Preparer(schemas.Reader(), LIMIT, key_field=None).prepare(line(GOOD)).key
        is None
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (None, "tenant is missing, and the key comes from it"),
        ({"a": 1}, "tenant is dict, not a string or a number"),
        (True, "tenant is bool, not a string or a number"),
    ],
)
def test_a_line_without_a_usable_key_is_refused(key: Any, reason: str) -> None:
    fields = dict(GOOD) if key is None else {**GOOD, "tenant": key}
    preparer = Preparer(schemas.Reader(), LIMIT, key_field="tenant")

    assert reason in refused(line(fields), preparer)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"not json", "value is not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'{"request_id": "r-1", "input": {}}', "action_id is missing"),
        (
            line({**GOOD, "action_id": "../admin"}),
            "action_id '../admin' does not match",
        ),
        (
            line({**GOOD, "request_id": "has space"}),
            "request_id 'has space' has characters",
        ),
        (line({**GOOD, "input": "text"}), "input must be a JSON object"),
        (b'{"request_id": "r-1", "action_id": "a", "input": {"x": NaN}}', "NaN"),
        (b"\xff\xfe{}", "not valid UTF-8"),
    ],
)
def test_a_line_the_processor_would_refuse_is_refused_with_its_reason(
    text: bytes, reason: str
) -> None:
    assert reason in refused(text)


def test_the_processors_size_limit_applies_to_the_value_sent() -> None:
    big = line({**GOOD, "input": {"blob": "x" * 200}})

    assert "over the limit of 100" in refused(big, Preparer(schemas.Reader(), 100))


def test_avro_values_are_what_the_processor_reads_back_as_the_same_request() -> None:
    fields = {**GOOD, "options": {"async": False}}

    record = single_object().prepare(line(fields))
    request = jobs.parse(record.value, schemas.Reader(), LIMIT)

    assert record.value[:2] == schemas.SINGLE_OBJECT_MAGIC
    assert record.key == b"r-1"
    assert request == jobs.JobRequest(
        "r-1", "action_a", {"sourceId": "src_456"}, {"async": False}
    )


def test_avro_leaves_absent_options_to_the_processors_default() -> None:
    record = single_object().prepare(line(GOOD))
    fields = schemas.Reader().read(record.value, schemas.load("job_request"))

    assert fields["options"] is None
    assert jobs.parse(record.value, schemas.Reader(), LIMIT).options == {"async": True}


def test_avro_lines_are_validated_like_json_ones() -> None:
    assert "action_id is missing" in refused(
        b'{"request_id": "r-1", "input": {}}', single_object()
    )


def test_avro_in_the_registry_framing_carries_the_registered_id() -> None:
    registry = schemas.registry_client("mock://produce-unit")
    codec = schemas.register(registry, "requests", schemas.load("job_request"))
    preparer = Preparer(schemas.Reader(registry), LIMIT, codec=codec)

    record = preparer.prepare(line(GOOD))

    assert record.value[:1] == schemas.WIRE_FORMAT_MAGIC
    assert int.from_bytes(record.value[1:5], "big") == codec.schema_id
    assert jobs.parse(record.value, schemas.Reader(registry), LIMIT).request_id == "r-1"
