"""Flow-control benchmark: how close the processor gets to what the API allows.

Starts a local Kafka and the simulator, loads requests, runs the processor
as a subprocess per scenario and prints each figure beside the limit it is
measured against (ratios, because these machines are shared and noisy).

    .venv/bin/python bench/flow.py                 # every scenario, ~8 min
    .venv/bin/python bench/flow.py rate_limit      # one of them
    .venv/bin/python bench/flow.py --seconds 10    # shorter windows

Scenarios: rate_limit (R = 200/s at 50 ms), concurrency_cap (K = 16 at
50 ms), outage (30 s mid-run), memory (a 1,000,000-request backlog, the API
stalled, then a slow drain). Figures are also written as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from processor.localkafka import LocalKafka

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 8
CLIENT = {"CXONE_CLIENT_ID": "bench-client", "CXONE_CLIENT_SECRET": "bench-secret"}
Figures = dict[str, Any]


@dataclass
class World:
    bootstrap: str
    tmp: Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "flow.json")
    args = parser.parse_args()

    figures: dict[str, Figures] = {}
    with LocalKafka(1) as kafka:
        logs = Path(tempfile.mkdtemp(prefix="cxone-bench-"))
        print(f"processor logs in {logs}", flush=True)
        world = World(kafka.bootstrap_servers, logs)
        for name in args.scenarios:
            print(f"-- {name}", flush=True)
            figures[name] = SCENARIOS[name](world, args.seconds)
            print(json.dumps(figures[name], indent=2), flush=True)

    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    _print_table(figures)
    return 0


def rate_limit(world: World, seconds: float) -> Figures:
    rate = 200.0
    return _goodput(world, seconds, ["--rate-limit", str(rate)], rate)


def concurrency_cap(world: World, seconds: float) -> Figures:
    cap, latency_s = 16, 0.05
    return _goodput(world, seconds, ["--max-concurrency", str(cap)], cap / latency_s)


def _goodput(world: World, seconds: float, limits: list[str], limit: float) -> Figures:
    """Accepted jobs per second over ``seconds`` at 50 ms, against ``limit``."""
    flags = [*limits, "--latency-ms", "50"]
    requests = int(limit * (seconds + 30))
    with _simulator(flags) as sim, _processor(world, sim, requests, in_flight=64):
        window = _measure(sim, seconds)
    return {
        "limit_jobs_per_s": limit,
        "goodput_jobs_per_s": round(window["accepted"] / seconds, 1),
        "goodput_ratio": round(window["accepted"] / seconds / limit, 3),
        "share_429": round(window["throttled"] / max(1, window["submissions"]), 4),
        "target": "goodput_ratio >= 0.95, share_429 <= 0.05",
    }


def outage(world: World, seconds: float) -> Figures:
    outage_s, before_s = min(30.0, seconds / 2), 10.0
    flags = ["--latency-ms", "50"]
    requests = 64 * 20 * int(before_s + outage_s + 30)
    with (
        _simulator(flags) as sim,
        _processor(world, sim, requests, in_flight=64) as run,
    ):
        _first_job(sim)
        series = _series(sim, before_s)
        httpx.post(f"{sim}/_simulator/outage", json={"duration_s": outage_s})
        series += _series(sim, outage_s + 15)
        dead_letters = run.dead_letters()
    before = _rate(series, 2.0, before_s)
    end = before_s + outage_s
    recovered = next(
        (t - end for t, rate in _rates(series) if t > end and rate >= 0.9 * before),
        None,
    )
    return {
        "throughput_before_jobs_per_s": round(before, 1),
        "dead_letters": dead_letters,
        "seconds_to_full_throughput": None
        if recovered is None
        else round(recovered, 1),
        "target": "dead_letters == 0, seconds_to_full_throughput <= 5",
    }


def memory(world: World, seconds: float) -> Figures:
    backlog = 1_000_000
    flags = ["--latency-ms", "50"]
    with _simulator(flags) as sim, _processor(world, sim, backlog, 64) as run:
        httpx.post(f"{sim}/_simulator/outage", json={"duration_s": 20})
        stalled = _rss_series(run.pid, 20.0)
        httpx.post(f"{sim}/_simulator/config", json={"rate_limit_per_s": 500})
        drained = _rss_series(run.pid, seconds)
    peak = max(rss for _, rss in stalled + drained)
    half = drained[len(drained) // 2][1]
    return {
        "backlog_requests": backlog,
        "peak_rss_mb": round(peak, 1),
        "rss_stalled_mb": round(stalled[-1][1], 1),
        "rss_at_drain_start_mb": round(drained[0][1], 1),
        "rss_mid_drain_mb": round(half, 1),
        "rss_at_drain_end_mb": round(drained[-1][1], 1),
        "growth_second_half_of_drain_mb": round(drained[-1][1] - half, 1),
        "target": "peak_rss_mb < 200, flat during the drain",
    }


SCENARIOS: dict[str, Callable[[World, float], Figures]] = {
    "rate_limit": rate_limit,
    "concurrency_cap": concurrency_cap,
    "outage": outage,
    "memory": memory,
}


@contextmanager
def _simulator(flags: list[str]) -> Iterator[str]:
    command = [sys.executable, "-m", "processor", "simulate", "--port", "0"]
    command += ["--latency-jitter-ms", "5", "--client-id", CLIENT["CXONE_CLIENT_ID"]]
    command += ["--client-secret", CLIENT["CXONE_CLIENT_SECRET"], *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    first_line = process.stdout.readline() if process.stdout else ""
    url = first_line.split()[-1]
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class _Run:
    pid: int
    bootstrap: str
    deadletter: str

    def dead_letters(self) -> int:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        metadata = admin.list_topics(self.deadletter, timeout=10)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench"})
        try:
            partitions = metadata.topics[self.deadletter].partitions
            return sum(
                consumer.get_watermark_offsets(TopicPartition(self.deadletter, p), 10)[
                    1
                ]
                for p in partitions
            )
        finally:
            consumer.close()


@contextmanager
def _processor(
    world: World, simulator: str, requests: int, in_flight: int
) -> Iterator[_Run]:
    topics = _topics(world.bootstrap)
    _load(world.bootstrap, topics["requests"], requests)
    env = {
        **os.environ,
        **CLIENT,
        "CXONE_BASE_URL": simulator,
        "KAFKA_BOOTSTRAP_SERVERS": world.bootstrap,
        "PROCESSOR_GROUP_ID": f"bench-{uuid.uuid4().hex[:6]}",
        "PROCESSOR_REQUESTS_TOPIC": topics["requests"],
        "PROCESSOR_RESULTS_TOPIC": topics["results"],
        "PROCESSOR_DEADLETTER_TOPIC": topics["deadletter"],
        "PROCESSOR_AUDIT_TOPIC": topics["audit"],
        "PROCESSOR_MAX_IN_FLIGHT": str(in_flight),
        "PROCESSOR_LOG_LEVEL": os.environ.get("PROCESSOR_LOG_LEVEL", "INFO"),
    }
    log = (world.tmp / f"processor-{uuid.uuid4().hex[:6]}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "processor", "run"], env=env, stdout=log, stderr=log
    )
    try:
        yield _Run(process.pid, world.bootstrap, topics["deadletter"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
        log.close()


def _topics(bootstrap: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:6]
    names = {
        kind: f"bench.{kind}.{suffix}"
        for kind in ("requests", "results", "deadletter", "audit")
    }
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [
        NewTopic(name, PARTITIONS if kind == "requests" else 2)
        for kind, name in names.items()
    ]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    return names


def _load(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000}
    )
    for i in range(count):
        value = json.dumps(
            {"request_id": f"b-{i:08d}", "action_id": "action_a", "input": {"n": i}}
        ).encode()
        while True:
            try:
                producer.produce(topic, value, f"k{i}".encode())
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def _stats(simulator: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(
        f"{simulator}/_simulator/stats", timeout=10
    ).json()
    return stats


def _first_job(simulator: str) -> None:
    deadline = time.monotonic() + 120
    while _stats(simulator)["accepted"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)


def _measure(simulator: str, seconds: float) -> dict[str, int]:
    """Counts over ``seconds``, from the processor's first accepted job."""
    _first_job(simulator)
    first = _stats(simulator)
    time.sleep(seconds)
    last = _stats(simulator)
    keys = ("accepted", "submissions")
    window = {key: last[key] - first[key] for key in keys}
    window["throttled"] = last["throttled"] - first["throttled"]
    return window


