"""Traces, metrics, health and logs of a running processor.

The span tree is read from the SDK's in-memory exporter with the pipeline run
in this process; metrics and health are scraped from the HTTP port of
``cxone-processor run`` in a subprocess, as Prometheus and a load balancer
would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from processor import settings as settings_module
from processor.pipeline import Pipeline
from processor.simulator import Behaviour, Latency
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import ProcessorProcess, request, wait_until

UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, with an in-memory exporter (set once)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    exporter.clear()


def run_in_process(world: Rig, until: Callable[[], bool], **settings: str) -> None:
    """The pipeline on this thread's own loop until ``until()`` holds."""
    loaded = settings_module.load(environ=world.env(**settings))

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(Pipeline(loaded).run(stop))
        deadline = time.monotonic() + 90
        while not until() and time.monotonic() < deadline and not running.done():
            await asyncio.sleep(0.2)
        stop.set()
        await running

    asyncio.run(main())


def test_a_jobs_spans_continue_the_upstream_trace_and_its_outputs_carry_it(
    rig: RigFactory, spans: InMemorySpanExporter
) -> None:
    world = rig(Behaviour(latency=Latency(5, 1)), partitions=1)
    headers: list[tuple[str, str | bytes | None]] = [
        ("traceparent", TRACEPARENT.encode())
    ]
    world.produce([(b"key-1", request(1))], headers=headers)

    run_in_process(world, lambda: len(job_spans(spans)) >= 1)
    results = world.read("results", 1)
    audit = [m for m in world.read("audit", 3) if m.key() == b"r-000001"]

    [job] = job_spans(spans)
    children = [s for s in spans.get_finished_spans() if is_child(s, job)]
    by_name = {s.name: s for s in children}
    post = by_name["POST /api/v2/data-actions/{id}/jobs"]
    look_up = by_name["GET /api/v2/data-actions/{id}"]
    send = by_name[f"send {world.topics.results}"]

    assert job.kind is SpanKind.CONSUMER
    assert job.parent is not None
    assert format(job.context.trace_id, "032x") == UPSTREAM_TRACE
    assert format(job.parent.span_id, "016x") == UPSTREAM_SPAN
    assert dict(job.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": world.topics.requests,
        "messaging.destination.partition.id": "0",
        "messaging.kafka.offset": 0,
        "messaging.consumer.group.name": world.group,
        "messaging.kafka.message.key": "key-1",
    }
    assert post.kind is SpanKind.CLIENT
    assert post.attributes is not None
    assert post.attributes["http.request.method"] == "POST"
    assert post.attributes["url.template"] == "/api/v2/data-actions/{id}/jobs"
    assert post.attributes["http.response.status_code"] == 202
    assert look_up.attributes is not None
    assert look_up.attributes["http.response.status_code"] == 200
    assert send.kind is SpanKind.PRODUCER
    assert send.attributes is not None
    assert send.attributes["messaging.destination.name"] == world.topics.results

    job_parent = f"00-{UPSTREAM_TRACE}-{format(job.context.span_id, '016x')}-01"
    for message in [*results, *audit]:
        assert dict(message.headers() or [])["traceparent"] == job_parent.encode()
    assert len(audit) == 2  # JOB_STARTED and JOB_COMPLETED


def test_retries_and_throttling_are_events_on_the_jobs_span(
    rig: RigFactory, spans: InMemorySpanExporter
) -> None:
    # Seeded: the first submission draws a fault, the retry finds the rate
    # limit's one-token bucket empty (429), and the third goes through.
    behaviour = Behaviour(
        latency=Latency(5, 1), error_rate=0.5, seed=1, rate_limit_per_s=5, rate_burst=1
    )
    world = rig(behaviour, partitions=1)
    spans.clear()
    world.produce([(b"a", request(1))])

    run_in_process(world, lambda: len(job_spans(spans)) >= 1)

    events = {event.name for span in job_spans(spans) for event in span.events}
    posts = [s for s in spans.get_finished_spans() if s.name.startswith("POST")]
    resends = [
        int(str((s.attributes or {}).get("http.request.resend_count", 0)))
        for s in posts
    ]
    assert {"retry", "throttled"} <= events
    assert max(resends) >= 2


def job_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER]


