"""Metrics: every instrument the processor records, declared once, with its meaning.

They go through the OpenTelemetry SDK to the readers ``OTEL_METRICS_EXPORTER``
names: ``prometheus`` (the default: served on the processor's HTTP port at
``/metrics``), ``otlp`` and ``console``, or ``none``. Prometheus names are
the OpenTelemetry ones with dots as underscores, the unit and ``_total`` for
counters, e.g. ``cxone_processor_dead_letters_total{reason="REJECTED"}``.

Attributes are kept to a handful of values each (a reason, a status class, a
partition), so no series grows with the number of jobs or actions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    Observation,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry

from processor.errors import SettingsError
from processor.telemetry import SERVICE_NAME

_PREFIX = "cxone_processor"
# Seconds: from a millisecond API answer to a backlog hours old.
_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip


@dataclass(frozen=True)
class Instrument:
    name: str
    kind: str  # counter, histogram or gauge
    unit: str
    description: str


RESULTS = Instrument(
    f"{_PREFIX}.results", "counter", "{job}", "jobs CXone accepted (results produced)"
)
DEAD_LETTERS = Instrument(
    f"{_PREFIX}.dead_letters", "counter", "{job}", "dead letters produced, by reason"
)
THROTTLED = Instrument(
    f"{_PREFIX}.throttled", "counter", "{answer}", "429 answers from CXone"
)
RETRIES = Instrument(
    f"{_PREFIX}.retries", "counter", "{attempt}", "attempts retried after a fault"
)
BREAKER_OPENINGS = Instrument(
    f"{_PREFIX}.breaker.openings", "counter", "{opening}", "circuit breaker openings"
)
QUEUE_WAIT = Instrument(
    f"{_PREFIX}.job.queue_wait",
    "histogram",
    "s",
    "time a record waited in the buffer before its job started",
)
API_LATENCY = Instrument(
    f"{_PREFIX}.api.latency",
    "histogram",
    "s",
    "time CXone took to answer a job submission, by status class",
)
END_TO_END = Instrument(
    f"{_PREFIX}.job.end_to_end",
    "histogram",
    "s",
    "from the request record's timestamp to its result or dead letter",
)
IN_FLIGHT = Instrument(
    f"{_PREFIX}.in_flight", "gauge", "{request}", "job submissions on the wire"
)
LIMIT = Instrument(
    f"{_PREFIX}.in_flight.limit", "gauge", "{request}", "the adaptive in-flight limit"
)
PAUSED = Instrument(
    f"{_PREFIX}.partitions.paused", "gauge", "{partition}", "partitions paused now"
)
PACE = Instrument(
    f"{_PREFIX}.pace",
    "gauge",
    "{job}/s",
    "submissions allowed a second once the API throttles with few in flight; "
    "0 while not pacing",
)
BUFFERED = Instrument(
    f"{_PREFIX}.buffered", "gauge", "{record}", "records fetched, not yet started"
)
LAG = Instrument(
    f"{_PREFIX}.consumer.lag",
    "gauge",
    "{record}",
    "records behind the end of each assigned partition",
)
DRAIN_RATE = Instrument(
    f"{_PREFIX}.drain_rate",
    "gauge",
    "{job}/min",
    "jobs finished per minute over the last drain-rate window",
)
INSTRUMENTS = (
    RESULTS, DEAD_LETTERS, THROTTLED, RETRIES, BREAKER_OPENINGS, QUEUE_WAIT,
    API_LATENCY, END_TO_END, IN_FLIGHT, LIMIT, PACE, PAUSED, BUFFERED, LAG,
    DRAIN_RATE,
)  # fmt: skip


@dataclass(frozen=True)
class Gauges:
    """Where the gauges read their values, each call giving the value now."""

    in_flight: Callable[[], int]
    limit: Callable[[], int]
    pace: Callable[[], float]
    paused: Callable[[], int]
    buffered: Callable[[], int]
    lag: Callable[[], Mapping[str, int]]
    drain_rate: Callable[[], float]


class Metrics:
    """The instruments, ready to record."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self.results = _counter(meter, RESULTS)
        self.dead_letters = _counter(meter, DEAD_LETTERS)
        self.throttled = _counter(meter, THROTTLED)
        self.retries = _counter(meter, RETRIES)
        self.breaker_openings = _counter(meter, BREAKER_OPENINGS)
        self.queue_wait = _histogram(meter, QUEUE_WAIT)
        self.api_latency = _histogram(meter, API_LATENCY)
        self.end_to_end = _histogram(meter, END_TO_END)

    def observe(self, gauges: Gauges) -> None:
        """Register the gauges' callbacks (once the values exist to read)."""
        single = {
            IN_FLIGHT: gauges.in_flight,
            LIMIT: gauges.limit,
            PACE: gauges.pace,
            PAUSED: gauges.paused,
            BUFFERED: gauges.buffered,
            DRAIN_RATE: gauges.drain_rate,
        }
        for instrument, read in single.items():
            self._meter.create_observable_gauge(
                instrument.name,
                [_reading(read)],
                instrument.unit,
                instrument.description,
            )
        self._meter.create_observable_gauge(
            LAG.name, [_lag_reading(gauges.lag)], LAG.unit, LAG.description
        )


