"""Job requests: decoding a record's value and validating it against the contract.

A value is JSON (a UTF-8 object) or Avro in either framing. Whatever is wrong
with it becomes one ``InvalidRequest`` whose message a person can act on; an
``action_id`` outside the contract's pattern is refused here, before anything
could put it in a URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from processor.errors import InvalidRequest
from processor.schemas import Reader, load

ACTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
# The request id travels as the Idempotency-Key header, whose value must be
# visible ASCII; anything else could not be sent as the same key twice.
REQUEST_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}\Z")
MAX_REQUEST_ID_LENGTH = 128
DEFAULT_OPTIONS: dict[str, Any] = {"async": True}
# Deeper values are refused: every later step that walks one recursively
# (encoding the body, logging it) must stay far from Python's recursion limit.
MAX_NESTING = 64

_AVRO_MAGICS = (b"\xc3\x01", b"\x00")


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One valid job request."""

    request_id: str
    action_id: str
    input: dict[str, Any]
    options: dict[str, Any]

    def body(self) -> bytes:
        """The JSON body of ``POST .../jobs``."""
        return json.dumps({"input": self.input, "options": self.options}).encode()


def parse(value: bytes | None, reader: Reader, max_bytes: int) -> JobRequest:
    """Decode and validate one record value, or raise ``InvalidRequest``."""
    if value is None:
        raise InvalidRequest("value is empty (a tombstone)")
    if len(value) > max_bytes:
        raise InvalidRequest(
            f"value is {len(value)} bytes, over the limit of {max_bytes} "
            "(PROCESSOR_MAX_REQUEST_BYTES)"
        )

    if value.startswith(_AVRO_MAGICS):
        fields = reader.read(value, load("job_request"))
        return _from_avro(fields)
    return validate(_json_object(value, "value"))


def validate(fields: dict[str, Any]) -> JobRequest:
    """Check the decoded fields of a JSON request."""
    request_id = fields.get("request_id")
    if request_id is None:
        raise InvalidRequest("request_id is missing")
    if (
        not isinstance(request_id, str)
        or not 1 <= len(request_id) <= MAX_REQUEST_ID_LENGTH
    ):
        raise InvalidRequest(
            f"request_id must be a string of 1 to {MAX_REQUEST_ID_LENGTH} characters"
        )
    if not REQUEST_ID_PATTERN.match(request_id):
        raise InvalidRequest(
            f"request_id {_shorten(request_id)} has characters an Idempotency-Key "
            "header cannot carry: use visible ASCII only, no spaces"
        )

    action_id = fields.get("action_id")
    if action_id is None:
        raise InvalidRequest("action_id is missing")
    if not isinstance(action_id, str) or not ACTION_ID_PATTERN.match(action_id):
        raise InvalidRequest(
            f"action_id {_shorten(action_id)} does not match "
            "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
        )

    if "input" not in fields:
        raise InvalidRequest("input is missing")
    job_input = fields["input"]
    if not isinstance(job_input, dict):
        raise InvalidRequest("input must be a JSON object")

    options = fields.get("options")
    if options is None:
        options = dict(DEFAULT_OPTIONS)
    if not isinstance(options, dict):
        raise InvalidRequest("options must be a JSON object")
    return JobRequest(request_id, action_id, job_input, options)


def _from_avro(fields: dict[str, Any]) -> JobRequest:
    # In Avro, input and options travel as JSON text in string fields.
    decoded = dict(fields)
    decoded["input"] = _json_object(fields["input"].encode(), "input")
    if fields.get("options") is not None:
        decoded["options"] = _json_object(fields["options"].encode(), "options")
    return validate(decoded)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{what} is not valid UTF-8 (byte {exc.start})") from None

    try:
        parsed = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"{what} is not valid JSON: {exc.msg} "
            f"at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _too_deep(what) from None
    except ValueError as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}") from None

    if not isinstance(parsed, dict):
        raise InvalidRequest(
            f"{what} must be a JSON object, not {type(parsed).__name__}"
        )
    if _deeper_than(parsed, MAX_NESTING):
        raise _too_deep(what)
    return parsed


def _deeper_than(value: object, limit: int) -> bool:
    """Whether objects and arrays nest in ``value`` more than ``limit`` levels.

    Walked with a stack of its own, so any depth the parser let through is
    measured without recursion.
    """
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            pending.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            pending.extend((child, depth + 1) for child in node)
    return False


def _too_deep(what: str) -> InvalidRequest:
    return InvalidRequest(f"{what} nests deeper than {MAX_NESTING} levels")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
