"""What the reliability scenarios share: their scale, waits, and the accounting.

Every scenario ends the same way: the group's committed offsets reach the end
of the requests topic, and then every record on the results and dead-letter
topics is read back and decoded, so each request id can be accounted for.
"""

from __future__ import annotations

import functools
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import Consumer, KafkaException, Message
from confluent_kafka.admin import AdminClient, NewTopic

from processor.localkafka import LocalKafka
from processor.simulator import SimulatorThread
from tests.integration.conftest import Rig
from tests.pipeline_support import (
    ProcessorProcess,
    committed,
    decode,
    end_offsets,
    read,
    request,
    wait_until,
)

T = TypeVar("T")

# RELIABILITY_SOAK=1 runs the long form: more requests, more kills, the full
# 30 s outage. The reduced form runs by default and asserts the same promises.
SOAK = os.environ.get("RELIABILITY_SOAK", "").strip() == "1"


def scaled(reduced: T, soak: T) -> T:
    return soak if SOAK else reduced


# Per test: pytest-timeout's 300 s suits the reduced form only.
TEST_TIMEOUT_S = scaled(300, 3600)
# How long a run may take to make its next step of progress.
PROGRESS_TIMEOUT_S = scaled(120.0, 600.0)
# Once every job exists at the API: long enough for the group to process
# again what a crash left uncommitted, and commit to the end.
SETTLE_TIMEOUT_S = scaled(45.0, 300.0)
# Long enough for every record's result or dead letter to be read back.
READ_TIMEOUT_S = scaled(120.0, 600.0)


def seeded_random(name: str) -> random.Random:
    """A random source whose seed is printed, so a failing run can be replayed.

    ``RELIABILITY_SEED`` picks the seed; otherwise it is new every run.
    """
    seed = int(os.environ.get("RELIABILITY_SEED") or random.randrange(2**32))
    print(f"{name}: RELIABILITY_SEED={seed}")
    return random.Random(seed)


def request_id(i: int) -> str:
    """The id ``tests.pipeline_support.request(i)`` gives its request."""
    return f"r-{i:06d}"


def request_ids(count: int) -> set[str]:
    return {request_id(i) for i in range(count)}


def publish(
    world: Rig, count: int, actions: Sequence[str] = ("action_a",)
) -> dict[str, str]:
    """Publish ``count`` keyed requests, round-robin over ``actions``.

    Returns each request id's action.
    """
    world.produce(
        (f"k{i}".encode(), request(i, actions[i % len(actions)])) for i in range(count)
    )
    return {request_id(i): actions[i % len(actions)] for i in range(count)}


# -- waiting on progress ---------------------------------------------------------


def accepted(simulator: SimulatorThread) -> int:
    """CXone jobs created so far (a repeated Idempotency-Key creates none)."""
    return int(simulator.stats()["accepted"])


def wait_for_jobs(world: Rig, at_least: int) -> int:
    """Wait until the simulator has created ``at_least`` jobs; return how many."""
    reached = wait_until(
        lambda: accepted(world.simulator) >= at_least, PROGRESS_TIMEOUT_S, 0.05
    )
    count = accepted(world.simulator)
    assert reached, stalled(world, f"{count} jobs created, waited for {at_least}")
    return count


def committed_to_end(world: Rig) -> bool:
    """The group has committed every request: all their outputs are acked."""
    requests, partitions = world.topics.requests, world.partitions
    try:
        ends = end_offsets(world.bootstrap, requests, partitions)
        positions = committed(world.bootstrap, world.group, requests, partitions)
    except KafkaException:
        # A partition whose leader was just killed answers once another leads.
        return False
    return positions == ends


def finish(world: Rig, total: int) -> None:
    """Wait until all ``total`` jobs exist and the group committed every record."""
    wait_for_jobs(world, total)
    wait_committed_to_end(world, SETTLE_TIMEOUT_S)


def wait_committed_to_end(world: Rig, timeout: float) -> None:
    reached = wait_until(lambda: committed_to_end(world), timeout, 1.0)
    if not reached:
        requests, partitions = world.topics.requests, world.partitions
        ends = end_offsets(world.bootstrap, requests, partitions)
        positions = committed(world.bootstrap, world.group, requests, partitions)
        what = f"committed offsets {positions} did not reach the ends {ends}"
        raise AssertionError(stalled(world, what))


def stalled(world: Rig, what: str) -> str:
    """A failure message with the simulator's counts and each log's last lines."""
    tails = []
    for number, process in enumerate(world.processes):
        lines = process.log().splitlines()[-15:]
        state = "running" if process.running else "ended"
        tails.append(f"--- processor {number} ({state}):\n" + "\n".join(lines))
    counts = world.simulator.stats()
    counts.pop("behaviour", None)
    return f"{what}\nsimulator: {counts}\n" + "\n".join(tails)


def stop_all(processes: Iterable[ProcessorProcess]) -> list[int]:
    """SIGTERM every instance still running; their exit codes."""
    return [process.stop() for process in processes if process.running]


# -- the accounting ------------------------------------------------------------


