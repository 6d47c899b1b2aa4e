"""The demo's summary, computed from what the topics hold once the run is over.

Its figures come from records read back from Kafka and decoded with the
project's schemas, not from the processor's own counters: results and their
latencies, dead letters by reason, and the audit events for pauses, 429s,
retries and breaker openings; beside them, the simulator's count of what the
API saw. ``accounted`` checks the promise itself: every request offset has
exactly one output.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from processor import schemas
from processor.settings import Settings
from processor.topic_reader import TopicReader

_SCHEMAS = {
    "results": "job_result",
    "deadletter": "dead_letter",
    "audit": "audit_event",
}
# The reasons worth replaying once their cause is fixed; invalid requests
# would fail again exactly as they are.
_REPLAYABLE = (
    "ACTION_NOT_PUBLISHED",
    "UNKNOWN_ACTION",
    "REJECTED",
    "RETRIES_EXHAUSTED",
)


@dataclass
class Summary:
    """What the topics say about the run."""

    produced: int
    results: int = 0
    result_request_ids: set[str] = field(default_factory=set)
    dead_letters: Counter[str] = field(default_factory=Counter)
    dead_letter_request_ids: set[str] = field(default_factory=set)
    # How many outputs each request (partition, offset) got.
    outputs_by_source: Counter[tuple[int, int]] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    retried_jobs: int = 0
    audit: Counter[str] = field(default_factory=Counter)
    pauses: Counter[str] = field(default_factory=Counter)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.outputs_by_source.values() if n > 1)

    @property
    def missing(self) -> int:
        return self.produced - len(self.outputs_by_source)

    def latency_percentiles(self) -> dict[str, float]:
        if len(self.latencies_ms) < 2:
            return {}
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "results": {
                "count": self.results,
                "request_ids": len(self.result_request_ids),
                "retried_jobs": self.retried_jobs,
                "latency_ms": {
                    name: round(value, 1)
                    for name, value in self.latency_percentiles().items()
                },
            },
            "dead_letters": {
                "count": sum(self.dead_letters.values()),
                "by_reason": dict(sorted(self.dead_letters.items())),
                "request_ids": len(self.dead_letter_request_ids),
            },
            "accounted": {
                "requests_with_an_output": len(self.outputs_by_source),
                "duplicates": self.duplicates,
                "missing": self.missing,
            },
            "audit": {
                "by_type": dict(sorted(self.audit.items())),
                "pauses_by_reason": dict(sorted(self.pauses.items())),
            },
        }


def read(settings: Settings, produced: int) -> Summary:
    """Reads the results, dead-letter and audit topics to their current ends."""
    summary = Summary(produced)
    decoder = schemas.Reader()
    for fields in _records(settings, settings.results_topic, "results", decoder):
        summary.results += 1
        summary.result_request_ids.add(fields["request_id"])
        summary.outputs_by_source[_source(fields)] += 1
        summary.latencies_ms.append(fields["latency_ms"])
        summary.retried_jobs += fields["attempts"] > 1

    for fields in _records(settings, settings.deadletter_topic, "deadletter", decoder):
        summary.dead_letters[fields["reason"]] += 1
        if fields["request_id"] is not None:
            summary.dead_letter_request_ids.add(fields["request_id"])
        summary.outputs_by_source[_source(fields)] += 1

    for fields in _records(settings, settings.audit_topic, "audit", decoder):
        summary.audit[fields["event_type"]] += 1
        if fields["event_type"] == "PARTITIONS_PAUSED":
            summary.pauses[fields["details"].get("reason", "unknown")] += 1
    return summary


def _records(
    settings: Settings, topic: str, kind: str, decoder: schemas.Reader
) -> Iterator[dict[str, Any]]:
    schema = schemas.load(_SCHEMAS[kind])
    with TopicReader(settings, topic, "beginning", follow=False) as reader:
        for message in reader.messages([]):
            value = None if message is None else message.value()
            if value is not None:
                yield decoder.read(value, schema)


def _source(fields: dict[str, Any]) -> tuple[int, int]:
    return fields["source_partition"], fields["source_offset"]


def render(summary: Summary, api: dict[str, Any], run_s: float) -> list[str]:
    """The summary as lines for a person."""
    dead = summary.dead_letters
    lines = [
        "",
        f"Summary, read back from the topics ({run_s:.1f} s of processing):",
        f"  requests produced   {summary.produced:,}",
        f"  results             {summary.results:,}"
        f"  ({summary.retried_jobs:,} after a retried fault)",
        f"  dead letters        {sum(dead.values()):,}",
        *(f"    {reason:<22}{count:,}" for reason, count in sorted(dead.items())),
        f"  accounted for       {_accounted(summary)}",
        f"  latency             {_percentiles(summary)}",
        f"  pauses              {_pauses(summary)}",
        f"  429s (THROTTLED)    {summary.audit['THROTTLED']:,} audit events; the API "
        f"answered {api.get('throttled', 0):,} submissions with 429",
        f"  retries             {summary.audit['JOB_RETRIED']:,} (faults: "
        f"{api.get('faults', 0):,} injected, {api.get('outage_rejections', 0):,} "
        "during outages)",
        f"  breaker openings    {summary.audit['BREAKER_OPENED']:,}",
        f"  CXone jobs created  {api.get('accepted', 0):,} "
        f"({api.get('duplicates', 0):,} duplicate submissions)",
    ]
    return lines


def _accounted(summary: Summary) -> str:
    if summary.missing == 0 and summary.duplicates == 0:
        return "every request has exactly one output"
    return (
        f"{summary.missing:,} request(s) without an output, "
        f"{summary.duplicates:,} duplicate output(s)"
    )


def _percentiles(summary: Summary) -> str:
    found = summary.latency_percentiles()
    if not found:
        return "-"
    return ", ".join(f"{name} {value:.0f} ms" for name, value in found.items())


def _pauses(summary: Summary) -> str:
    total = sum(summary.pauses.values())
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(summary.pauses.items()))
    return f"{total:,} ({reasons})" if total else "0"


def replay_commands(summary: Summary, bootstrap: str) -> list[str]:
    """A ``replay`` command line per replayable reason the run produced."""
    return [
        f"cxone-processor replay --bootstrap-servers {bootstrap} --reason {reason}"
        for reason in _REPLAYABLE
        if summary.dead_letters[reason]
    ]
