"""``cxone-processor run`` end to end: real broker, real simulator, a subprocess."""

from __future__ import annotations

from collections import Counter

from processor import schemas
from processor.simulator import Behaviour, Latency
from tests.integration.conftest import RigFactory
from tests.pipeline_support import (
    by_request_id,
    committed,
    decode,
    end_offsets,
    request,
    wait_until,
)


def test_every_request_ends_in_one_result_and_offsets_are_committed_to_the_end(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=Latency(2, 1)), partitions=4)
    world.produce((f"k{i}".encode(), request(i)) for i in range(2000))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="64")
    results = world.read("results", 2000)
    ends = end_offsets(world.bootstrap, world.topics.requests, 4)
    assert wait_until(
        lambda: (
            committed(world.bootstrap, world.group, world.topics.requests, 4) == ends
        ),
        timeout=30,
    )
    exit_code = processor.stop()
    stats = world.simulator.stats()

    ids = Counter(request_id for request_id, _ in by_request_id(results, "results"))
    assert exit_code == 0
    assert len(results) == 2000
    assert set(ids) == {f"r-{i:06d}" for i in range(2000)}
    assert max(ids.values()) == 1
    assert stats["accepted"] == 2000
    assert stats["duplicates"] == 0
    assert stats["max_concurrent"] <= 64
    assert world.read("deadletter", 0, timeout=1, settle=0.5) == []


def test_avro_requests_are_processed_like_json_ones(rig: RigFactory) -> None:
    world = rig(partitions=1)
    codec = schemas.SingleObjectCodec(schemas.load("job_request"))
    avro = codec.encode(
        {
            "request_id": "r-avro",
            "action_id": "action_a",
            "input": '{"sourceId": "src_456"}',
            "options": None,
        }
    )
    world.produce([(b"a", avro), (b"j", request(1))])

    processor = world.start()
    results = world.read("results", 2)
    processor.stop()

    assert {rid for rid, _ in by_request_id(results, "results")} == {
        "r-avro",
        "r-000001",
    }


def test_results_carry_the_job_and_where_the_request_came_from(rig: RigFactory) -> None:
    world = rig(partitions=1)
    world.produce([(b"key-1", request(1))])

    processor = world.start()
    [message] = world.read("results", 1)
    processor.stop()
    fields = decode(message, "results")

    assert message.key() == b"r-000001"
    assert fields["request_id"] == "r-000001"
    assert fields["action_id"] == "action_a"
    assert fields["job_id"] == "job_1"
    assert fields["job_status"] == "QUEUED"
    assert fields["http_status"] == 202
    assert fields["attempts"] == 1
    assert fields["latency_ms"] > 0
    assert (
        fields["source_topic"],
        fields["source_partition"],
        fields["source_offset"],
    ) == (
        world.topics.requests,
        0,
        0,
    )
    assert fields["completed_at"].year >= 2025
    traceparent = dict(message.headers() or [])["traceparent"]
    assert isinstance(traceparent, bytes)
    assert traceparent.startswith(b"00-")


def test_broken_records_are_dead_lettered_with_their_bytes_and_never_reach_the_api(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(other_actions="PUBLISHED"), partitions=2)
    broken = {
        b"bad-json": b'{"request_id": "x", ',
        b"not-utf8": b'{"request_id": "\xff\xfe", "action_id": "a", "input": {}}',
        b"wrong-type": b'{"request_id": 7, "action_id": "action_a", "input": {}}',
        b"no-input": b'{"request_id": "r-x", "action_id": "action_a"}',
        b"input-list": b'{"request_id": "r-y", "action_id": "action_a", "input": [1]}',
        b"traversal": b'{"request_id": "r-z", "action_id": "../admin", "input": {}}',
        b"slash": b'{"request_id": "r-s", "action_id": "a/b", "input": {}}',
        b"encoded": b'{"request_id": "r-e", "action_id": "%2e%2e", "input": {}}',
        b"query": b'{"request_id": "r-q", "action_id": "action?x=1", "input": {}}',
        b"garbage-avro": b"\xc3\x01" + bytes(8) + b"\x99\x99",
        b"array": b"[1, 2, 3]",
    }
    valid = [(f"ok-{i}".encode(), request(i)) for i in range(40)]
    world.produce([*valid[:20], *broken.items(), *valid[20:]])

    processor = world.start()
    letters = world.read("deadletter", len(broken))
    results = world.read("results", 40)
    processor.stop()
    stats = world.simulator.stats()

    decoded = [decode(m, "deadletter") for m in letters]
    by_original = {fields["original_key"]: fields for fields in decoded}
    assert len(decoded) == len(broken)
    assert set(by_original) == set(broken)
    for key, fields in by_original.items():
        assert fields["reason"] == "INVALID_REQUEST", key
        assert fields["original_value"] == broken[key]
        assert fields["error"]
        assert fields["http_status"] is None
    assert "action_id '../admin' does not match" in by_original[b"traversal"]["error"]
    assert "not valid JSON" in by_original[b"bad-json"]["error"]
    assert len(results) == 40
    assert stats["submissions"] == 40
    assert stats["unknown_paths"] == 0