@dataclass
class Account:
    """Every request id against the results and dead letters naming it."""

    expected: set[str]
    results: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    jobs_by_request: dict[str, set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )

    @property
    def missing(self) -> set[str]:
        return self.expected - set(self.results) - set(self.dead_letters)

    @property
    def unexpected(self) -> set[str]:
        return (set(self.results) | set(self.dead_letters)) - self.expected

    @property
    def duplicate_results(self) -> int:
        return sum(count - 1 for count in self.results.values())

    @property
    def requests_with_two_jobs(self) -> set[str]:
        """Requests whose results name different CXone jobs."""
        return {rid for rid, jobs in self.jobs_by_request.items() if len(jobs) > 1}

    def summary(self) -> str:
        return (
            f"{len(self.expected)} requests, {sum(self.results.values())} results "
            f"({self.duplicate_results} duplicates), "
            f"{sum(self.dead_letters.values())} dead letters {dict(self.reasons)}, "
            f"{len(self.missing)} missing"
        )


def account(world: Rig, expected: set[str]) -> Account:
    """Read back every result and dead letter and tally them by request id."""
    ledger = Account(expected)
    for message in read_all(world.bootstrap, world.topics.results):
        fields = decode(message, "results")
        ledger.results[fields["request_id"]] += 1
        ledger.jobs_by_request[fields["request_id"]].add(fields["job_id"])
    for message in read_all(world.bootstrap, world.topics.deadletter):
        fields = decode(message, "deadletter")
        ledger.dead_letters[str(fields["request_id"])] += 1
        ledger.reasons[str(fields["reason"])] += 1
    return ledger


def read_all(bootstrap: str, topic: str) -> list[Message]:
    """Every record of ``topic``, as many as its end offsets say it holds."""
    count = record_count(bootstrap, topic)
    if count == 0:
        return []
    messages = read(bootstrap, topic, count, READ_TIMEOUT_S, settle=0.5)
    assert len(messages) == count, f"read {len(messages)} of {count} from {topic}"
    return messages


def record_count(bootstrap: str, topic: str) -> int:
    """Records on ``topic``: the sum of its end offsets (nothing is deleted)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "counting"})
    try:
        partitions = len(probe.list_topics(topic, timeout=10).topics[topic].partitions)
    finally:
        probe.close()
    return sum(end_offsets(bootstrap, topic, partitions))


# -- a world on a broker of the test's own -----------------------------------------


def create_topics(cluster: LocalKafka, partitions: int) -> dict[str, str]:
    """Requests, results, dead-letter and audit topics, known to every node.

    Replication comes from the cluster's defaults (3 on three nodes).
    """
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    sizes = {"requests": partitions, "results": 2, "deadletter": 1, "audit": 1}
    names = {kind: f"{kind}.{uuid.uuid4().hex[:12]}" for kind in sizes}
    futures = admin.create_topics([NewTopic(names[k], n) for k, n in sizes.items()])
    for future in futures.values():
        future.result(timeout=30)

    # Each node learns of a new topic from the controller in its own time.
    for kind, name in names.items():
        known = functools.partial(known_everywhere, cluster, name, sizes[kind])
        assert wait_until(known, 30), f"not every node knows topic {name}"
    return names


def known_everywhere(cluster: LocalKafka, topic: str, partitions: int) -> bool:
    for node in cluster.nodes:
        admin = AdminClient({"bootstrap.servers": node.address})
        known = admin.list_topics(topic, timeout=10).topics[topic]
        if known.error is not None or len(known.partitions) != partitions:
            return False
        if any(p.leader < 0 for p in known.partitions.values()):
            return False
    return True


# -- concurrency at the API, per action ----------------------------------------------

Timeline = Sequence[tuple[str, str, float]]


class Lifetimes:
    """When each processor instance could have had requests at the API.

    Times are ``time.monotonic()``, the clock the in-process simulator stamps
    its timeline with.
    """

    def __init__(self) -> None:
        self._spans: list[list[float]] = []

    def started(self) -> int:
        self._spans.append([time.monotonic(), float("inf")])
        return len(self._spans) - 1

    def ended(self, index: int, linger_s: float) -> None:
        """Instance ``index`` is gone; requests it sent may linger ``linger_s``."""
        self._spans[index][1] = time.monotonic() + linger_s

    def live_at(self, moment: float) -> int:
        return sum(1 for start, end in self._spans if start <= moment <= end)


@dataclass
class CapCheck:
    """Per-action concurrency seen by the API, against cap x live instances."""

    peaks: dict[str, int]
    violations: list[str]


def check_caps(
    timeline: Timeline,
    action_of: Mapping[str, str],
    caps: Mapping[str, int],
    live_at: Callable[[float], int],
) -> CapCheck:
    """Replay the simulator's timeline, counting jobs in flight per action.

    ``caps`` holds each action's per-instance cap (``*`` for the rest); at
    every submission's arrival the action's count may not exceed its cap
    times the instances alive at that moment.
    """
    in_flight: Counter[str] = Counter()
    peaks: dict[str, int] = {}
    violations: list[str] = []
    for event, key, moment in timeline:
        action = action_of[key]
        if event == "out":
            in_flight[action] -= 1
            continue

        in_flight[action] += 1
        count = in_flight[action]
        peaks[action] = max(peaks.get(action, 0), count)
        allowed = caps.get(action, caps["*"]) * live_at(moment)
        if count > allowed:
            violations.append(
                f"{action}: {count} in flight at {moment:.3f}, cap {allowed}"
            )
    return CapCheck(peaks, violations)
