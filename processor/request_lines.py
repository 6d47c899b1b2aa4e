"""One line of a JSON Lines file as the job request record it becomes.

The check is the processor's own: ``jobs.parse`` runs on the very bytes that
would be sent, so a line it would dead-letter as ``INVALID_REQUEST`` is
refused here with the same reason. The key comes from a field of the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from processor import jobs, schemas
from processor.errors import InvalidRequest


@dataclass(frozen=True)
class Prepared:
    """One line as the record it becomes."""

    key: bytes | None
    value: bytes


class Preparer:
    """Turns a line into a record the processor will accept, or says why not."""

    def __init__(
        self,
        reader: schemas.Reader,
        max_bytes: int,
        key_field: str | None = "request_id",
        codec: schemas.Codec | None = None,
    ) -> None:
        self._reader = reader
        self._max_bytes = max_bytes
        self._key_field = key_field
        self._codec = codec

    def prepare(self, line: bytes) -> Prepared:
        """The record for ``line``; raises ``InvalidRequest`` saying what is wrong."""
        text = line.strip()
        if self._codec is None:
            jobs.parse(text, self._reader, self._max_bytes)
            return Prepared(self._key(json.loads(text)), text)

        # Only the size of the Avro value that is sent counts against the limit.
        request = jobs.parse(text, self._reader, len(text))
        fields = json.loads(text)
        value = self._codec.encode(_avro_fields(request, fields))
        jobs.parse(value, self._reader, self._max_bytes)
        return Prepared(self._key(fields), value)

    def _key(self, fields: dict[str, Any]) -> bytes | None:
        name = self._key_field
        if name is None:
            return None
        if name not in fields:
            raise InvalidRequest(f"{name} is missing, and the key comes from it")

        value = fields[name]
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return json.dumps(value).encode()
        raise InvalidRequest(
            f"{name} is {type(value).__name__}, not a string or a number, "
            "so it cannot be the key"
        )


def _avro_fields(request: jobs.JobRequest, fields: dict[str, Any]) -> dict[str, Any]:
    # In Avro, input and options travel as JSON text; absent options stay null
    # so the processor applies its default, as it would for the JSON line.
    options = fields.get("options")
    return {
        "request_id": request.request_id,
        "action_id": request.action_id,
        "input": json.dumps(request.input),
        "options": None if options is None else json.dumps(options),
    }
