"""Dead letters back onto the requests topic, one Kafka transaction per batch.

Each batch's selected originals and the replay group's new position are
written in one transaction (``send_offsets_to_transaction``), so a batch is
either wholly sent and passed or not at all; where a run starts and ends is
``processor.replay_range``'s. The consumer is assigned its partitions rather
than subscribed: the transactional.id, which is the group's name, is what
fences a second run of the same group, and the older one stops at its next
commit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import NoReturn

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as KafkaPartition

from processor import deadletters, replay_range, schemas
from processor.deadletters import DeadLetter, Selection, Tally, Verdict
from processor.errors import InvalidRequest, ProcessorError
from processor.settings import Settings, kafka_setting_error

log = logging.getLogger(__name__)

_TIMEOUT_S = replay_range.TIMEOUT_S
_POLL_S = 0.5
# Nothing at all read for this long while short of the ends: Kafka is away.
_STALL_S = 60.0
_FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED})
# The coordinator answers CONCURRENT_TRANSACTIONS while the last batch's
# markers are written; librdkafka's default 100 ms backoff would then add a
# tenth of a second to every batch. KAFKA_RETRY_BACKOFF_MS overrides it.
_PRODUCER_DEFAULTS = {"linger.ms": 5, "retry.backoff.ms": 20}


@dataclass(frozen=True)
class Plan:
    """One run, as the command line asked for it."""

    group: str
    selection: Selection
    max_replays: int = 3
    limit: int | None = None
    batch_size: int = 200
    dry_run: bool = False
    from_beginning: bool = False


class Republisher:
    """Reads the dead-letter topic and sends the selected originals back."""

    def __init__(self, settings: Settings, plan: Plan, reader: schemas.Reader) -> None:
        self._settings = settings
        self._plan = plan
        self._reader = reader
        self._topic = settings.deadletter_topic
        self._consumer = _consumer(settings, plan.group)
        self._producer = None if plan.dry_run else _producer(settings, plan.group)
        self._ends: dict[int, int] = {}
        self._open: set[int] = set()
        self._in_transaction = False
        # What committed transactions hold (a dry run: what it read), and the
        # group's position after them.
        self.committed = Tally()
        self.positions: dict[int, int] = {}

    def run(self, stop: threading.Event) -> None:
        """Replay up to the ends, the limit, or ``stop``; raises ``ProcessorError``."""
        try:
            self._start_transactions()
            self._plan_range()
            self._replay(stop)
        finally:
            self._abort()
            self._consumer.close()

        log.info(
            "replay of %s ended: %s",
            self._topic,
            deadletters.summary(self.committed, dry_run=self._plan.dry_run)[0],
            extra={"topic": self._topic, "group": self._plan.group},
        )

    def _start_transactions(self) -> None:
        if self._producer is None:
            return
        # Before the stored position is read: taking over the transactional.id
        # aborts a batch an interrupted run left open, so the position is final.
        try:
            self._producer.init_transactions(_TIMEOUT_S)
        except KafkaException as exc:
            raise ProcessorError(
                f"cannot start Kafka transactions as {self._plan.group}: "
                f"{exc.args[0].str()}"
            ) from None

    def _plan_range(self) -> None:
        spans = replay_range.plan(
            self._consumer,
            self._topic,
            from_beginning=self._plan.from_beginning,
            since=self._plan.selection.since,
        )
        self.positions = {p: span.start for p, span in spans.items()}
        self._ends = {p: span.end for p, span in spans.items()}
        self._open = {p for p, span in spans.items() if span.start < span.end}

        log.info(
            "replaying %s onto %s as group %s: from %s up to %s",
            self._topic,
            self._settings.requests_topic,
            self._plan.group,
            self.positions,
            self._ends,
            extra={"topic": self._topic, "group": self._plan.group},
        )
        self._consumer.assign(
            [KafkaPartition(self._topic, p, self.positions[p]) for p in self._open]
        )

    def _replay(self, stop: threading.Event) -> None:
        heard_at = time.monotonic()
        while self._open and not self._limit_reached() and not stop.is_set():
            try:
                messages = self._consumer.consume(self._plan.batch_size, _POLL_S)
            except KafkaException as exc:
                raise ProcessorError(
                    f"reading {self._topic}: {exc.args[0].str()}"
                ) from None
            if messages:
                heard_at = time.monotonic()
            elif time.monotonic() - heard_at > _STALL_S:
                raise ProcessorError(
                    f"nothing read from {self._topic} for {_STALL_S:.0f} s though "
                    f"partitions {sorted(self._open)} are short of their ends; "
                    "is Kafka reachable?"
                )
            self._batch(messages, stop)

    def _batch(self, messages: list[Message], stop: threading.Event) -> None:
        tally = Tally()
        moved: dict[int, int] = {}
        for message in messages:
            if stop.is_set():
                self._abort()
                return
            partition = self._in_range(message)
            if partition is None:
                continue

            self._begin()
            self._handle(partition, message, tally)
            moved[partition] = (message.offset() or 0) + 1
            if moved[partition] >= self._ends[partition]:
                self._open.discard(partition)
            if self._limit_reached(tally):
                break

        if moved:
            self._commit(moved, tally)

    def _in_range(self, message: Message) -> int | None:
        """The record's partition when it is one to handle, else ``None``."""
        partition, offset = message.partition() or 0, message.offset() or 0
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                if offset >= self._ends.get(partition, 0):
                    self._open.discard(partition)
                return None
            if error.fatal():
                raise ProcessorError(f"reading {self._topic}: {error.str()}")
            log.warning("reading %s: %s", self._topic, error.str())
            return None

        if partition not in self._open:
            return None
        if offset >= self._ends[partition]:
            self._open.discard(partition)
            return None
        return partition

    def _handle(self, partition: int, message: Message, tally: Tally) -> None:
        offset = message.offset() or 0
        try:
            letter = deadletters.decode(
                self._reader, partition, offset, message.value()
            )
        except InvalidRequest as exc:
            # Known limitation: a dead letter that cannot be read, also for a
            # passing reason such as a Schema Registry that is down, is passed
            # over like the others; --from-beginning or --since reaches it again.
            tally.undecodable += 1
            log.warning(
                "dead letter at %s[%d]@%d cannot be read and is passed over: %s",
                self._topic,
                partition,
                offset,
                exc,
                extra={"topic": self._topic, "partition": partition, "offset": offset},
            )
            return

        verdict = deadletters.judge(
            letter, self._plan.selection, self._plan.max_replays
        )
        tally.count(verdict, letter.reason)
        if verdict is Verdict.SEND:
            self._send(letter)

    def _send(self, letter: DeadLetter) -> None:
        if self._producer is None:
            return
        # judge() sends nothing whose count it could not read.
        count = deadletters.replay_count(letter.headers) or 0
        headers: list[tuple[str, str | bytes | None]] = [
            *deadletters.replayed_headers(letter.headers, count + 1)
        ]
        try:
            self._produce(self._producer, letter, headers)
        except KafkaException as exc:
            self._fail(exc.args[0], f"sending {letter.partition}@{letter.offset}")

    def _produce(
        self,
        producer: Producer,
        letter: DeadLetter,
        headers: list[tuple[str, str | bytes | None]],
    ) -> None:
        topic = self._settings.requests_topic
        try:
            producer.produce(topic, letter.value, letter.key, headers=headers)
        except BufferError:
            # The local queue is full: once it drains there is room.
            producer.flush(_TIMEOUT_S)
            producer.produce(topic, letter.value, letter.key, headers=headers)

    def _begin(self) -> None:
        if self._producer is None or self._in_transaction:
            return
        try:
            self._producer.begin_transaction()
        except KafkaException as exc:
            self._fail(exc.args[0], "starting a batch")
        self._in_transaction = True

    def _commit(self, moved: dict[int, int], tally: Tally) -> None:
        if self._producer is not None:
            offsets = [KafkaPartition(self._topic, p, o) for p, o in moved.items()]
            try:
                self._producer.send_offsets_to_transaction(
                    offsets, self._consumer.consumer_group_metadata(), _TIMEOUT_S
                )
                self._producer.commit_transaction(_TIMEOUT_S)
            except KafkaException as exc:
                self._fail(exc.args[0], "committing a batch")
            self._in_transaction = False

        self.committed.add(tally)
        self.positions.update(moved)
        log.debug("batch committed: positions %s", moved)

    def _abort(self) -> None:
        if self._producer is None or not self._in_transaction:
            return
        self._in_transaction = False
        try:
            self._producer.abort_transaction(_TIMEOUT_S)
        except KafkaException as exc:
            log.warning(
                "the open batch could not be aborted (%s); the next run as %s "
                "aborts it, and until then read_committed readers wait for it",
                exc.args[0].str(),
                self._plan.group,
            )

    def _fail(self, error: KafkaError, doing: str) -> NoReturn:
        if error.code() in _FENCED:
            self._in_transaction = False
            raise ProcessorError(
                f"another replay as group {self._plan.group} has started and taken "
                "over; this one stopped without committing its batch"
            )
        self._abort()
        raise ProcessorError(
            f"{doing} failed, so the batch was aborted: {error.str()}; "
            "run again to resume after the last committed batch"
        )

    def _limit_reached(self, pending: Tally | None = None) -> bool:
        if self._plan.limit is None:
            return False
        sent = self.committed.total(Verdict.SEND)
        if pending is not None:
            sent += pending.total(Verdict.SEND)
        return sent >= self._plan.limit


def _consumer(settings: Settings, group: str) -> Consumer:
    config = settings.consumer_config(
        **{
            "group.id": group,
            "client.id": f"{settings.instance_id}-replay-consumer",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # The stored position is then read only once no transaction that
            # moves it is still open.
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "logger": logging.getLogger("processor.kafka.consumer"),
        }
    )
    try:
        return Consumer(config)
    except KafkaException as exc:
        raise kafka_setting_error(exc.args[0].str()) from None


def _producer(settings: Settings, group: str) -> Producer:
    config = _PRODUCER_DEFAULTS | settings.producer_config(
        **{
            "transactional.id": group,
            "client.id": f"{settings.instance_id}-replay-producer",
            "logger": logging.getLogger("processor.kafka.producer"),
        }
    )
    try:
        return Producer(config)
    except KafkaException as exc:
        raise kafka_setting_error(exc.args[0].str()) from None
