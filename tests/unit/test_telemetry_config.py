"""Which exporters the OTEL_* variables ask for, and the JSON log lines."""

from __future__ import annotations

import io
import json
import logging

import pytest

from processor import logs
from processor.errors import SettingsError
from processor.metrics import metric_exporters
from processor.telemetry import trace_exporters


def test_traces_are_exported_only_when_asked_for() -> None:
    assert trace_exporters({}) == []
    assert trace_exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == ["otlp"]
    assert trace_exporters({"OTEL_TRACES_EXPORTER": "console, otlp"}) == [
        "console",
        "otlp",
    ]
    assert trace_exporters({"OTEL_TRACES_EXPORTER": "none"}) == []


def test_metrics_go_to_prometheus_unless_told_otherwise() -> None:
    assert metric_exporters({}) == ["prometheus"]
    assert metric_exporters({"OTEL_METRICS_EXPORTER": "otlp,prometheus"}) == [
        "otlp",
        "prometheus",
    ]
    assert metric_exporters({"OTEL_METRICS_EXPORTER": "none"}) == []


@pytest.mark.parametrize(
    ("check", "variable"),
    [
        (trace_exporters, "OTEL_TRACES_EXPORTER"),
        (metric_exporters, "OTEL_METRICS_EXPORTER"),
    ],
)
def test_an_unknown_exporter_is_a_setting_error_naming_the_variable(
    check: object, variable: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        check({variable: "zipkin"})  # type: ignore[operator]

    assert str(raised.value).startswith(variable)
    assert "zipkin" in str(raised.value)


def captured(level: int = logging.INFO) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger(f"test.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger, stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_logged_in_a_job_carries_the_jobs_fields_and_extras() -> None:
    logger, stream = captured()

    with logs.job_fields(request_id="r-1", action_id="a", partition=3, offset=9):
        logger.info("slow answer from %s", "CXone", extra={"latency_ms": 812})
    logger.warning("outside any job")

    inside, outside = lines(stream)
    assert inside["message"] == "slow answer from CXone"
    assert inside["level"] == "INFO"
    assert (inside["request_id"], inside["partition"], inside["offset"]) == (
        "r-1",
        3,
        9,
    )
    assert inside["latency_ms"] == 812
    assert "request_id" not in outside
    assert outside["level"] == "WARNING"


def test_known_secrets_are_blanked_out_of_every_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A redactor of its own: other tests' tokens would blank parts of this line.
    monkeypatch.setattr(logs, "redact", logs.Redactor())
    logger, stream = captured()
    logs.redact.add("s3cr3t-value")
    logs.redact.add("tok-abc123")

    logger.error("refused: secret=%s token=%s", "s3cr3t-value", "tok-abc123")

    text = stream.getvalue()
    assert "s3cr3t-value" not in text
    assert "tok-abc123" not in text
    assert lines(stream)[0]["message"] == "refused: secret=*** token=***"
