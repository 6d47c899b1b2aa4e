"""The demo's pure parts: its requests, its reading of /metrics, its summary."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from prometheus_client import generate_latest

from processor import jobs, schemas
from processor.demo.summary import Summary, replay_commands
from processor.demo.view import metric_samples
from processor.demo.workload import (
    DRAFT_ACTION,
    PUBLISHED_ACTIONS,
    RESULT,
    UNKNOWN_ACTION,
    simulated_api,
    workload,
)
from processor.errors import InvalidRequest
from processor.metrics import Gauges, setup_metrics


def test_the_workload_has_the_size_asked_for_with_a_few_of_each_failure() -> None:
    planned = workload(3000)

    assert planned.size == 3000
    assert planned.expected == Counter(
        {
            RESULT: 2952,
            "ACTION_NOT_PUBLISHED": 30,
            "UNKNOWN_ACTION": 10,
            "INVALID_REQUEST": 8,
        }
    )
    assert all(key for key, _ in planned.records)
    assert workload(3000) == planned  # the same requests every run


def test_each_request_is_what_the_processor_will_make_of_it() -> None:
    planned = workload(200)
    api = simulated_api()
    reader = schemas.Reader()
    ids: list[str] = []

    for (_, value), outcome in zip(planned.records, planned.outcomes, strict=True):
        if outcome == "INVALID_REQUEST":
            with pytest.raises(InvalidRequest):
                jobs.parse(value, reader, 512 * 1024)
            continue
        request = jobs.parse(value, reader, 512 * 1024)
        ids.append(request.request_id)
        status = api.actions.get(request.action_id)
        if outcome == RESULT:
            assert request.action_id in PUBLISHED_ACTIONS
            assert status == "PUBLISHED"
        elif outcome == "ACTION_NOT_PUBLISHED":
            assert (request.action_id, status) == (DRAFT_ACTION, "DRAFT")
        else:
            assert outcome == "UNKNOWN_ACTION"
            assert request.action_id == UNKNOWN_ACTION
            assert status is None and api.other_actions is None

    assert len(set(ids)) == len(ids)


def test_the_view_reads_the_names_the_processor_exports() -> None:
    setup = setup_metrics("demo-test", {"OTEL_METRICS_EXPORTER": "prometheus"})
    metrics = setup.metrics
    metrics.throttled.add(3)
    metrics.retries.add(2)
    metrics.breaker_openings.add(1)
    metrics.observe(
        Gauges(
            in_flight=lambda: 7,
            limit=lambda: 12,
            pace=lambda: 0.0,
            paused=lambda: 4,
            buffered=lambda: 0,
            lag=dict,
            drain_rate=lambda: 0.0,
        )
    )
    assert setup.registry is not None

    found = metric_samples(generate_latest(setup.registry).decode())

    assert found == {
        "in_flight": 7,
        "limit": 12,
        "paused": 4,
        "throttled": 3,
        "retries": 2,
        "breaker_openings": 1,
    }
    setup.provider.shutdown()


def test_the_summary_counts_missing_and_duplicate_outputs() -> None:
    summary = Summary(produced=4)
    summary.outputs_by_source.update([(0, 0), (0, 1), (0, 1), (1, 0)])

    assert summary.missing == 1
    assert summary.duplicates == 1
    assert summary.as_dict()["accounted"] == {
        "requests_with_an_output": 3,
        "duplicates": 1,
        "missing": 1,
    }


def test_latency_percentiles_come_from_every_result() -> None:
    summary = Summary(produced=100)
    summary.latencies_ms.extend(float(ms) for ms in range(1, 101))

    found = summary.latency_percentiles()

    assert found["p50"] == pytest.approx(50.5)
    assert found["p95"] == pytest.approx(95.05)
    assert found["p99"] == pytest.approx(99.01)
    assert json.dumps(summary.as_dict())  # JSON-ready as it is


def test_replay_is_offered_only_for_reasons_a_fix_can_cure() -> None:
    summary = Summary(produced=10)
    summary.dead_letters.update({"INVALID_REQUEST": 3, "ACTION_NOT_PUBLISHED": 2})

    assert replay_commands(summary, "127.0.0.1:9092") == [
        "cxone-processor replay --bootstrap-servers 127.0.0.1:9092 "
        "--reason ACTION_NOT_PUBLISHED"
    ]
