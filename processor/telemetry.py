"""Tracing: one span per job, continuing the upstream trace when there is one.

The job span's W3C ``traceparent`` goes on every output record of the job, so
results, dead letters and audit events lead back to the trace that asked for
the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from processor.records import Record

SERVICE_NAME = "cxone-processor"
JOB_SPAN = "process"

_propagator = TraceContextTextMapPropagator()


def setup_tracing() -> None:
    """Install the SDK's tracer provider unless the host program did already."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return
    resource = Resource.create({"service.name": SERVICE_NAME})
    trace.set_tracer_provider(TracerProvider(resource=resource))


@cache
def tracer() -> trace.Tracer:
    # Looked up once: get_tracer costs as much as a span does.
    return trace.get_tracer("processor")


@contextmanager
def job_span(record: Record, group_id: str) -> Iterator[Span]:
    """The span of one job, child of the record's ``traceparent`` if it has one."""
    carrier = _upstream_headers(record)
    parent = _propagator.extract(carrier) if carrier else context.Context()
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.consumer.group.name": group_id,
    }
    if record.key is not None:
        attributes["messaging.kafka.message.key"] = record.key.decode(
            "utf-8", "replace"
        )

    with tracer().start_as_current_span(
        f"{JOB_SPAN} {record.topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        yield span


def traceparent(span: Span) -> list[tuple[str, str | bytes | None]]:
    """The headers that carry ``span`` to the records it produces."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return [(name, value) for name, value in carrier.items()]


def _upstream_headers(record: Record) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for name, value in record.headers:
        if name in ("traceparent", "tracestate") and value is not None:
            carrier[name] = value.decode("latin-1")
    return carrier
