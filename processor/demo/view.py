"""The demo's live view: what the processor is doing, a few times a second.

The figures come from where an operator would look: the processor's own
``/metrics`` and ``/health/ready`` (in flight, the adaptive limit, 429s,
paused partitions, the breaker) and the output topics' end offsets (how many
requests have an output). On a terminal it is a small table redrawn in place
(rich); anywhere else, a plain line every few seconds.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from types import TracebackType

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from processor.settings import Settings

log = logging.getLogger(__name__)

_HTTP_TIMEOUT_S = 0.5
_KAFKA_TIMEOUT_S = 5.0
_RATE_WINDOW_S = 3.0
_PLAIN_EVERY_S = 2.0

# Prometheus sample names, as processor/metrics.py declares the instruments.
_SAMPLES = {
    "cxone_processor_in_flight": "in_flight",
    "cxone_processor_in_flight_limit": "limit",
    "cxone_processor_partitions_paused": "paused",
    "cxone_processor_throttled_total": "throttled",
    "cxone_processor_retries_total": "retries",
    "cxone_processor_breaker_openings_total": "breaker_openings",
}


@dataclass(frozen=True)
class Reading:
    """One look at the run; None where the processor has not said yet."""

    elapsed_s: float
    jobs: int
    results: int
    dead_letters: int
    jobs_per_s: float
    metrics: dict[str, float]
    breaker_open: bool | None
    outage: bool

    @property
    def outputs(self) -> int:
        return self.results + self.dead_letters

    def figure(self, name: str) -> str:
        value = self.metrics.get(name)
        return "-" if value is None else f"{value:,.0f}"

    @property
    def breaker(self) -> str:
        if self.breaker_open is None:
            state = "-"
        else:
            state = "OPEN" if self.breaker_open else "closed"
        return f"{state}  (openings so far: {self.figure('breaker_openings')})"


class Observer:
    """Takes readings: the output topics' ends and the processor's status port."""

    def __init__(self, settings: Settings, jobs: int) -> None:
        self._jobs = jobs
        self._topics = (settings.results_topic, settings.deadletter_topic)
        self._consumer = Consumer(
            settings.consumer_config(**{"group.id": f"demo-{uuid.uuid4().hex[:8]}"})
        )
        self._http = httpx.Client(timeout=_HTTP_TIMEOUT_S)
        self._partitions: dict[str, list[int]] = {}
        self._ends: dict[str, int] = {}
        self._history: deque[tuple[float, int]] = deque()
        self._started = time.monotonic()

    def close(self) -> None:
        self._http.close()
        self._consumer.close()

    def read(self, status_url: str | None, outage: bool) -> Reading:
        results, dead_letters = (self._end(topic) for topic in self._topics)
        metrics, breaker_open = self._status(status_url)
        now = time.monotonic()
        return Reading(
            elapsed_s=now - self._started,
            jobs=self._jobs,
            results=results,
            dead_letters=dead_letters,
            jobs_per_s=self._rate(now, results + dead_letters),
            metrics=metrics,
            breaker_open=breaker_open,
            outage=outage,
        )

    def _end(self, topic: str) -> int:
        """Records on ``topic``: its outputs come from an idempotent producer
        outside transactions, so end offsets count records exactly."""
        try:
            if topic not in self._partitions:
                found = self._consumer.list_topics(topic, timeout=_KAFKA_TIMEOUT_S)
                self._partitions[topic] = sorted(found.topics[topic].partitions)
            self._ends[topic] = sum(
                self._consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=_KAFKA_TIMEOUT_S
                )[1]
                for p in self._partitions[topic]
            )
        except KafkaException:
            # A slow answer on a busy machine: the last count stands this time.
            log.debug("no end offsets for %s this time", topic, exc_info=True)
        return self._ends.get(topic, 0)

    def _status(self, url: str | None) -> tuple[dict[str, float], bool | None]:
        """The metrics, and whether the breaker is open (None: not known)."""
        if url is None:
            return {}, None
        try:
            metrics = metric_samples(self._http.get(f"{url}/metrics").text)
            checks = self._http.get(f"{url}/health/ready").json().get("checks", {})
        except (httpx.HTTPError, ValueError):
            # The processor may be starting or stopping between two requests;
            # the next reading asks again.
            return {}, None
        closed = checks.get("breaker_closed")
        return metrics, None if closed is None else not closed

    def _rate(self, now: float, outputs: int) -> float:
        self._history.append((now, outputs))
        while now - self._history[0][0] > _RATE_WINDOW_S:
            self._history.popleft()
        then, before = self._history[0]
        return (outputs - before) / (now - then) if now > then else 0.0


def metric_samples(text: str) -> dict[str, float]:
    """The figures the view shows, from Prometheus text, summed over labels."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = _SAMPLES.get(sample.name)
            if name is not None:
                found[name] = found.get(name, 0.0) + sample.value
    return found


class Display:
    """A live table on a terminal, or plain lines every few seconds elsewhere."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None
        self._printed_at = 0.0

    def __enter__(self) -> Display:
        if self._console.is_terminal:
            self._live = Live(console=self._console, refresh_per_second=4)
            self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def show(self, reading: Reading, final: bool = False) -> None:
        if self._live is not None:
            self._live.update(_table(reading))
            return
        now = time.monotonic()
        if final or now - self._printed_at >= _PLAIN_EVERY_S:
            self._printed_at = now
            print(_line(reading), flush=True)


def _table(reading: Reading) -> Table:
    done = reading.outputs
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("progress", ProgressBar(total=reading.jobs, completed=done, width=40))
    table.add_row(
        "outputs",
        f"{done:,} of {reading.jobs:,} after {reading.elapsed_s:.0f} s: "
        f"{reading.results:,} results, {reading.dead_letters:,} dead letters",
    )
    table.add_row("jobs/s", f"{reading.jobs_per_s:,.0f}")
    table.add_row(
        "in flight",
        f"{reading.figure('in_flight')}  (adaptive limit {reading.figure('limit')})",
    )
    table.add_row(
        "throttling",
        f"{reading.figure('throttled')} 429s, "
        f"{reading.figure('paused')} partitions paused",
    )
    table.add_row("retries", reading.figure("retries"))
    outage = "  [red]API outage now[/red]" if reading.outage else ""
    table.add_row("breaker", reading.breaker + outage)
    return table


def _line(reading: Reading) -> str:
    return (
        f"{reading.elapsed_s:5.1f} s  {reading.outputs}/{reading.jobs} outputs "
        f"({reading.results} results, {reading.dead_letters} dead letters)  "
        f"{reading.jobs_per_s:.0f} jobs/s  in flight {reading.figure('in_flight')}"
        f"/{reading.figure('limit')}  429s {reading.figure('throttled')}  "
        f"paused {reading.figure('paused')}  breaker {reading.breaker}"
        + ("  API outage now" if reading.outage else "")
    )
