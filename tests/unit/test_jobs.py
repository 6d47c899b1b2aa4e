from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from processor import schemas
from processor.errors import InvalidRequest
from processor.jobs import JobRequest, parse

LIMIT = 512 * 1024
MISSING = object()
VALID: dict[str, Any] = {
    "request_id": "req-1",
    "action_id": "send-sms",
    "input": {"to": "+15550100"},
}


@dataclass
class RegisteredSchema:
    schema_str: str


class FakeRegistry:
    def __init__(self, schemas_by_id: dict[int, str]) -> None:
        self.schemas_by_id = schemas_by_id
        self.lookups: list[int] = []

    def register_schema(self, subject_name: str, schema: Any) -> int:
        raise AssertionError("the reader never registers")

    def get_schema(self, schema_id: int) -> RegisteredSchema:
        self.lookups.append(schema_id)
        return RegisteredSchema(self.schemas_by_id[schema_id])


def as_json(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields).encode()


def refused(value: bytes | None, reader: schemas.Reader | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse(value, reader or schemas.Reader(), LIMIT)
    return str(caught.value)


def avro_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "request_id": "req-1",
        "action_id": "send-sms",
        "input": '{"to": "+15550100"}',
        "options": '{"async": false}',
    }
    return {**record, **changes}


def test_a_valid_json_request_gets_default_options() -> None:
    request = parse(as_json(VALID), schemas.Reader(), LIMIT)

    assert request == JobRequest(
        "req-1", "send-sms", {"to": "+15550100"}, {"async": True}
    )


def test_given_options_are_kept() -> None:
    request = parse(
        as_json({**VALID, "options": {"async": False}}), schemas.Reader(), LIMIT
    )
    assert request.options == {"async": False}


def test_the_body_is_input_and_options_only() -> None:
    request = parse(as_json({**VALID, "extra": 1}), schemas.Reader(), LIMIT)

    assert json.loads(request.body()) == {
        "input": {"to": "+15550100"},
        "options": {"async": True},
    }


def test_single_object_avro_is_decoded() -> None:
    codec = schemas.SingleObjectCodec(schemas.load("job_request"))

    request = parse(codec.encode(avro_record()), schemas.Reader(), LIMIT)

    assert request == JobRequest(
        "req-1", "send-sms", {"to": "+15550100"}, {"async": False}
    )


def test_avro_without_options_gets_the_default() -> None:
    codec = schemas.SingleObjectCodec(schemas.load("job_request"))

    request = parse(codec.encode(avro_record(options=None)), schemas.Reader(), LIMIT)

    assert request.options == {"async": True}


def test_registry_wire_format_is_decoded_through_the_registry() -> None:
    schema = schemas.load("job_request")
    registry = FakeRegistry({7: schema.text})
    reader = schemas.Reader(registry=registry)
    value = schemas.RegistryCodec(schema, 7).encode(avro_record())

    first = parse(value, reader, LIMIT)
    second = parse(value, reader, LIMIT)

    assert first == second
    assert first.input == {"to": "+15550100"}
    assert registry.lookups == [7]


def test_wire_format_without_a_registry_names_the_setting() -> None:
    value = schemas.RegistryCodec(schemas.load("job_request"), 7).encode(avro_record())

    assert "SCHEMA_REGISTRY_URL" in refused(value)


def test_an_unknown_registry_id_is_an_invalid_request() -> None:
    reader = schemas.Reader(registry=FakeRegistry({}))
    value = schemas.RegistryCodec(schemas.load("job_request"), 9).encode(avro_record())

    assert "schema id 9" in refused(value, reader)


def test_garbage_after_the_single_object_header_is_refused() -> None:
    header = schemas.SINGLE_OBJECT_MAGIC + schemas.load("job_request").fingerprint

    assert "not a valid Avro job_request" in refused(header + b"\xff\xff\xff")