def is_child(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


# -- metrics and health, from the HTTP port of the running command -------------


def status_url(process: ProcessorProcess) -> str:
    found: list[str] = []

    def announced() -> bool:
        for line in process.log().splitlines():
            if "metrics and health on" in line:
                found.append(json.loads(line)["message"].split()[4])
                return True
        return False

    assert wait_until(announced, timeout=30), process.log()
    return found[0]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_as_jobs_retries_throttles_and_dead_letters_happen(
    rig: RigFactory,
) -> None:
    behaviour = Behaviour(
        latency=Latency(5, 1),
        error_rate=0.2,
        seed=3,
        rate_limit_per_s=100,
        rate_burst=5,
    )
    world = rig(behaviour, partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(60))
    process = world.start()
    url = status_url(process)
    assert wait_until(lambda: world.simulator.stats()["accepted"] >= 60, timeout=60)
    first = scrape(url)

    world.produce((f"k{i}".encode(), request(i)) for i in range(60, 100))
    world.produce([(b"bad", b"not json"), (b"bad", b"{}")])
    world.read("results", 100, timeout=90)
    assert wait_until(
        lambda: value(scrape(url), "cxone_processor_results_total") >= 100, 30
    )
    last = scrape(url)
    process.stop()
    stats = world.simulator.stats()

    results = "cxone_processor_results_total"
    dead = "cxone_processor_dead_letters_total"
    throttled = "cxone_processor_throttled_total"
    assert value(first, results) == 60
    assert value(last, results) == 100
    assert value(last, dead, reason="INVALID_REQUEST") == 2
    assert value(first, dead, reason="INVALID_REQUEST") == 0
    assert value(last, "cxone_processor_retries_total") >= 1
    assert value(last, throttled) == stats["throttled_rate"] >= 1
    for histogram in (
        "cxone_processor_job_queue_wait_seconds_count",
        "cxone_processor_job_end_to_end_seconds_count",
    ):
        assert value(last, histogram) > value(first, histogram) > 0
    assert value(last, "cxone_processor_api_latency_seconds_count", outcome="202") > (
        value(first, "cxone_processor_api_latency_seconds_count", outcome="202")
    )
    assert value(last, "cxone_processor_in_flight_limit") >= 1
    partitions = {f"{world.topics.requests}[{p}]" for p in range(2)}
    lags = {
        dict(labels)["partition"]
        for name, labels in last
        if name == "cxone_processor_consumer_lag"
    }
    assert lags == partitions


def test_readiness_and_the_gauges_follow_the_flow_and_the_breaker(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=Latency(10, 2)), partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(4000))
    process = world.start(
        PROCESSOR_MAX_IN_FLIGHT="8",
        PROCESSOR_DRAIN_RATE_WINDOW_S="1",
        # Room for the whole backlog: the only pause is the breaker's, not a
        # full buffer's while the jobs flow.
        PROCESSOR_BUFFER_MAX_RECORDS="10000",
    )
    url = status_url(process)

    def ready() -> int:
        return httpx.get(f"{url}/health/ready", timeout=10).status_code

    def gauge(name: str) -> float:
        return value(scrape(url), name)

    assert wait_until(lambda: ready() == 200, timeout=30)
    assert wait_until(lambda: gauge("cxone_processor_in_flight") > 0, timeout=30)
    assert wait_until(
        lambda: gauge("cxone_processor_drain_rate_per_min") > 0, timeout=30
    )
    flowing = scrape(url)
    world.simulator.start_outage(6.0)
    assert wait_until(lambda: ready() == 503, timeout=30)
    during = httpx.get(f"{url}/health/ready", timeout=10).json()
    live = httpx.get(f"{url}/health/live", timeout=10).status_code
    assert wait_until(
        lambda: gauge("cxone_processor_partitions_paused") == 2, timeout=30
    )
    open_metrics = scrape(url)
    assert wait_until(lambda: ready() == 200, timeout=60)
    process.stop()

    assert during["checks"]["breaker_closed"] is False
    assert during["checks"]["joined_group"] is True
    assert live == 200
    assert value(flowing, "cxone_processor_partitions_paused") == 0
    assert value(flowing, "cxone_processor_breaker_openings_total") == 0
    assert value(open_metrics, "cxone_processor_breaker_openings_total") == 1
    assert value(open_metrics, "cxone_processor_buffered") > 0


def test_no_secret_or_token_is_written_after_refreshes_and_failures(
    rig: RigFactory,
) -> None:
    behaviour = Behaviour(
        token_lifetime_s=1, latency=Latency(10, 2), error_rate=0.05, seed=11
    )
    world = rig(behaviour, partitions=2)
    good = 1500
    world.produce((f"k{i}".encode(), request(i)) for i in range(good))
    world.produce([(b"gone", request(good, "action_missing")), (b"bad", b"{")])

    process = world.start(PROCESSOR_MAX_IN_FLIGHT="8", PROCESSOR_LOG_LEVEL="DEBUG")
    assert wait_until(lambda: world.simulator.stats()["accepted"] >= 200, timeout=60)
    world.simulator.start_outage(3.0, target="token")
    outputs = [
        *world.read("results", good, timeout=120),
        *world.read("deadletter", 2),
        *world.read("audit", 2 * good, settle=2.0),
    ]
    process.stop()
    stats = world.simulator.stats()
    tokens = world.simulator.issued_tokens()

    written = [process.log()] + [repr((m.value(), m.headers())) for m in outputs]
    assert stats["tokens_issued"] >= 3
    assert stats["token_failures"] >= 1
    assert stats["faults"] >= 1
    assert len(tokens) == stats["tokens_issued"]
    assert '"level": "DEBUG"' in written[0]
    for text in written:
        assert behaviour.client_secret not in text
        assert not [token for token in tokens if token in text]