def _series(simulator: str, seconds: float) -> list[tuple[float, int]]:
    """(monotonic time, accepted so far) every 0.5 s for ``seconds``."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), _stats(simulator)["accepted"]))
        time.sleep(0.5)
    return samples


def _rates(series: list[tuple[float, int]]) -> Iterator[tuple[float, float]]:
    """(seconds since the series began, jobs per second over the last second)."""
    start = series[0][0]
    for i in range(2, len(series)):
        (t0, a0), (t1, a1) = series[i - 2], series[i]
        yield t1 - start, (a1 - a0) / (t1 - t0)


def _rate(series: list[tuple[float, int]], start: float, end: float) -> float:
    chosen = [(t, r) for t, r in _rates(series) if start <= t <= end]
    return sum(r for _, r in chosen) / max(1, len(chosen))


def _rss_series(pid: int, seconds: float) -> list[tuple[float, float]]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), _rss_mb(pid)))
        time.sleep(0.5)
    return samples


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _print_table(figures: dict[str, Figures]) -> None:
    print("\nscenario          figure                          value")
    for name, values in figures.items():
        for key, value in values.items():
            if key != "target":
                print(f"{name:17} {key:31} {value}")
        print(f"{'':17} {'target':31} {values['target']}")


if __name__ == "__main__":
    sys.exit(main())
