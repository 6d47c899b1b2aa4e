"""One record, start to end: decode, submit, and produce its outputs.

Every record ends in exactly one result or one dead letter, produced with the
job span's ``traceparent`` and acknowledged through the ``acked`` callback the
caller passes in; audit events tell the story beside them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from opentelemetry.trace import Span

from processor import jobs, logs, telemetry
from processor.actions import ActionCache
from processor.audit import AuditType
from processor.cxone import CxoneApi
from processor.errors import InvalidRequest
from processor.flow import FlowControl
from processor.jobs import JobRequest
from processor.metrics import Metrics
from processor.outcomes import Failed, Reason, Submitted
from processor.outputs import Ack, OutputHeaders, Outputs
from processor.records import Record
from processor.schemas import Reader
from processor.settings import Settings
from processor.submitter import RetryPolicy, Submitter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A consumed record and what decoding made of it."""

    record: Record
    request: JobRequest | None
    error: InvalidRequest | None
    # When the record entered the buffer (monotonic), for the queue-wait metric.
    queued_at: float


class Worker:
    """Turns records into outputs; shared by every job of the process."""

    def __init__(
        self,
        settings: Settings,
        reader: Reader,
        outputs: Outputs,
        api: CxoneApi,
        flow: FlowControl,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._outputs = outputs
        self._metrics = metrics
        policy = RetryPolicy(
            settings.max_attempts, settings.backoff_initial_s, settings.backoff_max_s
        )
        actions = ActionCache(api, settings.action_cache_ttl_s)
        self._submitter = Submitter(
            api,
            actions,
            flow,
            policy,
            on_retry=self._retried,
            on_throttled=self._refused,
        )
        flow.throttle.on_hold.append(self._throttled)
        flow.throttle.on_resume.append(self._resumed)
        flow.breaker.on_open.append(self._breaker_opened)
        flow.breaker.on_close.append(self._breaker_closed)
        self.counts: dict[str, int] = defaultdict(int)
        self.finished = 0

    def parse(self, record: Record) -> Parsed:
        """Decode and validate the record's value (it decides its action)."""
        try:
            request = jobs.parse(
                record.value, self._reader, self._settings.max_request_bytes
            )
        except InvalidRequest as exc:
            return Parsed(record, None, exc, time.monotonic())
        return Parsed(record, request, None, time.monotonic())

    async def process(self, parsed: Parsed, acked: Ack) -> None:
        """Run the record's job and produce its result or dead letter."""
        record, request = parsed.record, parsed.request
        with (
            telemetry.job_span(record, self._settings.group_id) as span,
            logs.job_fields(**_log_fields(record, request, span)),
        ):
            headers = telemetry.traceparent(span)
            if request is None:
                error = str(parsed.error)
                failed = Failed(Reason.INVALID_REQUEST, error, None, 0)
                self._dead_letter(record, failed, None, headers, acked)
                return

            self._outputs.audit(
                AuditType.JOB_STARTED,
                request_id=request.request_id,
                action_id=request.action_id,
                headers=headers,
            )
            outcome = await self._submitter.submit(request)
            # The slot this job freed was handed to a waiting job; let that
            # one send before this one produces its outputs.
            await asyncio.sleep(0)
            if isinstance(outcome, Submitted):
                self._completed(record, request, outcome, headers, acked)
            else:
                self._dead_letter(record, outcome, request, headers, acked)

    def _completed(
        self,
        record: Record,
        request: JobRequest,
        submitted: Submitted,
        headers: OutputHeaders,
        acked: Ack,
    ) -> None:
        self._outputs.result(record, request, submitted, headers, acked)
        self._outputs.audit(
            AuditType.JOB_COMPLETED,
            request_id=request.request_id,
            action_id=request.action_id,
            details={
                "job_id": submitted.job.job_id,
                "attempts": submitted.attempts,
                "latency_ms": round(submitted.latency_ms, 1),
            },
            headers=headers,
        )
        self.counts["results"] += 1
        self.finished += 1
        self._metrics.results.add(1)
        self._ended(record)

    def _dead_letter(
        self,
        record: Record,
        failed: Failed,
        request: JobRequest | None,
        headers: OutputHeaders,
        acked: Ack,
    ) -> None:
        self._outputs.dead_letter(record, failed, request, headers, acked)
        self._outputs.audit(
            AuditType.JOB_DEAD_LETTERED,
            request_id=request.request_id if request else None,
            action_id=request.action_id if request else None,
            details={
                "reason": failed.reason.value,
                "error": failed.error,
                "partition": record.partition,
                "offset": record.offset,
            },
            headers=headers,
        )
        self.counts[f"dead_letters_{failed.reason.value.lower()}"] += 1
        self.finished += 1
        self._metrics.dead_letters.add(1, {"reason": failed.reason.value})
        self._ended(record)
        log.debug("dead-lettered (%s): %s", failed.reason.value, failed.error)

    def _ended(self, record: Record) -> None:
        if record.timestamp_ms is not None:
            waited_s = time.time() - record.timestamp_ms / 1000
            self._metrics.end_to_end.record(max(0.0, waited_s))

    def _retried(
        self, request: JobRequest, attempt: int, wait_s: float, error: BaseException
    ) -> None:
        self.counts["retries"] += 1
        self._metrics.retries.add(1)
        telemetry.event(
            "retry", attempt=attempt, wait_s=round(wait_s, 3), error=str(error)
        )
        self._outputs.audit(
            AuditType.JOB_RETRIED,
            request_id=request.request_id,
            action_id=request.action_id,
            details={
                "attempt": attempt,
                "wait_s": round(wait_s, 3),
                "error": str(error),
            },
        )

    def _throttled(self, wait_s: float) -> None:
        self.counts["throttled"] += 1
        log.info(
            "CXone throttled the processor; holding submissions for %.1f s", wait_s
        )
        self._outputs.audit(AuditType.THROTTLED, details={"wait_s": round(wait_s, 3)})

    def _refused(self, retry_after_s: float) -> None:
        self._metrics.throttled.add(1)
        telemetry.event("throttled", retry_after_s=retry_after_s)

    def _breaker_opened(self) -> None:
        self.counts["breaker_openings"] += 1
        self._metrics.breaker_openings.add(1)
        telemetry.event("breaker opened")
        self._outputs.audit(AuditType.BREAKER_OPENED)

    def _breaker_closed(self) -> None:
        telemetry.event("breaker closed")
        self._outputs.audit(AuditType.BREAKER_CLOSED)

    def _resumed(self, held_s: float) -> None:
        log.info("resuming submissions after %.1f s", held_s)
        self._outputs.audit(AuditType.RESUMED, details={"held_s": round(held_s, 3)})


def _log_fields(
    record: Record, request: JobRequest | None, span: Span
) -> dict[str, object]:
    fields: dict[str, object] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "trace_id": telemetry.trace_id(span),
    }
    if request is not None:
        fields["request_id"] = request.request_id
        fields["action_id"] = request.action_id
    return fields
