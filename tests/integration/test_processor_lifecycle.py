"""Commits, shutdown and restarts: nothing is lost, nothing is committed early."""

from __future__ import annotations

import io
import subprocess
import sys
from collections import Counter

import fastavro
import pytest

from processor import schemas
from processor.simulator import Behaviour, Latency
from tests.integration.conftest import RigFactory
from tests.pipeline_support import by_request_id, committed, decode, request, wait_until

NO_OFFSET = -1001


def test_a_slow_record_holds_back_the_commit_until_it_is_done(rig: RigFactory) -> None:
    slow = Behaviour(other_actions="PUBLISHED", action_latency_ms={"action_slow": 6000})
    world = rig(slow, partitions=1)
    world.produce([(b"slow", request(0, "action_slow"))])
    world.produce((f"fast-{i}".encode(), request(i)) for i in range(1, 21))

    first = world.start()
    fast = world.read("results", 20, settle=1.5)
    position_while_slow = committed(
        world.bootstrap, world.group, world.topics.requests, 1
    )
    first.kill()

    # The restart begins at the commit, before the slow record: all 21 again.
    world.start()
    results = world.read("results", 20 + 21, timeout=90)
    stats = world.simulator.stats()

    assert len(fast) == 20
    assert position_while_slow[0] in (NO_OFFSET, 0)
    assert {rid for rid, _ in by_request_id(results, "results")} == {
        f"r-{i:06d}" for i in range(21)
    }
    assert len(results) == 41
    assert stats["accepted"] == 21
    assert stats["duplicates"] == 21


def test_sigterm_finishes_in_flight_jobs_and_a_restart_goes_on_where_it_stopped(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=Latency(20, 5)), partitions=4)
    world.produce((f"k{i}".encode(), request(i)) for i in range(3000))

    first = world.start(PROCESSOR_MAX_IN_FLIGHT="16")
    assert wait_until(lambda: world.simulator.stats()["accepted"] >= 800, timeout=60)
    first_exit = first.stop()
    after_first = world.simulator.stats()["accepted"]

    world.start(PROCESSOR_MAX_IN_FLIGHT="16")
    results = world.read("results", 3000, timeout=120, settle=2.0)
    stats = world.simulator.stats()

    ids = Counter(rid for rid, _ in by_request_id(results, "results"))
    assert first_exit == 0
    assert 800 <= after_first < 3000
    assert set(ids) == {f"r-{i:06d}" for i in range(3000)}
    assert max(ids.values()) == 1, "a graceful stop commits everything it finished"
    assert stats["accepted"] == 3000
    assert stats["duplicates"] == 0
    assert "SIGTERM received" in first.log()


def test_outputs_use_the_schema_registry_wire_format_when_configured(
    rig: RigFactory,
) -> None:
    world = rig(partitions=1)
    world.produce([(b"1", request(1)), (b"2", b"broken")])

    processor = world.start(SCHEMA_REGISTRY_URL="mock://tests")
    [result] = world.read("results", 1)
    [letter] = world.read("deadletter", 1)
    audit = world.read("audit", 3)
    processor.stop()

    bodies = {}
    for message, name in [(result, "job_result"), (letter, "dead_letter")] + [
        (m, "audit_event") for m in audit
    ]:
        value = message.value() or b""
        assert value[0:1] == b"\x00"
        assert int.from_bytes(value[1:5], "big") >= 1
        body = fastavro.schemaless_reader(
            io.BytesIO(value[5:]), schemas.load(name).parsed
        )
        assert isinstance(body, dict)
        bodies[name] = body
    assert bodies["job_result"]["request_id"] == "r-000001"
    assert bodies["dead_letter"]["original_value"] == b"broken"


def test_single_object_encoding_is_the_default(rig: RigFactory) -> None:
    world = rig(partitions=1)
    world.produce([(b"1", request(1))])

    processor = world.start()
    [result] = world.read("results", 1)
    processor.stop()
    value = result.value() or b""

    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == schemas.load("job_result").fingerprint
    assert decode(result, "results")["request_id"] == "r-000001"


