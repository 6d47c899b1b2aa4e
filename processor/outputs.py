"""The three output topics: results, dead letters and audit events.

Records are Avro in the configured framing, produced by one idempotent
producer (``acks=all``). The caller learns of each result's or dead letter's
acknowledgement through ``on_ack``; that is what lets its source offset be
committed. A delivery the broker refuses for good is fatal: ``on_fatal`` is
told, and the record's offset is never acknowledged, so no commit passes it.
Before anything is consumed, ``check_topics`` makes sure Kafka answers and
the three topics exist, so a wrong setting stops the start in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from processor import schemas, telemetry
from processor.audit import AuditType
from processor.errors import OutputError, ProcessorError
from processor.jobs import JobRequest
from processor.outcomes import Failed, Submitted
from processor.records import Record
from processor.settings import Settings

log = logging.getLogger(__name__)

Ack = Callable[[], None]
OutputHeaders = list[tuple[str, str | bytes | None]]

# When librdkafka's local queue is full, wait for deliveries this long at a
# time, at most this many times, before calling the producer stuck.
_METADATA_TIMEOUT_S = 15.0
# How long each wait for metadata lasts before the error reports are checked.
_REACH_POLL_S = 0.5
_QUEUE_FULL_WAIT_S = 0.05
_QUEUE_FULL_TRIES = 200


@dataclass(frozen=True)
class Codecs:
    result: schemas.Codec
    dead_letter: schemas.Codec
    audit: schemas.Codec


def codecs_for(settings: Settings) -> Codecs:
    """Single-object codecs, or registry ones registered under ``<topic>-value``."""
    result = schemas.load("job_result")
    dead_letter = schemas.load("dead_letter")
    audit = schemas.load("audit_event")
    if settings.schema_registry_url is None:
        return Codecs(
            schemas.SingleObjectCodec(result),
            schemas.SingleObjectCodec(dead_letter),
            schemas.SingleObjectCodec(audit),
        )

    registry = schemas.registry_client(settings.schema_registry_url)
    return Codecs(
        schemas.register(registry, settings.results_topic, result),
        schemas.register(registry, settings.deadletter_topic, dead_letter),
        schemas.register(registry, settings.audit_topic, audit),
    )


def producer_config(settings: Settings, health: ProducerHealth) -> dict[str, Any]:
    return settings.producer_config(
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "client.id": f"{settings.instance_id}-producer",
            "logger": logging.getLogger("processor.kafka.producer"),
            "error_cb": health.error,
        }
    )


class ProducerHealth:
    """Whether outputs reach the brokers, from librdkafka's own reports.

    librdkafka reports that every broker is down (or a fatal error) through
    its error callback and keeps retrying; the next acknowledged delivery
    shows it is back.
    """

    def __init__(self) -> None:
        self.healthy = True
        # The brokers' refusal of this client's credentials, if they refused.
        self.authentication_error: str | None = None

    def error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            self.authentication_error = error.str()
        if error.fatal() or error.code() == KafkaError._ALL_BROKERS_DOWN:
            if self.healthy:
                log.warning("the producer cannot reach Kafka: %s", error.str())
            self.healthy = False

    def delivered(self) -> None:
        self.healthy = True


class Outputs:
    """Produces results, dead letters and audit events."""

    def __init__(
        self,
        producer: Producer,
        settings: Settings,
        codecs: Codecs,
        on_fatal: Callable[[OutputError], None],
        health: ProducerHealth | None = None,
    ) -> None:
        self._producer = producer
        self._settings = settings
        self._codecs = codecs
        self._on_fatal = on_fatal
        self.health = health or ProducerHealth()

    def result(
        self,
        record: Record,
        request: JobRequest,
        submitted: Submitted,
        headers: OutputHeaders,
        on_ack: Ack,
    ) -> None:
        job = submitted.job
        value = self._codecs.result.encode(
            {
                "request_id": request.request_id,
                "action_id": request.action_id,
                "job_id": job.job_id,
                "job_status": job.status,
                "http_status": job.http_status,
                "attempts": submitted.attempts,
                "latency_ms": submitted.latency_ms,
                "source_topic": record.topic,
                "source_partition": record.partition,
                "source_offset": record.offset,
                "completed_at": _now_ms(),
                "job_created_at": job.created,
                "instance_id": self._settings.instance_id,
            }
        )
        key = request.request_id.encode()
        topic = self._settings.results_topic
        with telemetry.output_span(topic, key):
            self._produce(topic, key, value, headers, on_ack)

    # Known limitation: a request close to the broker's message.max.bytes,
    # dead-lettered with its value unchanged plus the envelope, can exceed that
    # limit; the broker refuses it and the processor stops rather than lose it.
    def dead_letter(
        self,
        record: Record,
        failed: Failed,
        request: JobRequest | None,
        headers: OutputHeaders,
        on_ack: Ack,
    ) -> None:
        value = self._codecs.dead_letter.encode(
            {
                "reason": failed.reason.value,
                "error": failed.error,
                "http_status": failed.http_status,
                "attempts": failed.attempts,
                "request_id": request.request_id if request else None,
                "action_id": request.action_id if request else None,
                "original_key": record.key,
                "original_value": record.value,
                "original_headers": [{"key": k, "value": v} for k, v in record.headers],
                "source_topic": record.topic,
                "source_partition": record.partition,
                "source_offset": record.offset,
                "failed_at": _now_ms(),
                "instance_id": self._settings.instance_id,
            }
        )
        key = request.request_id.encode() if request else None
        topic = self._settings.deadletter_topic
        with telemetry.output_span(topic, key):
            self._produce(topic, key, value, headers, on_ack)

    def audit(
        self,
        event: AuditType,
        *,
        request_id: str | None = None,
        action_id: str | None = None,
        details: Mapping[str, object] | None = None,
        headers: OutputHeaders | None = None,
    ) -> None:
        value = self._codecs.audit.encode(
            {
                "event_type": event.value,
                "time": _now_ms(),
                "instance_id": self._settings.instance_id,
                "request_id": request_id,
                "action_id": action_id,
                "details": {k: str(v) for k, v in (details or {}).items()},
            }
        )
        key = (request_id or self._settings.instance_id).encode()
        self._produce(self._settings.audit_topic, key, value, headers or [], None)

    def poll(self) -> None:
        """Serve delivery reports; call it often from the event loop's thread."""
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        """Wait for every delivery; returns how many are still outstanding."""
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: OutputHeaders,
        on_ack: Ack | None,
    ) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                self._refused(topic, error)
                return
            self.health.delivered()
            if on_ack is not None:
                on_ack()

        for _ in range(_QUEUE_FULL_TRIES):
            try:
                self._producer.produce(
                    topic, value, key, headers=headers, on_delivery=delivered
                )
                return
            except BufferError:
                self._producer.poll(_QUEUE_FULL_WAIT_S)
            except KafkaException as exc:
                self._refused(topic, exc.args[0])
                return
        self._refused(topic, "the producer's local queue stayed full")

    def _refused(self, topic: str, error: object) -> None:
        failure = OutputError(
            f"the broker refused a record for {topic} for good: {error}"
        )
        log.error("%s", failure)
        self._on_fatal(failure)


