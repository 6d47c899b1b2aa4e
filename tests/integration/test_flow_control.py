"""Flow control against the real broker and simulator: pauses, caps, limits, outages."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from confluent_kafka import Consumer

from processor.simulator import Behaviour, Latency
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import decode, request, wait_until


def audit_events(
    world: Rig, at_least: int, settle: float = 1.5
) -> list[dict[str, Any]]:
    return [decode(m, "audit") for m in world.read("audit", at_least, settle=settle)]


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event_type"] == kind]


def stopped_details(events: list[dict[str, Any]]) -> dict[str, str]:
    [stopped] = of_type(events, "PROCESSOR_STOPPED")
    return dict(stopped["details"])


def test_a_429_pauses_the_partitions_until_retry_after_has_passed(
    rig: RigFactory,
) -> None:
    behaviour = Behaviour(rate_limit_per_s=50, rate_burst=5, retry_after_s=2)
    world = rig(behaviour, partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(150))

    processor = world.start()
    results = world.read("results", 150, timeout=120)
    processor.stop()
    events = audit_events(world, 150 * 2)
    stats = world.simulator.stats()

    throttled = of_type(events, "THROTTLED")
    paused = [
        e
        for e in of_type(events, "PARTITIONS_PAUSED")
        if e["details"]["reason"] == "throttled"
    ]
    resumed = [
        e
        for e in of_type(events, "PARTITIONS_RESUMED")
        if e["details"]["reason"] == "throttled"
    ]
    assert len(results) == 150
    assert world.read("deadletter", 0, timeout=1, settle=0.5) == []
    assert stats["throttled_rate"] >= 1
    assert throttled and float(throttled[0]["details"]["wait_s"]) == 2.0
    assert paused and resumed
    assert all(float(e["details"]["paused_s"]) >= 1.5 for e in resumed)
    assert {d["attempts"] for d in (decode(m, "results") for m in results)} == {1}


def test_a_full_buffer_pauses_consumption_and_resumes_below_half(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=Latency(30, 5)), partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(400))

    processor = world.start(
        PROCESSOR_BUFFER_MAX_RECORDS="20", PROCESSOR_MAX_IN_FLIGHT="4"
    )
    results = world.read("results", 400, timeout=120)
    processor.stop()
    events = audit_events(world, 800)

    paused = [
        e["details"]
        for e in of_type(events, "PARTITIONS_PAUSED")
        if e["details"]["reason"] == "buffer_full"
    ]
    resumed = [
        e["details"]
        for e in of_type(events, "PARTITIONS_RESUMED")
        if e["details"]["reason"] == "buffer_full"
    ]
    assert len(results) == 400
    # The consumer fetches no more than the buffer has room for, so once the
    # flow settles the buffer may hover just under full: how many times it
    # fills depends on the machine's pace, not on the rule under test.
    assert paused
    assert len(resumed) == len(paused)
    assert all(int(details["buffered"]) <= 10 for details in resumed)


def test_the_cap_matrix_bounds_each_action_and_others_go_on(rig: RigFactory) -> None:
    world = rig(
        Behaviour(other_actions="PUBLISHED", latency=Latency(40, 5)), partitions=4
    )
    actions = ["action_a", "action_b", "action_c", "action_d"]
    world.produce((f"k{i}".encode(), request(i, actions[i % 4])) for i in range(400))

    processor = world.start(
        PROCESSOR_MAX_IN_FLIGHT="12",
        PROCESSOR_ACTION_CONCURRENCY="action_a=2,action_b=4,*=3",
    )
    results = world.read("results", 400, timeout=120)
    processor.stop()
    peaks = world.simulator.stats()["max_concurrent_by_action"]

    assert len(results) == 400
    assert peaks == {"action_a": 2, "action_b": 4, "action_c": 3, "action_d": 3}


def test_key_ordering_runs_each_keys_jobs_one_at_a_time_in_offset_order(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=Latency(20, 15, "uniform")), partitions=2)
    keys = [f"key-{k}".encode() for k in range(4)]
    world.produce(
        (keys[i % 4], request(i, request_id=f"{keys[i % 4].decode()}-{i // 4:04d}"))
        for i in range(160)
    )

    processor = world.start(PROCESSOR_ORDERING="key", PROCESSOR_MAX_IN_FLIGHT="16")
    results = world.read("results", 160, timeout=120)
    processor.stop()
    timeline = world.simulator.timeline()

    assert len(results) == 160
    per_key: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event, job_key, _ in timeline:
        per_key[job_key.rsplit("-", 1)[0]].append((event, job_key))
    for key, events in per_key.items():
        # in, out, in, out ...: never two of one key in flight at once.
        assert [e for e, _ in events] == ["in", "out"] * 40, key
        started = [job for e, job in events if e == "in"]
        assert started == sorted(started), key


def test_unordered_mode_really_overlaps_jobs_of_one_key(rig: RigFactory) -> None:
    world = rig(Behaviour(latency=Latency(20, 15, "uniform")), partitions=1)
    world.produce(
        (b"one-key", request(i, request_id=f"one-key-{i:04d}")) for i in range(60)
    )

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="16")
    world.read("results", 60)
    processor.stop()
    events = [e for e, _, _ in world.simulator.timeline()]

    assert events != ["in", "out"] * 60


@pytest.mark.parametrize(
    ("limit", "low", "high", "refusals"),
    [
        # Little's law: 100 jobs/s x 50 ms = 5 in flight.
        ({"rate_limit_per_s": 100}, 3, 7, "throttled_rate"),
        ({"max_concurrency": 6}, 5, 6, "throttled_concurrency"),
    ],
    ids=["rate-limit", "concurrency-cap"],
)
def test_the_in_flight_limit_settles_near_what_the_api_sustains(
    rig: RigFactory, limit: dict[str, int], low: int, high: int, refusals: str
) -> None:
    behaviour = Behaviour(latency=Latency(50, 5)).changed(limit)
    world = rig(behaviour, partitions=4)
    world.produce((f"k{i}".encode(), request(i)) for i in range(1500))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="64")
    world.read("results", 1500, timeout=180)
    processor.stop()
    stats = world.simulator.stats()
    details = stopped_details(audit_events(world, 3000))

    assert low <= int(details["in_flight_limit"]) <= high
    assert stats[refusals] / stats["submissions"] <= 0.05


def test_a_rate_limit_one_job_in_flight_would_exceed_is_met_by_pacing(
    rig: RigFactory,
) -> None:
    # At 1 ms a single job in flight could send hundreds a second: only
    # spacing the submissions out keeps a 50 a second limit from answering
    # 429 to every burst.
    behaviour = Behaviour(
        latency=Latency(1, 0), rate_limit_per_s=50, rate_burst=5, retry_after_s=1
    )
    world = rig(behaviour, partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(400))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="8")
    results = world.read("results", 400, timeout=120)
    processor.stop()
    holds = of_type(audit_events(world, 800), "THROTTLED")

    assert len(results) == 400
    # Each hold without pacing would let about one burst through: 80 of them.
    assert 1 <= len(holds) <= 20
    assert "pacing submissions at" in processor.log()


def test_an_outage_opens_the_breaker_and_dead_letters_nothing(rig: RigFactory) -> None:
    world = rig(Behaviour(latency=Latency(20, 5)), partitions=4)
    world.produce((f"k{i}".encode(), request(i)) for i in range(2000))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="8", PROCESSOR_MAX_ATTEMPTS="3")
    assert wait_until(lambda: world.simulator.stats()["accepted"] >= 300, timeout=60)
    world.simulator.start_outage(4.0)
    results = world.read("results", 2000, timeout=180)
    processor.stop()
    events = audit_events(world, 4000)
    stats = world.simulator.stats()

    paused = Counter(
        e["details"]["reason"] for e in of_type(events, "PARTITIONS_PAUSED")
    )
    assert len(results) == 2000
    assert world.read("deadletter", 0, timeout=1, settle=0.5) == []
    assert len(of_type(events, "BREAKER_OPENED")) >= 1
    assert len(of_type(events, "BREAKER_CLOSED")) >= 1
    assert paused["breaker_open"] >= 1
    # Once open, only probes went out: a handful, not a storm.
    assert 1 <= stats["outage_rejections"] <= 40


def test_a_pause_longer_than_max_poll_interval_keeps_the_partitions(
    rig: RigFactory,
) -> None:
    behaviour = Behaviour(rate_limit_per_s=20, rate_burst=5, retry_after_s=10)
    world = rig(behaviour, partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(30))

    processor = world.start(KAFKA_MAX_POLL_INTERVAL_MS="7000")
    results = world.read("results", 30, timeout=120)
    processor.stop()
    events = audit_events(world, 60)

    pauses = [
        float(e["details"]["paused_s"])
        for e in of_type(events, "PARTITIONS_RESUMED")
        if e["details"]["reason"] == "throttled"
    ]
    assert len(results) == 30
    assert max(pauses) > 7.0
    assert len(of_type(events, "PARTITIONS_ASSIGNED")) == 1
    assert len(of_type(events, "PARTITIONS_REVOKED")) == 1  # at shutdown only


def test_partitions_reassigned_while_throttled_come_back_paused(
    rig: RigFactory,
) -> None:
    behaviour = Behaviour(rate_limit_per_s=20, rate_burst=5, retry_after_s=12)
    world = rig(behaviour, partitions=4)
    world.produce((f"k{i}".encode(), request(i)) for i in range(200))

    processor = world.start()
    assert wait_until(
        lambda: world.simulator.stats()["throttled_rate"] >= 1, timeout=60
    )
    world.simulator.configure(rate_limit_per_s=None)  # one hold is enough
    held_from = world.simulator.stats()["submissions"]
    _join_and_leave(world.bootstrap, world.group, world.topics.requests)
    during_hold = world.simulator.stats()["submissions"]
    results = world.read("results", 200, timeout=120)
    processor.stop()
    events = audit_events(world, 400)

    reassigned = of_type(events, "PARTITIONS_ASSIGNED")[1:]
    assert reassigned, "the join and leave caused a rebalance"
    assert all(e["details"].get("paused_for") == "throttled" for e in reassigned)
    assert during_hold == held_from
    assert len(results) == 200


def _join_and_leave(bootstrap: str, group: str, topic: str) -> None:
    """A second member joins the group, takes partitions, then leaves."""
    member = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
            "client.id": f"visitor-{uuid.uuid4().hex[:6]}",
        }
    )
    member.subscribe([topic])
    deadline = time.monotonic() + 8
    try:
        while time.monotonic() < deadline and not member.assignment():
            member.poll(0.2)
    finally:
        member.close()
