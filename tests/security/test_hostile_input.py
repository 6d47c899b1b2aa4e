"""A tenth of the requests are broken on purpose; the rest must not notice.

Every broken record is dead-lettered as ``INVALID_REQUEST`` with a reason
that names what is wrong and its value unchanged; every valid one gets its
result; the processor neither stops nor stalls, and the simulated API never
sees a request outside its documented paths.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer

from processor.simulator import Behaviour
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import ProcessorProcess, by_request_id, decode, request
from tests.security.hostile_records import Broken, broken_records

VALID_PER_BROKEN = 9
# Valid requests under headers that are not what they claim to be: the trace
# context is upstream's to send, and a broken one must not cost the job.
HOSTILE_HEADERS: list[tuple[str, str | bytes | None]] = [
    ("traceparent", b"00-not-a-trace-id\r\nX-Injected: yes"),
    ("tracestate", b"k=" + b"v" * 8192),
    ("\u00e9vil", b"\xff\xfe\x00"),
    ("empty", None),
]


def valid(i: int) -> tuple[bytes, bytes]:
    action = "action_a" if i % 2 else "action_b"
    return f"k{i}".encode(), request(i, action)


def test_broken_records_are_dead_lettered_with_their_reason_and_valid_ones_run(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(), partitions=4)
    broken = broken_records()
    interleaved: list[tuple[bytes | None, bytes | None]] = []
    for n, bad in enumerate(broken):
        interleaved += [valid(n * 8 + j) for j in range(VALID_PER_BROKEN - 1)]
        interleaved.append((f"bad-{n:02d}".encode(), bad.value))
    first_valid = len(interleaved) - len(broken)
    later = [valid(first_valid + j) for j in range(len(broken))]
    under_odd_headers = [valid(first_valid + len(later) + j) for j in range(2)]
    total = first_valid + len(later) + len(under_odd_headers)
    process = world.start()

    world.produce(interleaved)
    dead = world.read("deadletter", len(broken), timeout=90)
    still_running_after_the_broken = process.running
    world.produce(later)
    world.produce(under_odd_headers, headers=HOSTILE_HEADERS)
    results = dict(by_request_id(world.read("results", total), "results"))
    code = process.stop()
    stats = world.simulator.stats()

    assert still_running_after_the_broken, process.log()
    assert code == 0, process.log()
    expected_ids = {f"r-{i:06d}" for i in range(total)}
    assert set(results) == expected_ids
    assert first_valid + len(later) == VALID_PER_BROKEN * len(broken)
    assert_dead_letters(world, dead, broken)
    # Nothing broken reached the API, and nothing went anywhere undocumented.
    assert stats["unknown_paths"] == 0
    assert stats["unknown_actions"] == 0
    assert stats["bad_requests"] == 0
    assert stats["accepted"] == stats["submissions"] == len(expected_ids)
    assert stats["duplicates"] == 0
    assert '"level": "ERROR"' not in process.log()


def assert_dead_letters(world: Rig, dead: list[Any], broken: list[Broken]) -> None:
    by_key = {}
    for message in dead:
        fields = decode(message, "deadletter")
        by_key[fields["original_key"]] = (message, fields)
    assert len(dead) == len(broken) == len(by_key)

    for n, bad in enumerate(broken):
        message, fields = by_key[f"bad-{n:02d}".encode()]
        error = fields["error"]
        assert fields["reason"] == "INVALID_REQUEST", bad.name
        assert all(word in error.lower() for word in bad.mentions), (bad.name, error)
        assert fields["original_value"] == bad.value, bad.name
        assert fields["http_status"] is None
        assert fields["attempts"] == 0
        assert fields["request_id"] is None and fields["action_id"] is None
        assert fields["source_topic"] == world.topics.requests
        assert message.key() is None


# -- a valid request nested just short of what the parser can read -----------------


def nested_request(depth: int) -> tuple[bytes, bytes]:
    request_id = f"r-deep-{depth}"
    body = {"request_id": request_id, "action_id": "action_a", "input": {"x": 0}}
    text = json.dumps(body).replace("0}", "[" * depth + "]" * depth + "}", 1)
    return request_id.encode(), text.encode()


def test_an_input_nested_just_short_of_the_parsers_limit_does_not_stop_it(
    rig: RigFactory,
) -> None:
    # JSON nested nearly as deep as the interpreter's recursion limit parses
    # where the record is decoded, but serialising the body again happens
    # deeper down, inside the job's task. Whichever way such a request ends
    # (a result, or a dead letter naming the nesting), it must end, and the
    # processor must go on.
    world = rig(Behaviour(), partitions=1)
    deep = [nested_request(depth) for depth in range(900, 1000)]
    after = [(f"r-{i:06d}".encode(), request(i)) for i in range(5)]
    # A short grace period: if the processor does stop, it exits in seconds.
    process = world.start(PROCESSOR_GRACE_PERIOD_S="2")

    world.produce([*deep, *after])
    ended = outputs_by_key(world, process, len(deep) + len(after), timeout=60)
    running = process.running
    code = process.stop()

    assert running, process.log()[-3000:]
    assert code == 0
    assert sorted(ended) == sorted(key.decode() for key, _ in [*deep, *after])
    assert all(ended[key.decode()] == "result" for key, _ in after)


def outputs_by_key(
    world: Rig, process: ProcessorProcess, expected: int, timeout: float
) -> dict[str, str]:
    """Record key to "result" or the dead letter's reason, until all ended.

    Stops early when the processor has exited: nothing more will come.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": world.bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    ended: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([world.topics.results, world.topics.deadletter])
        while len(ended) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                if not process.running:
                    break
                continue
            if message.topic() == world.topics.results:
                ended[decode(message, "results")["request_id"]] = "result"
            else:
                fields = decode(message, "deadletter")
                ended[fields["original_key"].decode()] = fields["reason"]
    finally:
        consumer.close()
    return ended