def test_unpublished_and_unknown_actions_are_dead_lettered_with_their_reasons(
    rig: RigFactory,
) -> None:
    world = rig(partitions=1)
    world.produce(
        [
            (b"1", request(1, "action_draft")),
            (b"2", request(2, "action_deprecated")),
            (b"3", request(3, "no_such_action")),
            (b"4", request(4, "action_a")),
        ]
    )

    processor = world.start()
    letters = world.read("deadletter", 3)
    results = world.read("results", 1)
    processor.stop()
    stats = world.simulator.stats()

    reasons = {
        fields["request_id"]: fields
        for _, fields in by_request_id(letters, "deadletter")
    }
    assert reasons["r-000001"]["reason"] == "ACTION_NOT_PUBLISHED"
    assert reasons["r-000002"]["reason"] == "ACTION_NOT_PUBLISHED"
    assert "DEPRECATED" in reasons["r-000002"]["error"]
    assert reasons["r-000003"]["reason"] == "UNKNOWN_ACTION"
    assert reasons["r-000003"]["http_status"] == 404
    assert len(results) == 1
    assert stats["submissions"] == 1


def test_faults_for_a_while_then_success_dead_letter_nothing(rig: RigFactory) -> None:
    world = rig(partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(100))
    world.simulator.start_outage(2.0)

    processor = world.start(PROCESSOR_MAX_ATTEMPTS="30", PROCESSOR_BACKOFF_MAX_S="0.3")
    results = world.read("results", 100)
    processor.stop()
    stats = world.simulator.stats()

    assert len(results) == 100
    assert world.read("deadletter", 0, timeout=1, settle=0.5) == []
    assert stats["outage_rejections"] > 0
    assert max(decode(m, "results")["attempts"] for m in results) > 1


def test_permanent_faults_exhaust_the_attempts_while_the_api_is_healthy(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(failing_actions={"action_b": 503}), partitions=1)
    world.produce((f"k{i}".encode(), request(i, "action_b")) for i in range(5))
    world.produce((f"ok{i}".encode(), request(100 + i)) for i in range(40))

    processor = world.start(PROCESSOR_MAX_ATTEMPTS="3")
    letters = world.read("deadletter", 5)
    results = world.read("results", 40)
    processor.stop()
    stats = world.simulator.stats()

    fields = [decode(m, "deadletter") for m in letters]
    assert len(fields) == 5
    assert {f["reason"] for f in fields} == {"RETRIES_EXHAUSTED"}
    assert {f["attempts"] for f in fields} == {3}
    assert {f["http_status"] for f in fields} == {503}
    assert all("gave up after 3 attempts" in f["error"] for f in fields)
    assert len(results) == 40
    # At least the three attempts each; a failure while the breaker was open
    # (they came first, so it opened) is waited out and spends none.
    assert stats["failed_on_purpose"] >= 15


def test_a_400_is_rejected_at_once_with_the_answer(rig: RigFactory) -> None:
    world = rig(Behaviour(failing_actions={"action_b": 400}), partitions=1)
    world.produce([(b"1", request(1, "action_b")), (b"2", request(2, "action_a"))])

    processor = world.start()
    [letter] = world.read("deadletter", 1)
    results = world.read("results", 1)
    processor.stop()
    fields = decode(letter, "deadletter")

    assert fields["reason"] == "REJECTED"
    assert fields["http_status"] == 400
    assert fields["attempts"] == 1
    assert "action_b fails" in fields["error"]
    assert len(results) == 1
    assert world.simulator.stats()["submissions"] == 2


def test_tokens_expiring_every_few_seconds_cause_no_dead_letter(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(token_lifetime_s=1, latency=Latency(20, 5)), partitions=2)
    world.produce((f"k{i}".encode(), request(i)) for i in range(1500))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="8")
    results = world.read("results", 1500, timeout=120)
    processor.stop()
    stats = world.simulator.stats()

    assert len(results) == 1500
    assert world.read("deadletter", 0, timeout=1, settle=0.5) == []
    assert stats["tokens_issued"] >= 3
    assert stats["accepted"] == 1500
