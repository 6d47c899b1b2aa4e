"""Properties of decoding and validating job requests, over generated input.

Whatever bytes arrive, ``jobs.parse`` either returns a request that keeps the
contract or raises ``InvalidRequest`` with a reason; and whatever it accepts
becomes a URL that stays inside ``/api/v2/data-actions/``. The contract's
rules are restated here in plain Python (no regular expressions), so a
pattern that lets a trailing newline or a look-alike letter through shows up
as a disagreement.
"""

from __future__ import annotations

import json
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from processor import schemas
from processor.cxone import CxoneApi
from processor.errors import InvalidRequest
from processor.jobs import DEFAULT_OPTIONS, JobRequest, parse

LIMIT = 512 * 1024
REGISTRY_ID = 7
ALNUM = string.ascii_letters + string.digits
ACTION_CHARACTERS = ALNUM + "_.-"
BASE_URL = "https://api.example.test"
ACTIONS_PATH = "/api/v2/data-actions/"

# Generated input is cheap to check; a few hundred cases per property keep
# the file within seconds while still reaching the odd corners.
quick = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
thorough = settings(quick, max_examples=600)
few = settings(quick, max_examples=60)


# -- the contract, restated ------------------------------------------------------


def contract_action_id(value: object) -> bool:
    """``^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$``, read as the whole string."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 128
        and value[0] in ALNUM
        and all(character in ACTION_CHARACTERS for character in value)
    )


def contract_request_id(value: object) -> bool:
    """1 to 128 characters, each visible ASCII (it becomes a header value)."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 128
        and all("\x21" <= character <= "\x7e" for character in value)
    )


# -- generated values --------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
valid_action_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
valid_request_ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128
)


