"""An action patch, checked before it is sent to ``PATCH /api/v2/data-actions/{id}``.

The rules live in ``schemas/action_patch.schema.json`` (JSON Schema 2020-12):
``id``, ``status`` and ``config`` are required, ``status`` is one of the
action statuses, and nothing else may be there but ``updatedTimestamp``, so
an action printed by ``actions get`` can be edited and sent back. The patch
must also name the action it is sent to. Every problem is reported at once,
one per field, so a single edit can fix them all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from processor.errors import InvalidActionPatch
from processor.schemas import schemas_dir

SCHEMA_FILE = "action_patch.schema.json"
# What the contract's PATCH body holds; ``updatedTimestamp`` is CXone's to set.
SENT_FIELDS = ("id", "status", "config")

_BODY = "body"
_MAX_MESSAGE_CHARS = 200


def checked(body: object, action_id: str, source: str) -> dict[str, Any]:
    """The fields to send for ``action_id``, or ``InvalidActionPatch`` naming each."""
    found = problems(body, action_id)
    # The schema allows nothing but an object, so the second test is for mypy.
    if found or not isinstance(body, dict):
        raise InvalidActionPatch(source, found)
    return {name: body[name] for name in SENT_FIELDS}


def problems(body: object, action_id: str) -> list[str]:
    """Everything wrong with ``body`` as a patch of ``action_id``, sorted by field."""
    found = [
        problem
        for error in _validator().iter_errors(body)
        for problem in _described(error)
    ]

    # Besides naming the right action, this closes a gap in the pattern: in
    # Python's re, ``$`` also matches before a final newline.
    named = body.get("id") if isinstance(body, dict) else None
    if isinstance(named, str) and named != action_id:
        mismatch = f"{named!r} is not the action named on the command line"
        found.append(("id", f"{mismatch} ({action_id!r})"))
    return [f"{field}: {message}" for field, message in sorted(dict.fromkeys(found))]


def parse(text: str, source: str) -> object:
    """The JSON in ``text``; a syntax error is a problem of the whole body."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        problem = f"{_BODY}: is not JSON ({exc.msg}, {where})"
        raise InvalidActionPatch(source, [problem]) from None


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads((schemas_dir() / SCHEMA_FILE).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _described(error: ValidationError) -> list[tuple[str, str]]:
    """One schema error as ``(field, message)`` pairs, one per field it concerns."""
    field = _field(error)
    instance = error.instance

    # Both keywords speak of the whole object; each field is named instead.
    if error.validator == "required" and isinstance(instance, dict):
        required = error.validator_value
        names = required if isinstance(required, list) else []
        return [
            (_join(field, name), "is required")
            for name in names
            if name not in instance
        ]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = schema.get("properties", {})
        expected = ", ".join(SENT_FIELDS)
        return [
            (_join(field, str(name)), f"is not a field of an action patch ({expected})")
            for name in instance
            if name not in allowed
        ]
    return [(field, _shortened(error.message))]


def _field(error: ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path or _BODY


def _join(field: str, name: str) -> str:
    return name if field in ("", _BODY) else f"{field}.{name}"


def _shortened(message: str) -> str:
    # A message quotes the offending value, which may be a whole document.
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    return message[: _MAX_MESSAGE_CHARS - 3] + "..."
