"""Where a replay starts and ends on each partition of the dead-letter topic.

The start is the replay group's stored position, or the oldest record when it
has none or with ``--from-beginning``; ``--since`` moves it forward to the
first record at that time, never back. The end is the partition's end when the
run starts, so a run ends even while the processor keeps adding dead letters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaPartition

from processor import deadletters
from processor.errors import ProcessorError

# Bound on every call that waits for Kafka.
TIMEOUT_S = 30.0
_RETRY_PAUSE_S = 0.5
# Answers to an offset fetch that only mean "not yet": a coordinator moving or
# loading, or offsets of a transaction not yet ended (KIP-447).
_NOT_YET = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.UNSTABLE_OFFSET_COMMIT,
        KafkaError._WAIT_COORD,
        KafkaError._TIMED_OUT,
    }
)


@dataclass(frozen=True, slots=True)
class Span:
    """Offsets ``start`` (first to read) to ``end`` (first not to read)."""

    start: int
    end: int


def plan(
    consumer: Consumer,
    topic: str,
    *,
    from_beginning: bool,
    since: datetime | None,
) -> dict[int, Span]:
    """Each partition's span; raises ``ProcessorError`` if Kafka cannot say."""
    partitions = _partitions(consumer, topic)
    marks = {p: _watermarks(consumer, topic, p) for p in partitions}
    stored = _stored(consumer, topic, partitions)
    by_time = _by_time(consumer, topic, partitions, since) if since else {}

    spans: dict[int, Span] = {}
    for p in partitions:
        low, high = marks[p]
        stored_at = stored[p]
        start = low if stored_at is None or from_beginning else stored_at
        found = by_time.get(p, low)
        # -1 from the time index: nothing that late, so nothing to read.
        start = max(start, low, found if found >= 0 else high)
        spans[p] = Span(min(start, high), high)
    return spans


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise ProcessorError(
            f"cannot read the metadata of {topic}: {exc.args[0].str()}"
        ) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise ProcessorError(
            f"the dead-letter topic {topic} (PROCESSOR_DEADLETTER_TOPIC) does not exist"
        )
    return sorted(found.partitions)


def _watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    asked = KafkaPartition(topic, partition)
    try:
        low, high = consumer.get_watermark_offsets(asked, TIMEOUT_S)
    except KafkaException as exc:
        raise ProcessorError(
            f"cannot read the ends of {topic}[{partition}]: {exc.args[0].str()}"
        ) from None
    return int(low), int(high)


# Known limitation: after a run killed mid-batch, a dry run waits here for the
# batch left open, which only the next real run (or the broker, after
# transaction.timeout.ms) aborts; past TIMEOUT_S it stops with the error.
def _stored(
    consumer: Consumer, topic: str, partitions: list[int]
) -> dict[int, int | None]:
    asked = [KafkaPartition(topic, p) for p in partitions]
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            answered = consumer.committed(asked, timeout=TIMEOUT_S)
            break
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() not in _NOT_YET or time.monotonic() > deadline:
                raise ProcessorError(
                    f"cannot read the replay group's position: {error.str()}"
                ) from None
            time.sleep(_RETRY_PAUSE_S)
    # A negative offset is librdkafka's "none stored".
    return {tp.partition: tp.offset if tp.offset >= 0 else None for tp in answered}


def _by_time(
    consumer: Consumer, topic: str, partitions: list[int], since: datetime
) -> dict[int, int]:
    """First offset whose timestamp is at or after ``since``; -1 past the end.

    A dead letter's timestamp is set when it is produced, just after its
    ``failed_at``, so no dead letter that failed at ``since`` or later lies
    before the offset found.
    """
    moment = deadletters.epoch_ms(since)
    asked = [KafkaPartition(topic, p, moment) for p in partitions]
    try:
        answered = consumer.offsets_for_times(asked, timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise ProcessorError(
            f"cannot look up offsets by time in {topic}: {exc.args[0].str()}"
        ) from None
    return {tp.partition: tp.offset for tp in answered}
