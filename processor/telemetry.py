"""Tracing: one span per job, continuing the upstream trace when there is one.

Under the job span (``process <topic>``, kind CONSUMER) are a span per HTTP
request the job makes (the action look-up when it is not cached, and each
submission attempt), and one for the result or dead letter it produces.
Throttling, retries and breaker transitions are events on the job's span.
The job span's W3C ``traceparent`` goes on every output record of the job,
so results, dead letters and audit events lead back to the trace.

The standard ``OTEL_*`` variables configure it. ``OTEL_TRACES_EXPORTER``
names the exporters (``otlp``, ``console``, ``none``); unlike the SDK's own
default it is ``none`` unless an OTLP endpoint is set, and with no exporter
the spans are not recorded at all (they still carry trace ids, so the
``traceparent`` on outputs keeps the upstream trace whole).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from processor.errors import SettingsError
from processor.records import Record

SERVICE_NAME = "cxone-processor"
JOB_SPAN = "process"

Headers = list[tuple[str, str | bytes | None]]

_propagator = TraceContextTextMapPropagator()
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def setup_tracing(
    instance_id: str, environ: Mapping[str, str] | None = None
) -> TracerProvider:
    """Install the SDK's tracer provider unless the host program did already."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current

    environ = os.environ if environ is None else environ
    exporters = [_exporter(name) for name in trace_exporters(environ)]
    resource = Resource.create(
        {
            "service.name": environ.get("OTEL_SERVICE_NAME", SERVICE_NAME),
            "service.instance.id": instance_id,
        }
    )
    sampler: Sampler | None = None
    if not exporters and "OTEL_TRACES_SAMPLER" not in environ:
        sampler = ALWAYS_OFF  # nothing would see the spans: do not record them
    provider = TracerProvider(resource=resource, sampler=sampler)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def trace_exporters(environ: Mapping[str, str]) -> list[str]:
    """The exporter names ``OTEL_TRACES_EXPORTER`` asks for, ``none`` dropped."""
    default = "otlp" if any(environ.get(name) for name in _OTLP_ENDPOINTS) else "none"
    names = environ.get("OTEL_TRACES_EXPORTER", default)
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    for name in chosen:
        if name not in ("otlp", "console", "none"):
            raise SettingsError(
                "OTEL_TRACES_EXPORTER", f"has {name!r}; use otlp, console or none"
            )
    return [name for name in chosen if name != "none"]


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # Imported here: the OTLP exporter pulls in protobuf and requests, which a
    # processor that exports nothing has no use for.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()  # configured by OTEL_EXPORTER_OTLP_* itself


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
        "messaging.operation.name": JOB_SPAN,
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


@contextmanager
def http_span(
    method: str, template: str, url: str, resend_count: int
) -> Iterator[Span]:
    """One HTTP request to CXone, named by its URL template."""
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.template": template,
        "url.full": url,
    }
    if resend_count:
        attributes["http.request.resend_count"] = resend_count
    with tracer().start_as_current_span(
        f"{method} {template}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def answered(span: Span, status: int) -> None:
    """Record an HTTP answer's status on its span (4xx and 5xx are errors)."""
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(status))


def failed(span: Span, error: BaseException) -> None:
    """An HTTP request that got no answer at all."""
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.set_attribute("error.type", type(error).__name__)


@contextmanager
def output_span(topic: str, key: bytes | None) -> Iterator[Span]:
    """Producing one output record of the current job."""
    attributes: dict[str, str] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": topic,
    }
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
    with tracer().start_as_current_span(
        f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


def event(name: str, **attributes: str | int | float) -> None:
    """An event on the current span (the job's, inside a job)."""
    trace.get_current_span().add_event(name, attributes)


def traceparent(span: Span) -> Headers:
    """The headers that carry ``span`` to the records it produces."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return [(name, value) for name, value in carrier.items()]


def trace_id(span: Span) -> str | None:
    """The span's trace id as 32 hex digits, for log lines."""
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


def _upstream_headers(record: Record) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for name, value in record.headers:
        if name in ("traceparent", "tracestate") and value is not None:
            carrier[name] = value.decode("latin-1")
    return carrier
