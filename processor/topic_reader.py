"""Reading one topic from a chosen start, outside every consumer group.

``TopicReader`` assigns all of the topic's partitions itself (``assign()``,
never ``subscribe()``) under a throwaway group id and never commits, so it
joins no group and moves no committed offset, the processor's included.
Without ``follow`` it stops at the end offsets the partitions had when it
started; records produced after that are left for the next read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Literal

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from processor import tool_settings
from processor.errors import ProcessorError
from processor.settings import Settings, kafka_setting_error

log = logging.getLogger(__name__)

# "beginning", "end", or a time in epoch milliseconds.
Start = Literal["beginning", "end"] | int

_BROKER_TIMEOUT_S = 15.0
_POLL_S = 0.5


class TopicReader:
    """The records of one topic, from ``start`` to the end (or on and on)."""

    def __init__(
        self, settings: Settings, topic: str, start: Start, follow: bool
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._start = start
        self._consumer = _consumer(settings)
        try:
            ends = self._assign()
        except BaseException:
            self._consumer.close()
            raise
        self._ends = Ends(topic, None if follow else ends)

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._consumer.close()

    # Known limitation: the partitions are those the topic had at the start;
    # one added while following is not read until the next start.
    def messages(self, stopped: list[bool]) -> Iterator[Message | None]:
        """Each record in turn, and None after a poll that brought none.

        Ends when the end offsets are reached (without ``follow``) or once
        ``stopped`` holds anything.
        """
        while not stopped and not self._ends.reached:
            message = self._consumer.poll(_POLL_S)
            if message is not None and _usable(message) and self._ends.wants(message):
                yield message
                self._ends.passed(message)
            else:
                self._ends.settle(self._consumer)
                yield None

    def _assign(self) -> dict[int, int]:
        """Assign every partition from the start; returns the end offsets of
        those with records before the end they have now."""
        topic = self._topic
        try:
            partitions = self._partitions()
            ends = {
                p: self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=_BROKER_TIMEOUT_S
                )
                for p in partitions
            }
            starts = self._starts(ends)
        except KafkaException as exc:
            raise tool_settings.kafka_error(
                f"cannot read {topic}", self._settings, exc
            ) from None

        self._consumer.assign([TopicPartition(topic, p, starts[p]) for p in partitions])
        return {p: high for p, (_, high) in ends.items() if starts[p] < high}

    def _partitions(self) -> list[int]:
        metadata = self._consumer.list_topics(self._topic, timeout=_BROKER_TIMEOUT_S)
        found = metadata.topics.get(self._topic)
        if found is None or found.error is not None or not found.partitions:
            reason = found.error.str() if found and found.error else "no partitions"
            raise ProcessorError(f"topic {self._topic} cannot be read: {reason}")
        return sorted(found.partitions)

    def _starts(self, ends: dict[int, tuple[int, int]]) -> dict[int, int]:
        if self._start == "beginning":
            return {p: low for p, (low, _) in ends.items()}
        if self._start == "end":
            return {p: high for p, (_, high) in ends.items()}

        asked = [TopicPartition(self._topic, p, self._start) for p in ends]
        found = self._consumer.offsets_for_times(asked, timeout=_BROKER_TIMEOUT_S)
        # -1: no record at or after that time, so the partition starts at its end.
        return {
            tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition][1]
            for tp in found
        }


class Ends:
    """Without ``follow``: the partitions still to read, and where each ends."""

    def __init__(self, topic: str, ends: dict[int, int] | None) -> None:
        self._topic = topic
        self._remaining = None if ends is None else dict(ends)

    @property
    def reached(self) -> bool:
        return self._remaining is not None and not self._remaining

    def wants(self, message: Message) -> bool:
        """Whether ``message`` comes before its partition's end."""
        if self._remaining is None:
            return True
        end = self._remaining.get(message.partition() or 0)
        return end is not None and (message.offset() or 0) < end

    def passed(self, message: Message) -> None:
        if self._remaining is None:
            return
        partition = message.partition() or 0
        if (message.offset() or 0) + 1 >= self._remaining[partition]:
            del self._remaining[partition]

    def settle(self, consumer: Consumer) -> None:
        """Forget partitions whose position has reached their end.

        The position also passes records the consumer never hands over (such
        as transaction markers), which the last offset seen would not.
        """
        if not self._remaining:
            return
        asked = [TopicPartition(self._topic, p) for p in self._remaining]
        for position in consumer.position(asked):
            if position.offset >= self._remaining[position.partition]:
                del self._remaining[position.partition]


def _consumer(settings: Settings) -> Consumer:
    config = settings.consumer_config(
        **{
            # librdkafka wants a group id even for assign(); a fresh one that
            # is never joined nor committed leaves nothing on the brokers.
            "group.id": f"cxone-processor-tail-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "client.id": "cxone-processor-tail",
        }
    )
    try:
        return Consumer(config)
    except KafkaException as exc:
        raise kafka_setting_error(exc.args[0].str()) from None


def _usable(message: Message) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.fatal():
        raise ProcessorError(f"the consumer failed: {error.str()}")
    # Passing errors (a broker restarting, say): librdkafka recovers by itself.
    log.warning("reading %s: %s", message.topic(), error.str())
    return False
