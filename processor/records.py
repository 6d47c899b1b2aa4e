"""A consumed Kafka record, detached from librdkafka's message object."""

from __future__ import annotations

from dataclasses import dataclass

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the requests topic, as consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None

    @property
    def topic_partition(self) -> tuple[str, int]:
        return (self.topic, self.partition)

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")