def test_audit_events_tell_the_story_of_a_run(rig: RigFactory) -> None:
    behaviour = Behaviour(
        rate_limit_per_s=20, rate_burst=1, error_rate=0.3, seed=3, latency=Latency(5, 1)
    )
    world = rig(behaviour, partitions=2)
    world.produce([(b"bad", b"{")])
    world.produce((f"k{i}".encode(), request(i)) for i in range(30))

    processor = world.start(
        PROCESSOR_DRAIN_RATE_WINDOW_S="0.5", PROCESSOR_MAX_ATTEMPTS="20"
    )
    world.read("results", 30)
    processor.stop()
    events = [decode(m, "audit") for m in world.read("audit", 60, settle=1.5)]

    kinds = Counter(event["event_type"] for event in events)
    for kind in (
        "PROCESSOR_STARTED",
        "PARTITIONS_ASSIGNED",
        "JOB_STARTED",
        "JOB_COMPLETED",
        "JOB_DEAD_LETTERED",
        "JOB_RETRIED",
        "THROTTLED",
        "RESUMED",
        "DRAIN_RATE",
        "PARTITIONS_REVOKED",
        "PROCESSOR_STOPPED",
    ):
        assert kinds[kind] >= 1, kind
    assert kinds["JOB_COMPLETED"] == 30
    assert {event["instance_id"] for event in events} == {events[0]["instance_id"]}
    drain = next(e for e in events if e["event_type"] == "DRAIN_RATE")
    assert float(drain["details"]["jobs_per_minute"]) >= 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROCESSOR_MAX_IN_FLIGHT", "zero"),
        ("PROCESSOR_ACTION_CONCURRENCY", "action_a=0"),
        ("CXONE_BASE_URL", "ftp://example"),
        ("KAFKA_NO_SUCH_PROPERTY", "1"),
        ("KAFKA_SESSION_TIMEOUT_MS", "soon"),
    ],
)
def test_an_invalid_setting_stops_run_before_it_consumes(
    rig: RigFactory, name: str, value: str
) -> None:
    world = rig(partitions=1)
    world.produce([(b"1", request(1))])
    env = world.env(**{name: value})

    done = _run_once(env)

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert name in done.stderr
    assert world.simulator.stats()["submissions"] == 0
    assert committed(world.bootstrap, world.group, world.topics.requests, 1) == [
        NO_OFFSET
    ]


def test_wrong_credentials_stop_run_with_a_clear_line_and_no_secret(
    rig: RigFactory,
) -> None:
    world = rig(partitions=1)
    world.produce([(b"1", request(1))])
    env = world.env(CXONE_CLIENT_SECRET="wrong-secret-value")

    done = _run_once(env)

    assert done.returncode == 1
    assert "CXone refused the client credentials" in done.stderr
    assert "wrong-secret-value" not in done.stderr
    assert world.simulator.stats()["submissions"] == 0


def test_a_second_instance_takes_over_partitions_without_losing_or_repeating(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=Latency(20, 5)), partitions=6)
    world.produce((f"k{i}".encode(), request(i)) for i in range(3000))

    first = world.start(PROCESSOR_MAX_IN_FLIGHT="16")
    assert wait_until(lambda: world.simulator.stats()["accepted"] >= 500, timeout=60)
    second = world.start(PROCESSOR_MAX_IN_FLIGHT="16")
    results = world.read("results", 3000, timeout=120, settle=2.0)
    exits = [first.stop(), second.stop()]
    stats = world.simulator.stats()

    ids = Counter(rid for rid, _ in by_request_id(results, "results"))
    assert exits == [0, 0]
    assert set(ids) == {f"r-{i:06d}" for i in range(3000)}
    # Revoked partitions finish their jobs and commit before they move.
    assert max(ids.values()) == 1
    assert stats["duplicates"] == 0
    assert "revoked" in first.log()
    assert "assigned" in second.log()


def _run_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``cxone-processor run`` that is expected to stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "processor", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
