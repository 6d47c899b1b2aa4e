"""The Kafka consumer, on a thread of its own.

librdkafka calls rebalance callbacks from inside ``consume()``, and a
revocation must wait for the revoked partitions' jobs to finish and commit
before it returns. Those jobs run on the asyncio loop, so the consumer cannot
live on that loop: it runs here, hands records to the loop in batches, and
blocks in a revocation while the loop drains the partitions.

The loop talks back through a command queue (commit, stop fetching, close),
which this thread serves between ``consume()`` calls; no other thread touches
the consumer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from processor.offsets import TopicPartition as Partition
from processor.records import Headers, Record
from processor.settings import Settings, kafka_setting_error

log = logging.getLogger(__name__)

_BATCH = 500
_POLL_S = 0.05
_CALLBACK_MARGIN_S = 15.0
# How often the lag of each assigned partition is worked out for the metrics.
_LAG_INTERVAL_S = 5.0
_LAG_QUERY_TIMEOUT_S = 1.0
# librdkafka's "no offset yet" (OFFSET_INVALID).
_OFFSET_INVALID = -1001


class Sink(Protocol):
    """What the consumer thread hands records and rebalances to."""

    def deliver(self, records: list[Record]) -> None: ...

    def pause_reason(self) -> str | None: ...

    def room(self) -> int: ...

    def paused(self, reason: str, partitions: list[Partition]) -> None: ...

    def resumed(self, reason: str, partitions: list[Partition]) -> None: ...

    async def assigned(
        self, partitions: list[Partition], paused_for: str | None
    ) -> None: ...

    async def revoked(self, partitions: list[Partition]) -> dict[Partition, int]: ...

    async def lost(self, partitions: list[Partition]) -> None: ...

    def commit_failed(self, positions: dict[Partition, int]) -> None: ...


# librdkafka prefetches up to 100,000 records (64 MB) per partition by default;
# the pipeline keeps its own bounded buffer, so a small prefetch keeps memory
# flat whatever the backlog. KAFKA_* settings override these.
_PREFETCH = {"queued.min.messages": 1000, "queued.max.messages.kbytes": 1024}


def consumer_config(
    settings: Settings, on_commit: Callable[..., None]
) -> dict[str, Any]:
    return _PREFETCH | settings.consumer_config(
        **{
            "group.id": settings.group_id,
            "client.id": f"{settings.instance_id}-consumer",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "partition.assignment.strategy": "cooperative-sticky",
            "on_commit": on_commit,
            "logger": logging.getLogger("processor.kafka.consumer"),
        }
    )


class ConsumerThread:
    """Consumes the requests topic and serves the group until closed."""

    def __init__(
        self, settings: Settings, sink: Sink, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._loop = loop
        self._commands: queue.SimpleQueue[Callable[[Consumer], None]] = (
            queue.SimpleQueue()
        )
        self._fetching = True
        self._closing = False
        self._pause_reason: str | None = None
        # Created here, on the caller's thread, so a bad KAFKA_* setting stops
        # the start instead of failing later on the consumer thread.
        try:
            self._consumer = Consumer(consumer_config(settings, self._on_commit))
        except KafkaException as exc:
            raise kafka_setting_error(exc.args[0].str()) from None
        self._thread = threading.Thread(
            target=self._run, name="kafka-consumer", daemon=True
        )
        self.closed: asyncio.Future[None] = loop.create_future()
        self.error: BaseException | None = None
        # Read by the metrics from other threads; replaced whole, never mutated.
        self.lag: dict[str, int] = {}
        self.paused_partitions = 0
        self._lag_at = 0.0

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def commit(self, positions: dict[Partition, int]) -> None:
        """Store and commit ``positions`` (asynchronously) on the consumer thread."""
        self._commands.put(
            lambda consumer: self._commit(consumer, positions, wait=False)
        )

    def stop_fetching(self) -> None:
        """Keep serving the group, but hand over no more records."""
        self._fetching = False

    def close(self, final: dict[Partition, int]) -> None:
        """Commit ``final`` synchronously, leave the group, end the thread."""

        def closing(consumer: Consumer) -> None:
            self._commit(consumer, final, wait=True)
            self._closing = True

        self._commands.put(closing)

    def _run(self) -> None:
        try:
            consumer = self._consumer
            consumer.subscribe(
                [self._settings.requests_topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            self._serve(consumer)
            consumer.close()
        except BaseException as exc:  # handed to the loop to report
            log.exception("the Kafka consumer failed")
            self.error = exc
        finally:
            self._loop.call_soon_threadsafe(_resolve, self.closed)

    def _serve(self, consumer: Consumer) -> None:
        while not self._closing:
            self._run_commands(consumer)
            if self._closing:
                break
            self._apply_backpressure(consumer)
            self._measure_lag(consumer)

            # No more than the buffer has room for: the rest waits in Kafka.
            wanted = max(1, min(_BATCH, self._sink.room()))
            messages = consumer.consume(num_messages=wanted, timeout=_POLL_S)
            records = [self._record(m) for m in messages if self._usable(m)]
            if records and self._fetching:
                self._loop.call_soon_threadsafe(self._sink.deliver, records)

    def _run_commands(self, consumer: Consumer) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            command(consumer)

    def _apply_backpressure(self, consumer: Consumer) -> None:
        """Pause every assigned partition while the pipeline cannot take more.

        Paused partitions stay assigned and the group is served as usual,
        since consume() goes on being called: a long pause is no rebalance.
        """
        reason = self._sink.pause_reason() if self._fetching else "stopping"
        was = self._pause_reason
        if (reason is None) == (was is None):
            return

        assignment = consumer.assignment()
        chosen = [(tp.topic, tp.partition) for tp in assignment]
        if reason is not None:
            consumer.pause(assignment)
            notice = functools.partial(self._sink.paused, reason, chosen)
        else:
            consumer.resume(assignment)
            notice = functools.partial(self._sink.resumed, str(was), chosen)
        self._pause_reason = reason
        self.paused_partitions = len(assignment) if reason is not None else 0
        if "stopping" not in (reason, was):
            self._loop.call_soon_threadsafe(notice)

    def _measure_lag(self, consumer: Consumer) -> None:
        """Records between each partition's position and its end, now and then."""
        now = time.monotonic()
        if now - self._lag_at < _LAG_INTERVAL_S:
            return
        self._lag_at = now

        assignment = consumer.assignment()
        # While paused nothing is fetched, so the cached end offsets go stale:
        # ask the broker instead.
        cached = self._pause_reason is None
        lag: dict[str, int] = {}
        for partition in consumer.position(assignment):
            try:
                _, end = consumer.get_watermark_offsets(
                    partition, timeout=_LAG_QUERY_TIMEOUT_S, cached=cached
                )
            except KafkaException:
                continue
            if partition.offset != _OFFSET_INVALID and end >= 0:
                lag[f"{partition.topic}[{partition.partition}]"] = max(
                    0, end - partition.offset
                )
        self.lag = lag
        self.paused_partitions = len(assignment) if self._pause_reason else 0

    def _commit(
        self, consumer: Consumer, positions: dict[Partition, int], *, wait: bool
    ) -> None:
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in positions.items()
            if (topic, partition) in assigned
        ]
        if not offsets:
            return
        try:
            consumer.store_offsets(offsets=offsets)
            if wait:
                consumer.commit(asynchronous=False)
            else:
                consumer.commit(asynchronous=True)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit of %s failed: %s", _describe(positions), exc)
                self._loop.call_soon_threadsafe(self._sink.commit_failed, positions)

    def _on_commit(
        self, error: KafkaError | None, partitions: list[TopicPartition]
    ) -> None:
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            log.warning("an asynchronous commit failed: %s", error)
            # Offered again by the next commit, or it would stay behind for good.
            positions = {(tp.topic, tp.partition): tp.offset for tp in partitions}
            self._loop.call_soon_threadsafe(self._sink.commit_failed, positions)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.incremental_assign(partitions)
        if self._pause_reason is not None:
            # Partitions come back paused while the reason for it holds.
            consumer.pause(partitions)
        else:
            # librdkafka remembers a pause across losing a partition and
            # getting it back; a pause that ended meanwhile must not stay.
            consumer.resume(partitions)
        chosen = [(tp.topic, tp.partition) for tp in partitions]
        self._wait_for(self._sink.assigned(chosen, self._pause_reason), "assignment")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        chosen = [(tp.topic, tp.partition) for tp in partitions]
        positions = self._wait_for(self._sink.revoked(chosen), "revocation")
        if positions:
            self._commit(consumer, positions, wait=True)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        chosen = [(tp.topic, tp.partition) for tp in partitions]
        self._wait_for(self._sink.lost(chosen), "loss of partitions")

    def _wait_for(self, step: Awaitable[Any], what: str) -> Any:
        future = asyncio.run_coroutine_threadsafe(_awaited(step), self._loop)
        try:
            return future.result(
                timeout=self._settings.grace_period_s + _CALLBACK_MARGIN_S
            )
        except FutureTimeout:
            log.error("handling the %s took too long; going on without it", what)
            future.cancel()
            return None

    @staticmethod
    def _usable(message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer: %s", error)
        return False

    @staticmethod
    def _record(message: Message) -> Record:
        kind, timestamp = message.timestamp()
        return Record(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=message.key(),
            value=message.value(),
            headers=_headers(message),
            timestamp_ms=timestamp if kind else None,
        )


def _headers(message: Message) -> Headers:
    # librdkafka hands headers over as bytes (or None); str only when produced so.
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [
        (name, value.encode() if isinstance(value, str) else value)
        for name, value in pairs
    ]


async def _awaited(step: Awaitable[Any]) -> Any:
    return await step


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _describe(positions: dict[Partition, int]) -> str:
    return ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(positions.items()))