def _counter(meter: Meter, instrument: Instrument) -> Counter:
    return meter.create_counter(
        instrument.name, instrument.unit, instrument.description
    )


def _histogram(meter: Meter, instrument: Instrument) -> Histogram:
    return meter.create_histogram(
        instrument.name, instrument.unit, instrument.description
    )


def _reading(
    read: Callable[[], float],
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(read())]

    return observe


def _lag_reading(
    read: Callable[[], Mapping[str, int]],
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(lag, {"partition": partition})
            for partition, lag in read().items()
        ]

    return observe


@dataclass(frozen=True)
class MetricsSetup:
    provider: MeterProvider
    metrics: Metrics
    # The Prometheus registry /metrics serves, when that reader is on.
    registry: CollectorRegistry | None


def setup_metrics(
    instance_id: str, environ: Mapping[str, str] | None = None
) -> MetricsSetup:
    """A meter provider with the readers ``OTEL_METRICS_EXPORTER`` names."""
    environ = os.environ if environ is None else environ
    registry: CollectorRegistry | None = None
    readers: list[MetricReader] = []
    for name in metric_exporters(environ):
        if name == "prometheus":
            registry = CollectorRegistry(auto_describe=True)
            readers.append(_prometheus_reader(registry))
        else:
            readers.append(PeriodicExportingMetricReader(_metric_exporter(name)))

    resource = Resource.create(
        {
            "service.name": environ.get("OTEL_SERVICE_NAME", SERVICE_NAME),
            "service.instance.id": instance_id,
        }
    )
    views = [
        View(
            instrument_name=instrument.name,
            aggregation=ExplicitBucketHistogramAggregation(_LATENCY_BUCKETS),
        )
        for instrument in INSTRUMENTS
        if instrument.kind == "histogram"
    ]
    provider = MeterProvider(metric_readers=readers, resource=resource, views=views)
    metrics = Metrics(provider.get_meter("processor"))
    return MetricsSetup(provider, metrics, registry)


def metric_exporters(environ: Mapping[str, str]) -> list[str]:
    """The reader names ``OTEL_METRICS_EXPORTER`` asks for, ``none`` dropped."""
    names = environ.get("OTEL_METRICS_EXPORTER", "prometheus")
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    for name in chosen:
        if name not in ("prometheus", "otlp", "console", "none"):
            raise SettingsError(
                "OTEL_METRICS_EXPORTER",
                f"has {name!r}; use prometheus, otlp, console or none",
            )
    return [name for name in chosen if name != "none"]


def _prometheus_reader(registry: CollectorRegistry) -> MetricReader:
    from opentelemetry.exporter.prometheus import (  # noqa: PLC0415
        PrometheusMetricReader,
    )

    # Scope labels would repeat "processor" on every series; they say nothing.
    return PrometheusMetricReader(registry=registry, scope_info_enabled=False)


def _metric_exporter(name: str) -> MetricExporter:
    if name == "console":
        return ConsoleMetricExporter()
    # Imported here: the OTLP exporter pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter,
    )

    return OTLPMetricExporter()  # configured by OTEL_EXPORTER_OTLP_* itself