def check_topics(
    producer: Producer, settings: Settings, health: ProducerHealth
) -> None:
    """Fail at start, in one line, when Kafka or an output topic is missing."""
    wanted = [settings.results_topic, settings.deadletter_topic, settings.audit_topic]
    try:
        _reach(producer, settings, health)
        for topic in wanted:
            metadata = producer.list_topics(topic, timeout=_METADATA_TIMEOUT_S)
            error = metadata.topics[topic].error
            if error is not None:
                raise ProcessorError(
                    f"output topic {topic} is not usable: {error.str()}"
                )
    except KafkaException as exc:
        raise ProcessorError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc.args[0].str()}"
        ) from None


def _reach(producer: Producer, settings: Settings, health: ProducerHealth) -> None:
    """Wait for the brokers' metadata, stopping at once if they refuse the login.

    librdkafka reports a refused login only to the error callback, which
    polling serves; without it the start would fail later as a vague
    transport failure.
    """
    deadline = time.monotonic() + _METADATA_TIMEOUT_S
    while True:
        try:
            producer.list_topics(timeout=_REACH_POLL_S)
            return
        except KafkaException:
            producer.poll(0)
            if health.authentication_error is not None:
                raise ProcessorError(
                    f"Kafka at {settings.bootstrap_servers} refused the login "
                    f"({health.authentication_error}): check KAFKA_SASL_USERNAME, "
                    "KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISMS"
                ) from None
            if time.monotonic() > deadline:
                raise


def _now_ms() -> int:
    return int(time.time() * 1000)