def test_an_unknown_fingerprint_is_refused() -> None:
    value = schemas.SINGLE_OBJECT_MAGIC + bytes(8) + b"\x00"
    assert "unknown schema fingerprint" in refused(value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input": "[1, 2]"}, "input must be a JSON object, not list"),
        ({"input": "{"}, "input is not valid JSON"),
        ({"options": "7"}, "options must be a JSON object, not int"),
    ],
)
def test_avro_json_fields_are_checked(changes: dict[str, Any], message: str) -> None:
    codec = schemas.SingleObjectCodec(schemas.load("job_request"))
    assert message in refused(codec.encode(avro_record(**changes)))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "tombstone"),
        (b"x" * (LIMIT + 1), "PROCESSOR_MAX_REQUEST_BYTES"),
        (b'{"request_id": "\xff"}', "not valid UTF-8 (byte 16)"),
        (b'{"request_id": ', "not valid JSON"),
        (b"[1, 2, 3]", "must be a JSON object, not list"),
        (b'{"request_id": "r", "action_id": "a", "input": {"x": NaN}}', "NaN"),
        (b'{"input": {"x": -Infinity}}', "Infinity"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper than"),
    ],
)
def test_undecodable_values_are_invalid_requests(
    value: bytes | None, message: str
) -> None:
    assert message in refused(value)


def test_the_size_limit_is_inclusive() -> None:
    value = as_json(VALID)
    assert parse(value, schemas.Reader(), len(value)).request_id == "req-1"
    with pytest.raises(InvalidRequest, match="over the limit"):
        parse(value, schemas.Reader(), len(value) - 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"request_id": MISSING}, "request_id is missing"),
        ({"request_id": 12}, "request_id must be a string of 1 to 128"),
        ({"request_id": ""}, "request_id must be a string of 1 to 128"),
        ({"request_id": "r" * 129}, "request_id must be a string of 1 to 128"),
        ({"action_id": MISSING}, "action_id is missing"),
        ({"input": MISSING}, "input is missing"),
        ({"input": None}, "input must be a JSON object"),
        ({"input": [1]}, "input must be a JSON object"),
        ({"options": [1]}, "options must be a JSON object"),
        ({"options": "async"}, "options must be a JSON object"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, Any], message: str) -> None:
    fields = {k: v for k, v in {**VALID, **changes}.items() if v is not MISSING}
    assert message in refused(as_json(fields))


def test_limits_of_request_id_and_action_id_are_inclusive() -> None:
    fields = {**VALID, "request_id": "r" * 128, "action_id": "a" * 128}
    request = parse(as_json(fields), schemas.Reader(), LIMIT)
    assert (len(request.request_id), len(request.action_id)) == (128, 128)


@pytest.mark.parametrize(
    "action_id",
    [
        "../x",
        "a/b",
        "%2e%2e",
        "action?x=1",
        "",
        "a" * 129,
        "\u0430ction",  # Cyrillic a
        "action\n",
        ".hidden",
        12,
    ],
)
def test_action_ids_outside_the_pattern_are_refused(action_id: object) -> None:
    message = refused(as_json({**VALID, "action_id": action_id}))

    assert message.startswith("action_id ")
    assert "does not match" in message


def test_a_long_bad_action_id_is_shortened_in_the_message() -> None:
    message = refused(as_json({**VALID, "action_id": "/" * 1000}))
    assert len(message) < 200


@pytest.mark.parametrize(
    "request_id", ["r\u00e9sum\u00e9", "\u2603-1", "a b", "line\nbreak"]
)
def test_a_request_id_that_cannot_be_an_idempotency_key_is_invalid(
    request_id: str,
) -> None:
    value = json.dumps(
        {"request_id": request_id, "action_id": "action_a", "input": {}}
    ).encode()

    with pytest.raises(InvalidRequest, match="Idempotency-Key"):
        parse(value, schemas.Reader(), 1024)
