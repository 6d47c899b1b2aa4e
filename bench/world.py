"""What every scenario runs against: the local Kafka, a simulator, a processor.

The simulator and the processor run as subprocesses, as users run them, so
the processor's CPU time and memory are its own and the simulator never
competes with it for the same interpreter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 8
CLIENT = {"CXONE_CLIENT_ID": "bench-client", "CXONE_CLIENT_SECRET": "bench-secret"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_FIRST_JOB_DEADLINE_S = 120.0


@dataclass(frozen=True)
class World:
    """The broker every scenario shares, where logs go, and how long to run."""

    bootstrap: str
    logs: Path
    short: bool

    def seconds(self, full: float, short: float = 3.0) -> float:
        return short if self.short else full

    def count(self, full: int, short: int) -> int:
        return short if self.short else full


@dataclass(frozen=True)
class Topics:
    requests: str
    results: str
    deadletter: str
    audit: str


class Simulator:
    """A running ``cxone-processor simulate`` and its admin endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(
            f"{self.url}/_simulator/stats", timeout=10
        ).json()
        return stats

    def configure(self, **changes: Any) -> None:
        httpx.post(f"{self.url}/_simulator/config", json=changes, timeout=10)

    def outage(self, seconds: float) -> None:
        httpx.post(f"{self.url}/_simulator/outage", json={"duration_s": seconds})

    def first_job(self) -> None:
        """Wait until the simulator has accepted a job."""
        deadline = time.monotonic() + _FIRST_JOB_DEADLINE_S
        while self.stats()["accepted"] == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the processor submitted no job within 120 s")
            time.sleep(0.05)


@contextmanager
def simulator(flags: list[str]) -> Iterator[Simulator]:
    command = [sys.executable, "-m", "processor", "simulate", "--port", "0"]
    command += ["--client-id", CLIENT["CXONE_CLIENT_ID"]]
    command += ["--client-secret", CLIENT["CXONE_CLIENT_SECRET"], *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    first_line = process.stdout.readline() if process.stdout else ""
    try:
        yield Simulator(first_line.split()[-1])
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class ProcessorRun:
    """A running ``cxone-processor run`` subprocess."""

    pid: int
    bootstrap: str
    topics: Topics

    def cpu_s(self) -> float:
        """User and system CPU seconds the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def dead_letters(self) -> int:
        return end_offsets(self.bootstrap, self.topics.deadletter)


@contextmanager
def processor(
    world: World,
    sim: Simulator,
    requests: int,
    in_flight: int,
    env: Mapping[str, str] | None = None,
) -> Iterator[ProcessorRun]:
    """Load ``requests`` into fresh topics and run a processor on them."""
    topics = new_topics(world.bootstrap)
    load(world.bootstrap, topics.requests, requests)
    settings = {
        **os.environ,
        **CLIENT,
        "CXONE_BASE_URL": sim.url,
        "KAFKA_BOOTSTRAP_SERVERS": world.bootstrap,
        "PROCESSOR_GROUP_ID": f"bench-{uuid.uuid4().hex[:6]}",
        "PROCESSOR_REQUESTS_TOPIC": topics.requests,
        "PROCESSOR_RESULTS_TOPIC": topics.results,
        "PROCESSOR_DEADLETTER_TOPIC": topics.deadletter,
        "PROCESSOR_AUDIT_TOPIC": topics.audit,
        "PROCESSOR_MAX_IN_FLIGHT": str(in_flight),
        "PROCESSOR_HTTP_PORT": "0",
        "PROCESSOR_LOG_LEVEL": os.environ.get("PROCESSOR_LOG_LEVEL", "INFO"),
        # Telemetry off unless the scenario turns it on.
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        **(env or {}),
    }
    log = (world.logs / f"processor-{uuid.uuid4().hex[:6]}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "processor", "run"],
        env=settings,
        stdout=log,
        stderr=log,
    )
    try:
        yield ProcessorRun(process.pid, world.bootstrap, topics)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def new_topics(bootstrap: str) -> Topics:
    suffix = uuid.uuid4().hex[:6]
    topics = Topics(
        *(f"bench.{kind}.{suffix}" for kind in ("requests", "results", "dlq", "audit"))
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(topics.requests, PARTITIONS)] + [
        NewTopic(name, 2) for name in (topics.results, topics.deadletter, topics.audit)
    ]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    return topics


def request_value(i: int) -> bytes:
    body = {"request_id": f"b-{i:08d}", "action_id": "action_a", "input": {"n": i}}
    return json.dumps(body).encode()


def load(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000}
    )
    for i in range(count):
        while True:
            try:
                producer.produce(topic, request_value(i), f"k{i}".encode())
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(300)


def end_offsets(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (its partitions' end offsets summed)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(topic, timeout=10)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
            for p in metadata.topics[topic].partitions
        )
    finally:
        consumer.close()


@dataclass(frozen=True)
class Window:
    """Counts over one measured stretch of a run."""

    seconds: float
    accepted: int
    submissions: int
    throttled: int
    cpu_s: float

    @property
    def jobs_per_s(self) -> float:
        return self.accepted / self.seconds

    @property
    def share_429(self) -> float:
        return self.throttled / max(1, self.submissions)

    @property
    def cpu_us_per_job(self) -> float:
        return self.cpu_s * 1e6 / max(1, self.accepted)


def measure(
    sim: Simulator, run: ProcessorRun | None, seconds: float, warm_up: float = 0.0
) -> Window:
    """Counts over ``seconds``, starting ``warm_up`` after the first accepted job."""
    sim.first_job()
    time.sleep(warm_up)
    first, cpu_first, started = sim.stats(), _cpu(run), time.monotonic()
    time.sleep(seconds)
    last, cpu_last, ended = sim.stats(), _cpu(run), time.monotonic()
    return Window(
        seconds=ended - started,
        accepted=last["accepted"] - first["accepted"],
        submissions=last["submissions"] - first["submissions"],
        throttled=last["throttled"] - first["throttled"],
        cpu_s=cpu_last - cpu_first,
    )


def _cpu(run: ProcessorRun | None) -> float:
    return run.cpu_s() if run is not None else 0.0


def samples(sim: Simulator, seconds: float, every: float = 0.5) -> list[Sample]:
    """The simulator's counts every ``every`` seconds for ``seconds``."""
    taken: list[Sample] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stats = sim.stats()
        taken.append(
            Sample(
                time.monotonic(),
                stats["accepted"],
                stats["submissions"],
                stats["throttled"],
            )
        )
        time.sleep(every)
    return taken


@dataclass(frozen=True)
class Sample:
    at: float
    accepted: int
    submissions: int
    throttled: int


def rates(series: list[Sample], span: int = 2) -> Iterator[tuple[float, float, float]]:
    """(seconds since the series began, jobs per second, share answered 429).

    Each over the last ``span`` samples.
    """
    start = series[0].at
    for i in range(span, len(series)):
        before, now = series[i - span], series[i]
        sent = now.submissions - before.submissions
        refused = now.throttled - before.throttled
        yield (
            now.at - start,
            (now.accepted - before.accepted) / (now.at - before.at),
            refused / sent if sent else 0.0,
        )