def near_misses(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid ids with one character added, replaced or a newline appended."""

    def mutate(data: tuple[str, int, str, int]) -> str:
        text, position, character, how = data
        at = position % (len(text) + 1)
        if how == 0:
            return text[:at] + character + text[at:]
        if how == 1:
            return text[:at] + character + text[at + 1 :]
        return text + "\n"

    return st.tuples(
        valid, st.integers(0, 200), st.characters(), st.integers(0, 2)
    ).map(mutate)


@dataclass
class RegisteredSchema:
    schema_str: str


class OneSchemaRegistry:
    """A registry that knows the job request schema under one id."""

    def register_schema(self, subject_name: str, schema: Any) -> int:
        raise AssertionError("the reader never registers")

    def get_schema(self, schema_id: int) -> RegisteredSchema:
        if schema_id != REGISTRY_ID:
            raise LookupError(f"schema {schema_id} not found")
        return RegisteredSchema(schemas.load("job_request").text)


def reader() -> schemas.Reader:
    return schemas.Reader(OneSchemaRegistry())


def as_json(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields).encode()


def as_single_object(fields: dict[str, Any]) -> bytes:
    return schemas.SingleObjectCodec(schemas.load("job_request")).encode(fields)


def as_wire_format(fields: dict[str, Any]) -> bytes:
    return schemas.RegistryCodec(schemas.load("job_request"), REGISTRY_ID).encode(
        fields
    )


def avro_fields(
    request_id: str, action_id: str, job_input: str, options: str | None
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "action_id": action_id,
        "input": job_input,
        "options": options,
    }


def outcome(value: bytes | None, limit: int = LIMIT) -> JobRequest | InvalidRequest:
    """What parsing gives: the request, or the refusal. Anything else escapes."""
    try:
        return parse(value, reader(), limit)
    except InvalidRequest as refusal:
        return refusal


def keeps_the_contract(request: JobRequest) -> None:
    assert contract_request_id(request.request_id)
    assert contract_action_id(request.action_id)
    assert isinstance(request.input, dict)
    assert isinstance(request.options, dict)


# -- arbitrary bytes ----------------------------------------------------------------

MAGIC_PREFIXES = [
    b"",
    schemas.SINGLE_OBJECT_MAGIC,
    schemas.SINGLE_OBJECT_MAGIC + schemas.load("job_request").fingerprint,
    schemas.SINGLE_OBJECT_MAGIC + schemas.load("dead_letter").fingerprint,
    schemas.WIRE_FORMAT_MAGIC,
    schemas.WIRE_FORMAT_MAGIC + REGISTRY_ID.to_bytes(4, "big"),
    b"{",
    b'{"request_id": "r-1", "action_id": "a", "input": ',
]


@quick
@given(st.sampled_from(MAGIC_PREFIXES), st.binary(max_size=512))
@example(schemas.SINGLE_OBJECT_MAGIC, b"")
@example(schemas.WIRE_FORMAT_MAGIC, b"")
@example(b"", b"")
@example(b"", b"\xff\xfe\xfd")
@example(
    schemas.SINGLE_OBJECT_MAGIC + schemas.load("job_request").fingerprint, b"\xff" * 16
)
@example(schemas.WIRE_FORMAT_MAGIC + REGISTRY_ID.to_bytes(4, "big"), b"\x01" * 16)
def test_any_bytes_become_a_valid_request_or_an_invalid_request(
    prefix: bytes, tail: bytes
) -> None:
    result = outcome(prefix + tail)

    if isinstance(result, InvalidRequest):
        assert str(result).strip()
    else:
        keeps_the_contract(result)


def test_a_tombstone_is_an_invalid_request_with_its_reason() -> None:
    result = outcome(None)

    assert isinstance(result, InvalidRequest)
    assert "tombstone" in str(result)


@quick
@given(
    st.text(max_size=40),
    st.text(max_size=40),
    st.text(max_size=60),
    st.text(max_size=20),
)
def test_avro_requests_with_any_strings_are_accepted_only_within_the_contract(
    request_id: str, action_id: str, job_input: str, options: str
) -> None:
    fields = avro_fields(request_id, action_id, job_input, options or None)

    for value in (as_single_object(fields), as_wire_format(fields)):
        result = outcome(value)
        input_is_object = _is_json_object(job_input)
        options_ok = not options or _is_json_object(options)
        expected = (
            contract_request_id(request_id)
            and contract_action_id(action_id)
            and input_is_object
            and options_ok
        )
        assert isinstance(result, JobRequest) is expected, (fields, result)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text, parse_constant=_refuse), dict)
    except (ValueError, RecursionError):
        return False


def _refuse(name: str) -> Any:
    raise ValueError(name)


# -- valid requests round-trip ----------------------------------------------------


@thorough
@given(
    valid_request_ids,
    valid_action_ids,
    json_objects,
    st.none() | json_objects,
    st.sampled_from(["json", "single_object", "wire_format"]),
)
def test_every_valid_request_round_trips_in_each_encoding(
    request_id: str,
    action_id: str,
    job_input: dict[str, Any],
    options: dict[str, Any] | None,
    encoding: str,
) -> None:
    if encoding == "json":
        fields: dict[str, Any] = {
            "request_id": request_id,
            "action_id": action_id,
            "input": job_input,
        }
        if options is not None:
            fields["options"] = options
        value = as_json(fields)
    else:
        encoded_options = None if options is None else json.dumps(options)
        avro = avro_fields(
            request_id, action_id, json.dumps(job_input), encoded_options
        )
        value = (
            as_single_object(avro)
            if encoding == "single_object"
            else (as_wire_format(avro))
        )

    request = parse(value, reader(), LIMIT)

    expected_options = DEFAULT_OPTIONS if options is None else options
    assert request == JobRequest(request_id, action_id, job_input, expected_options)
    assert json.loads(request.body()) == {
        "input": job_input,
        "options": expected_options,
    }


# -- action_id: exactly the contract's pattern --------------------------------------

LOOK_ALIKES_AND_TRICKS = [
    "action\n",
    "action_123\n",
    "../x",
    "..",
    ".",
    "a/b",
    "a/../b",
    "%2e%2e",
    "action%2Fjobs",
    "action?x=1",
    "action#x",
    "action;x=1",
    "\u0430ction",  # Cyrillic a
    "\uff41ction",  # fullwidth a
    "action\u200b",  # zero-width space
    "act\u0131on",  # dotless i
    "action\x00",
    "\x00",
    "action\r\n",
    " action",
    "action ",
    "",
    "-action",
    "_action",
    ".action",
    "a" * 128,
    "a" * 129,
    "\u212aelvin",  # Kelvin sign, equal to K under case folding
]


@thorough
@given(
    st.text(max_size=140)
    | valid_action_ids
    | near_misses(valid_action_ids)
    | st.sampled_from(LOOK_ALIKES_AND_TRICKS)
)
def test_an_action_id_is_accepted_exactly_when_it_matches_the_contract(
    action_id: str,
) -> None:
    value = as_json({"request_id": "r-1", "action_id": action_id, "input": {}})

    result = outcome(value)

    assert isinstance(result, JobRequest) is contract_action_id(action_id), action_id
    if isinstance(result, InvalidRequest):
        assert "action_id" in str(result)


@pytest.mark.parametrize("action_id", LOOK_ALIKES_AND_TRICKS)
def test_each_path_trick_and_look_alike_is_judged_by_the_contract(
    action_id: str,
) -> None:
    value = as_json({"request_id": "r-1", "action_id": action_id, "input": {}})

    result = outcome(value)

    assert isinstance(result, JobRequest) is contract_action_id(action_id)


@quick
@given(json_values.filter(lambda value: not isinstance(value, str)))
def test_an_action_id_that_is_not_a_string_is_refused_by_name(action_id: Any) -> None:
    value = as_json({"request_id": "r-1", "action_id": action_id, "input": {}})

    result = outcome(value)

    assert isinstance(result, InvalidRequest)
    assert "action_id" in str(result)


# -- request_id: 1 to 128 visible ASCII characters ----------------------------------

HEADER_TRICKS = [
    "r-1\r\nX-Injected: 1",
    "r-1\nX-Injected: 1",
    "r-1\r",
    "r 1",
    "r-1\t",
    "r-1\x00",
    "r-\x7f",
    "r-\u00e9",
    "r-\u2028",
    "",
    "r" * 128,
    "r" * 129,
]


@thorough
@given(
    st.text(max_size=140)
    | valid_request_ids
    | near_misses(valid_request_ids)
    | st.sampled_from(HEADER_TRICKS)
)
def test_a_request_id_is_accepted_exactly_when_it_can_be_a_header_value(
    request_id: str,
) -> None:
    value = as_json({"request_id": request_id, "action_id": "action_a", "input": {}})

    result = outcome(value)

    assert isinstance(result, JobRequest) is contract_request_id(request_id)
    if isinstance(result, InvalidRequest):
        assert "request_id" in str(result)


@quick
@given(json_values.filter(lambda value: not isinstance(value, str)))
def test_a_request_id_that_is_not_a_string_is_refused_by_name(request_id: Any) -> None:
    value = as_json({"request_id": request_id, "action_id": "action_a", "input": {}})

    result = outcome(value)

    assert isinstance(result, InvalidRequest)
    assert "request_id" in str(result)


# -- deep nesting and huge payloads ---------------------------------------------------


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def with_nesting(depth: int, kind: str, where: str) -> bytes:
    inner = nested(depth, kind)
    if where == "value":
        return inner.encode()
    if where == "avro_input":
        return as_single_object(
            avro_fields("r-1", "action_a", f'{{"x": {inner}}}', None)
        )
    fields = {"request_id": '"r-1"', "action_id": '"action_a"', "input": "{}"}
    fields[where] = f'{{"x": {inner}}}' if where in ("input", "options") else inner
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


NESTING_PLACES = ["value", "input", "options", "action_id", "request_id", "avro_input"]


@quick
@given(
    st.integers(1, 2000) | st.integers(2000, 100_000),
    st.sampled_from(["array", "object"]),
    st.sampled_from(NESTING_PLACES),
)
@example(100_000, "array", "value")
@example(100_000, "array", "input")
@example(50_000, "object", "avro_input")
def test_deep_nesting_is_refused_with_a_reason_and_never_overflows_the_stack(
    depth: int, kind: str, where: str
) -> None:
    value = with_nesting(depth, kind, where)

    result = outcome(value, limit=len(value))

    # Nothing as deep as the interpreter's recursion limit may get through
    # (Hypothesis raises that limit while it runs, so it is read here).
    if depth >= sys.getrecursionlimit():
        assert isinstance(result, InvalidRequest)
        assert "nest" in str(result).lower()


@pytest.mark.parametrize("kind", ["array", "object"])
def test_the_deepest_input_accepted_can_still_be_sent_from_deeper_frames(
    kind: str,
) -> None:
    # The body is serialised inside the worker's task, dozens of frames below
    # where the record was parsed. An input the parser only just managed must
    # not make that serialisation overflow the stack: the worker would fail
    # the whole processor, and the record would do it again after a restart.
    accepted = [
        result
        for depth in range(1, 1001)
        if isinstance(result := outcome(with_nesting(depth, kind, "input")), JobRequest)
    ]
    deepest = accepted[-1]

    body = _from_deeper_frames(100, deepest.body)

    assert json.loads(body)["input"] == deepest.input


def _from_deeper_frames(frames: int, call: Callable[[], bytes]) -> bytes:
    if frames == 0:
        return call()
    return _from_deeper_frames(frames - 1, call)


@quick
@given(st.integers(0, 3000), st.sampled_from(["json", "single_object"]))
def test_a_value_is_refused_for_its_size_exactly_when_it_is_over_the_limit(
    size: int, encoding: str
) -> None:
    limit = 1024
    value = _padded_request(size, encoding)

    result = outcome(value, limit)

    assert isinstance(result, JobRequest) is (len(value) <= limit)
    if isinstance(result, InvalidRequest):
        assert f"{len(value)} bytes" in str(result)
        assert "PROCESSOR_MAX_REQUEST_BYTES" in str(result)


def _padded_request(size: int, encoding: str) -> bytes:
    def encode(padding: str) -> bytes:
        job_input = {"pad": padding}
        if encoding == "json":
            return as_json(
                {"request_id": "r-1", "action_id": "action_a", "input": job_input}
            )
        return as_single_object(
            avro_fields("r-1", "action_a", json.dumps(job_input), None)
        )

    empty = encode("")
    return encode("x" * max(0, size - len(empty)))


@few
@given(st.binary(min_size=1, max_size=64), st.integers(1, 4096))
def test_an_oversized_value_of_any_kind_is_refused_before_it_is_read(
    seed: bytes, extra: int
) -> None:
    limit = 2048
    value = (seed * (limit // len(seed) + 2))[: limit + extra]

    result = outcome(value, limit)

    assert isinstance(result, InvalidRequest)
    assert "PROCESSOR_MAX_REQUEST_BYTES" in str(result)


# -- the URL built for an accepted action id -----------------------------------------


def api() -> CxoneApi:
    never = httpx.MockTransport(lambda request: httpx.Response(599))
    return CxoneApi(never, None, BASE_URL)  # type: ignore[arg-type]


@thorough
@given(
    valid_action_ids
    | near_misses(valid_action_ids)
    | st.text(max_size=40)
    | st.sampled_from(LOOK_ALIKES_AND_TRICKS)
)
def test_the_url_of_any_accepted_action_id_is_one_segment_under_data_actions(
    action_id: str,
) -> None:
    value = as_json({"request_id": "r-1", "action_id": action_id, "input": {}})
    result = outcome(value)
    if isinstance(result, InvalidRequest):
        return

    action, jobs = api()._urls_for(result.action_id)

    for endpoint, suffix in ((action, ""), (jobs, "/jobs")):
        expected = f"{ACTIONS_PATH}{action_id}{suffix}"
        on_the_wire = URL(str(endpoint.url), encoded=True)
        assert endpoint.url.host == "api.example.test"
        assert endpoint.url.raw_path == expected.encode()
        assert on_the_wire.raw_path == expected
        assert on_the_wire.path == expected
        assert not on_the_wire.query_string
        assert not on_the_wire.fragment
        segments = on_the_wire.path[len(ACTIONS_PATH) :].split("/")
        assert segments[0] == action_id
        assert segments[1:] == (["jobs"] if suffix else [])
