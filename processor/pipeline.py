"""The stream processor: records in, one result or dead letter out per record.

Records arrive from the consumer thread in batches into a bounded buffer and
start as jobs while fewer than ``PROCESSOR_MAX_IN_FLIGHT`` run. A job's
output is produced when it ends; once the broker acknowledges it, the
record's offset may be committed. Commits go out periodically, on revocation
and at shutdown, and never pass a record whose output is not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from confluent_kafka import KafkaException, Producer

from processor import schemas
from processor.audit import AuditType
from processor.auth import TokenSource
from processor.breaker import Breaker
from processor.consumer import ConsumerThread
from processor.cxone import CxoneApi
from processor.errors import (
    AuthenticationError,
    ProcessorError,
    RetryableApiError,
    UntrustedCertificateError,
)
from processor.flow import FlowControl
from processor.limiter import AdaptiveLimit
from processor.metrics import Gauges
from processor.observability import Observability
from processor.offsets import OffsetTracker, TopicPartition
from processor.outputs import (
    Outputs,
    ProducerHealth,
    check_topics,
    codecs_for,
    producer_config,
)
from processor.records import Record
from processor.scheduler import NO_ACTION, Job, Scheduler
from processor.settings import Settings, kafka_setting_error
from processor.throttle import Throttle
from processor.transport import AiohttpTransport
from processor.worker import Parsed, Worker

log = logging.getLogger(__name__)

_PRODUCER_POLL_S = 0.005
_FINAL_FLUSH_S = 15.0


class Pipeline:
    """One processor instance: consumes, submits, produces, commits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._full = False
        self._paused_at = 0.0
        self._accepting = True
        self._tasks: dict[TopicPartition, set[asyncio.Task[None]]] = defaultdict(set)
        self._unacked: dict[TopicPartition, int] = defaultdict(int)
        self._tracker = OffsetTracker()
        self._stop = asyncio.Event()
        self._fatal: ProcessorError | None = None
        self._joined = False
        self._drain_rate = 0.0

    # -- lifecycle --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; raises the error that stopped it, if any."""
        self._stop = stop
        self._observability = Observability(self.settings)
        reader = schemas.Reader(_registry(self.settings))
        codecs = codecs_for(self.settings)
        health = ProducerHealth()
        try:
            producer = Producer(producer_config(self.settings, health))
        except KafkaException as exc:
            raise kafka_setting_error(exc.args[0].str()) from None
        check_topics(producer, self.settings, health)
        self._outputs = Outputs(producer, self.settings, codecs, self._fail, health)

        transport = self._http_transport()
        timeout = httpx.Timeout(self.settings.request_timeout_s)
        metrics = self._observability.metrics
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            api = await self._connect(client, transport, timeout)
            self._flow = self._flow_control()
            self._worker = Worker(
                self.settings, reader, self._outputs, api, self._flow, metrics
            )
            self._consumer = ConsumerThread(
                self.settings, self, asyncio.get_running_loop()
            )
            await self._observability.start(self._gauges(), self._live, self._ready)
            try:
                await self._serve()
            finally:
                await self._observability.stop()

        if self._fatal is not None:
            raise self._fatal

    @property
    def status_url(self) -> str | None:
        """Where metrics and health are served, once running (if they are)."""
        return self._observability.url

    def _gauges(self) -> Gauges:
        return Gauges(
            in_flight=lambda: self._flow.slots.in_use,
            limit=self._flow.limit,
            pace=lambda: round(self._flow.pacer.rate() or 0.0, 1),
            paused=lambda: self._consumer.paused_partitions,
            buffered=lambda: self._scheduler.buffered,
            lag=lambda: self._consumer.lag,
            drain_rate=lambda: self._drain_rate,
        )

    def _live(self) -> dict[str, bool]:
        return {"event_loop": True, "consumer": self._consumer.alive}

    def _ready(self) -> dict[str, bool]:
        return {
            "joined_group": self._joined,
            "producer": self._outputs.health.healthy and self._fatal is None,
            "breaker_closed": not self._flow.breaker.open,
        }

    def _flow_control(self) -> FlowControl:
        settings = self.settings
        limit = AdaptiveLimit(
            settings.max_in_flight, probe_interval_s=settings.limit_probe_interval_s
        )
        self._scheduler: Scheduler[Parsed] = Scheduler(
            settings.ordering, settings.cap_for, lambda: _jobs_started_for(limit())
        )
        return FlowControl(Throttle(), Breaker(), limit)

    async def _connect(
        self,
        client: httpx.AsyncClient,
        transport: httpx.AsyncBaseTransport,
        timeout: httpx.Timeout,
    ) -> CxoneApi:
        """Fetch a first token, so bad credentials stop the start."""
        tokens = TokenSource(client, self.settings)
        try:
            await tokens.token()
        except UntrustedCertificateError as exc:
            raise ProcessorError(f"cannot connect to CXone: {exc}") from None
        except RetryableApiError as exc:
            log.warning("CXone token endpoint not ready (%s); jobs will retry", exc)
        metrics = self._observability.metrics
        return CxoneApi(
            transport, tokens, self.settings.cxone_base_url, timeout, metrics
        )

    async def _serve(self) -> None:
        settings = self.settings
        self._outputs.audit(
            AuditType.PROCESSOR_STARTED, details=_started_details(settings)
        )
        log.info(
            "processor %s consuming %s as group %s, at most %d jobs in flight",
            settings.instance_id,
            settings.requests_topic,
            settings.group_id,
            settings.max_in_flight,
        )
        self._consumer.start()
        helpers = [
            asyncio.create_task(self._pump_producer(), name="producer-poll"),
            asyncio.create_task(self._commit_periodically(), name="committer"),
            asyncio.create_task(self._report_drain_rate(), name="drain-rate"),
        ]
        try:
            await self._until_stopped()
            await self._shut_down()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _until_stopped(self) -> None:
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait(
            [stop_wait, self._consumer.closed], return_when=asyncio.FIRST_COMPLETED
        )
        stop_wait.cancel()
        if self._consumer.error is not None:
            self._fail(
                ProcessorError(f"the Kafka consumer failed: {self._consumer.error}")
            )

    async def _shut_down(self) -> None:
        reason = str(self._fatal) if self._fatal else "stop requested"
        log.info(
            "stopping (%s): %d jobs in flight, %d buffered",
            reason,
            self._scheduler.in_flight,
            self._scheduler.buffered,
        )
        self._accepting = False
        self._consumer.stop_fetching()
        self._drop_buffered(None)

        deadline = time.monotonic() + self.settings.grace_period_s
        await self._finish_jobs(self._all_tasks(), deadline)
        await self._await_acks(None, deadline)
        details = {
            "reason": reason,
            "in_flight_limit": self._flow.limit(),
            **self.counts,
        }
        self._outputs.audit(AuditType.PROCESSOR_STOPPED, details=details)
        self._outputs.flush(_FINAL_FLUSH_S)

        self._consumer.close(self._tracker.to_commit())
        await self._consumer.closed
        log.info(
            "stopped: %s", ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        )

    @property
    def counts(self) -> dict[str, int]:
        return self._worker.counts

    def _fail(self, error: ProcessorError) -> None:
        if self._fatal is None:
            self._fatal = error
        self._stop.set()

    # -- the consumer thread's side (called on the loop) ------------------------

    def deliver(self, records: list[Record]) -> None:
        if not self._accepting:
            return
        scheduler = self._scheduler
        for record in records:
            self._tracker.track(record.topic_partition, record.offset)
            parsed = self._worker.parse(record)
            action = parsed.request.action_id if parsed.request else NO_ACTION
            lane = scheduler.lane_of(action, record.key, record.topic_partition)
            scheduler.add(Job(parsed, action, lane, record.size))
        self._update_full()
        self._dispatch()

    def pause_reason(self) -> str | None:
        # Called from the consumer thread: it only reads flags and numbers.
        if not self._accepting:
            return "stopping"
        if self._full:
            return "buffer_full"
        return self._flow.pause_reason(self._scheduler.in_flight)

    def room(self) -> int:
        # Called from the consumer thread, like pause_reason.
        return self.settings.buffer_max_records - self._scheduler.buffered

    def paused(self, reason: str, partitions: list[TopicPartition]) -> None:
        self._paused_at = time.monotonic()
        log.log(
            logging.DEBUG if reason == "buffer_full" else logging.INFO,
            "paused %d partitions: %s",
            len(partitions),
            reason,
        )
        self._outputs.audit(
            AuditType.PARTITIONS_PAUSED,
            details={
                "reason": reason,
                "partitions": _names(partitions),
                "buffered": self._scheduler.buffered,
            },
        )

    def resumed(self, reason: str, partitions: list[TopicPartition]) -> None:
        paused_s = time.monotonic() - self._paused_at
        self._outputs.audit(
            AuditType.PARTITIONS_RESUMED,
            details={
                "reason": reason,
                "paused_s": round(paused_s, 3),
                "partitions": _names(partitions),
                "buffered": self._scheduler.buffered,
            },
        )

    async def assigned(
        self, partitions: list[TopicPartition], paused_for: str | None
    ) -> None:
        self._joined = True
        if not partitions:
            return  # a cooperative rebalance that gave this member nothing
        for partition in partitions:
            self._tracker.assign(partition)
        details = {"partitions": _names(partitions)}
        if paused_for is not None:
            details["paused_for"] = paused_for
        log.info("assigned %s%s", _names(partitions), " (paused)" if paused_for else "")
        self._outputs.audit(AuditType.PARTITIONS_ASSIGNED, details=details)

    async def revoked(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Finish the partitions' jobs (within the grace period); say what to commit."""
        if not partitions:
            return {}
        self._drop_buffered(set(partitions))
        deadline = time.monotonic() + self.settings.grace_period_s
        tasks = [task for p in partitions for task in self._tasks.get(p, ())]
        await self._finish_jobs(tasks, deadline)
        await self._await_acks(partitions, deadline)

        positions = self._tracker.to_commit(partitions)
        self._forget(partitions)
        log.info("revoked %s", _names(partitions))
        self._outputs.audit(
            AuditType.PARTITIONS_REVOKED, details={"partitions": _names(partitions)}
        )
        return positions

    async def lost(self, partitions: list[TopicPartition]) -> None:
        # Lost partitions are someone else's already: nothing may be committed.
        self._drop_buffered(set(partitions))
        self._forget(partitions)
        log.warning("lost %s; their jobs in flight may run twice", _names(partitions))
        self._outputs.audit(
            AuditType.PARTITIONS_REVOKED,
            details={"partitions": _names(partitions), "lost": "true"},
        )

    def commit_failed(self, positions: dict[TopicPartition, int]) -> None:
        self._tracker.uncommitted(positions)

    # -- jobs -------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._accepting and (job := self._scheduler.next()) is not None:
            self._start(job)
        self._update_full()

    def _start(self, job: Job[Parsed]) -> None:
        self._observability.metrics.queue_wait.record(
            time.monotonic() - job.payload.queued_at
        )
        record = job.payload.record
        partition = record.topic_partition
        self._unacked[partition] += 1
        output = _Output(self._tracker, record, self._settled)
        task = asyncio.create_task(self._worker.process(job.payload, output.acked))
        self._tasks[partition].add(task)
        task.add_done_callback(lambda done: self._ended(job, done, output))

    def _ended(
        self, job: Job[Parsed], task: asyncio.Task[None], output: _Output
    ) -> None:
        self._scheduler.finished(job)
        tasks = self._tasks.get(job.payload.record.topic_partition)
        if tasks is not None:
            tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or error is not None:
            # No output is coming: nothing to wait for at shutdown. The offset
            # stays unfinished, so no commit passes the record.
            output.abandoned()
        if isinstance(error, AuthenticationError):
            # Credentials refused mid-run: every job would fail the same way.
            self._fail(error)
        elif error is not None:
            log.error("a job failed unexpectedly", exc_info=error)
            self._fail(ProcessorError(f"a job failed unexpectedly: {error!r}"))
        self._dispatch()

    def _settled(self, partition: TopicPartition) -> None:
        if partition in self._unacked:
            self._unacked[partition] -= 1

    # -- helpers ------------------------------------------------------------------

    def _update_full(self) -> None:
        count, size = self._scheduler.buffered, self._scheduler.buffered_bytes
        max_count, max_bytes = (
            self.settings.buffer_max_records,
            self.settings.buffer_max_bytes,
        )
        if count >= max_count or size >= max_bytes:
            self._full = True
        elif count <= max_count // 2 and size <= max_bytes // 2:
            self._full = False

    def _drop_buffered(self, partitions: set[TopicPartition] | None) -> None:
        """Drop buffered records of ``partitions`` (of all, with ``None``).

        Dropped records were never done, so no commit passes them: they are
        consumed again by whoever owns the partition next.
        """
        if partitions is None:
            self._scheduler.drop(lambda parsed: False)
        else:
            self._scheduler.drop(
                lambda parsed: parsed.record.topic_partition not in partitions
            )
        self._update_full()

    def _forget(self, partitions: Iterable[TopicPartition]) -> None:
        for partition in partitions:
            self._tracker.forget(partition)
            self._tasks.pop(partition, None)
            self._unacked.pop(partition, None)

    def _all_tasks(self) -> list[asyncio.Task[None]]:
        return [task for tasks in self._tasks.values() for task in tasks]

    async def _finish_jobs(
        self, tasks: list[asyncio.Task[None]], deadline: float
    ) -> None:
        if not tasks:
            return
        _, late = await asyncio.wait(
            tasks, timeout=max(0.0, deadline - time.monotonic())
        )
        for task in late:
            task.cancel()
        if late:
            log.warning(
                "%d jobs did not finish in the grace period; they will run again",
                len(late),
            )
            await asyncio.wait(late)

    async def _await_acks(
        self, partitions: list[TopicPartition] | None, deadline: float
    ) -> None:
        chosen = list(self._unacked) if partitions is None else partitions
        while (
            any(self._unacked.get(p, 0) > 0 for p in chosen)
            and time.monotonic() < deadline
        ):
            self._outputs.poll()
            await asyncio.sleep(_PRODUCER_POLL_S)

    async def _pump_producer(self) -> None:
        while True:
            self._outputs.poll()
            await asyncio.sleep(_PRODUCER_POLL_S)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval_s)
            positions = self._tracker.to_commit()
            if positions:
                self._tracker.committed(positions)
                self._consumer.commit(positions)

    async def _report_drain_rate(self) -> None:
        window = self.settings.drain_rate_window_s
        before = self._worker.finished
        while True:
            await asyncio.sleep(window)
            finished = self._worker.finished
            per_minute = (finished - before) * 60.0 / window
            before = finished
            self._drain_rate = per_minute
            self._outputs.audit(
                AuditType.DRAIN_RATE,
                details={"jobs_per_minute": round(per_minute, 1), "window_s": window},
            )

    def _http_transport(self) -> AiohttpTransport:
        settings = self.settings
        verify: ssl.SSLContext | bool = True
        if settings.cxone_ca_bundle:
            verify = ssl.create_default_context(cafile=settings.cxone_ca_bundle)
        return AiohttpTransport(
            max_connections=settings.max_in_flight + 2, verify=verify
        )


def _jobs_started_for(limit: int) -> int:
    """Jobs that may run at once when ``limit`` submissions may be on the wire.

    The extra ones are being decoded, waiting for a slot or producing their
    outputs, so a freed slot goes to a job that is ready to send at once.
    """
    return limit + max(2, limit // 2)


def _registry(settings: Settings) -> schemas.Registry | None:
    if settings.schema_registry_url is None:
        return None
    return schemas.registry_client(settings.schema_registry_url)


def _started_details(settings: Settings) -> dict[str, object]:
    return {
        "requests_topic": settings.requests_topic,
        "group_id": settings.group_id,
        "max_in_flight": settings.max_in_flight,
        "max_attempts": settings.max_attempts,
    }


def _names(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(partitions))


class _Output:
    """The output a started job owes: acknowledged by the broker, or abandoned."""

    def __init__(
        self,
        tracker: OffsetTracker,
        record: Record,
        settled: Callable[[TopicPartition], None],
    ) -> None:
        self._tracker = tracker
        self._partition = record.topic_partition
        self._offset = record.offset
        self._settled = settled
        self._owed = True

    def acked(self) -> None:
        self._tracker.done(self._partition, self._offset)
        self._settle()

    def abandoned(self) -> None:
        self._settle()

    def _settle(self) -> None:
        if self._owed:
            self._owed = False
            self._settled(self._partition)
