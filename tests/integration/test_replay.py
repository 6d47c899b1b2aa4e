"""``cxone-processor replay`` against the real broker, simulator and processor."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, Message, Producer

from processor import schemas
from processor.deadletters import REPLAY_COUNT_HEADER
from processor.simulator.behaviour import DEFAULT_ACTIONS
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import by_request_id, decode, request

DEAD_LETTER = schemas.SingleObjectCodec(schemas.load("dead_letter"))


def replay(world: Rig, *flags: str) -> tuple[int, dict[str, Any], str]:
    """Runs the command to its end; returns its exit code, JSON report, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "processor", "replay", "--json", *flags],
        env=world.env(PROCESSOR_LOG_LEVEL="WARNING"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    return done.returncode, report, done.stderr


@contextmanager
def started_replay(world: Rig, *flags: str) -> Iterator[subprocess.Popen[str]]:
    """The command in the background; killed on the way out if still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "processor", "replay", "--json", *flags],
        env=world.env(PROCESSOR_LOG_LEVEL="WARNING"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def dead_letter(
    world: Rig,
    i: int,
    reason: str = "ACTION_NOT_PUBLISHED",
    action: str = "action_draft",
    failed_at: datetime | None = None,
    replays: int | None = None,
) -> bytes:
    """A dead letter as the processor writes it, for request ``r-<i>``."""
    headers = [{"key": "tenant", "value": b"acme"}]
    if replays is not None:
        headers.append({"key": REPLAY_COUNT_HEADER, "value": str(replays).encode()})
    return DEAD_LETTER.encode(
        {
            "reason": reason,
            "error": f"{action} failed",
            "http_status": None,
            "attempts": 1,
            "request_id": f"r-{i:06d}",
            "action_id": action,
            "original_key": f"k{i}".encode(),
            "original_value": request(i, action),
            "original_headers": headers,
            "source_topic": world.topics.requests,
            "source_partition": 0,
            "source_offset": i,
            "failed_at": failed_at or datetime.now(UTC),
            "instance_id": "processor-test",
        }
    )


def put_dead_letters(world: Rig, letters: list[tuple[bytes, datetime]]) -> None:
    """Produces each value with its failure time as the record timestamp."""
    producer = Producer({"bootstrap.servers": world.bootstrap, "linger.ms": 5})
    for value, failed_at in letters:
        timestamp = int(failed_at.timestamp() * 1000)
        producer.produce(world.topics.deadletter, value, timestamp=timestamp)
    assert producer.flush(30) == 0


def read_requests(
    world: Rig, expected: int, isolation: str = "read_committed", settle: float = 1.0
) -> list[Message]:
    """The requests topic as a reader with ``isolation`` sees it."""
    consumer = Consumer(
        {
            "bootstrap.servers": world.bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    received: list[Message] = []
    try:
        consumer.subscribe([world.topics.requests])
        deadline = time.monotonic() + 60
        while len(received) < expected and time.monotonic() < deadline:
            received.extend(_polled(consumer))
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            received.extend(_polled(consumer))
    finally:
        consumer.close()
    return received


def _polled(consumer: Consumer) -> list[Message]:
    message = consumer.poll(0.1)
    if message is None or message.error() is not None:
        return []
    return [message]


def replay_counts(messages: list[Message]) -> list[bytes | None]:
    counts = [dict(m.headers() or []).get(REPLAY_COUNT_HEADER) for m in messages]
    return [c if isinstance(c, bytes | None) else c.encode() for c in counts]


def test_dead_letters_go_back_and_become_results_once_the_cause_is_fixed(
    rig: RigFactory,
) -> None:
    world = rig(partitions=2)
    fine = [(f"ok{i}".encode(), request(i)) for i in range(20)]
    draft = [(f"d{i}".encode(), request(100 + i, "action_draft")) for i in range(30)]
    new = [(f"n{i}".encode(), request(200 + i, "action_new")) for i in range(10)]
    world.produce([*fine, *draft, *new], headers=[("tenant", b"acme")])
    processor = world.start(PROCESSOR_ACTION_CACHE_TTL_S="0")
    letters = world.read("deadletter", 40)
    world.simulator.configure(
        actions={
            **DEFAULT_ACTIONS,
            "action_draft": "PUBLISHED",
            "action_new": "PUBLISHED",
        }
    )

    code, report, stderr = replay(world)
    results = world.read("results", 60)
    requests = read_requests(world, 100)
    processor.stop()
    stats = world.simulator.stats()

    reasons = Counter(decode(m, "deadletter")["reason"] for m in letters)
    assert reasons == {"ACTION_NOT_PUBLISHED": 30, "UNKNOWN_ACTION": 10}
    assert code == 0, stderr
    assert (report["sent"], report["skipped"], report["filtered"]) == (40, 0, 0)
    assert report["by_reason"]["UNKNOWN_ACTION"]["sent"] == 10
    ids = Counter(request_id for request_id, _ in by_request_id(results, "results"))
    assert set(ids) == {
        f"r-{i:06d}" for i in [*range(20), *range(100, 130), *range(200, 210)]
    }
    assert max(ids.values()) == 1
    assert stats["accepted"] == 60
    originals = dict([*draft, *new])
    replayed = [m for m in requests if dict(m.headers() or []).get(REPLAY_COUNT_HEADER)]
    assert len(requests) == 100
    assert len(replayed) == 40
    for message in replayed:
        assert message.value() == originals[message.key() or b""]
        assert message.headers() == [("tenant", b"acme"), (REPLAY_COUNT_HEADER, b"1")]
    assert len(world.read("deadletter", 40, timeout=1)) == 40


def test_a_request_that_keeps_failing_is_replayed_at_most_max_replays_times(
    rig: RigFactory,
) -> None:
    world = rig(partitions=1)
    world.produce([(b"poison", request(1, "no_such_action"))])
    processor = world.start()

    reports = []
    for round_ in range(1, 5):
        world.read("deadletter", round_, settle=0)
        code, report, stderr = replay(world)
        assert code == 0, stderr
        reports.append(report)
    letters = world.read("deadletter", 4)
    processor.stop()
    requests = read_requests(world, 4)

    assert [r["sent"] for r in reports] == [1, 1, 1, 0]
    assert [r["skipped"] for r in reports] == [0, 0, 0, 1]
    assert reports[-1]["by_reason"] == {
        "UNKNOWN_ACTION": {"sent": 0, "skipped": 1, "filtered": 0}
    }
    assert replay_counts(requests) == [None, b"1", b"2", b"3"]
    stored = [
        [
            header["value"]
            for header in decode(m, "deadletter")["original_headers"]
            if header["key"] == REPLAY_COUNT_HEADER
        ]
        for m in letters
    ]
    assert stored == [[], [b"1"], [b"2"], [b"3"]]


def test_a_replay_killed_mid_way_and_run_again_sends_each_dead_letter_once(
    rig: RigFactory,
) -> None:
    world = rig(partitions=2)
    now = datetime.now(UTC)
    put_dead_letters(world, [(dead_letter(world, i), now) for i in range(400)])

    with started_replay(world, "--batch-size", "2") as first:
        seen = read_requests(world, 20, settle=0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    code, report, stderr = replay(world)
    committed = read_requests(world, 400)

    assert len(seen) >= 20
    assert first.returncode == -signal.SIGKILL
    assert code == 0, stderr
    assert 0 < report["sent"] < 400
    assert Counter(m.value() for m in committed) == {
        request(i, "action_draft"): 1 for i in range(400)
    }


def test_ctrl_c_aborts_the_batch_reports_what_was_committed_and_a_rerun_resumes(
    rig: RigFactory,
) -> None:
    world = rig(partitions=1)
    now = datetime.now(UTC)
    put_dead_letters(world, [(dead_letter(world, i), now) for i in range(300)])

    with started_replay(world, "--batch-size", "2") as first:
        read_requests(world, 10, settle=0)
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    interrupted = json.loads(out.strip().splitlines()[-1])
    code, report, stderr = replay(world)
    committed = read_requests(world, 300)

    assert first.returncode == 130, err
    assert "interrupted" in interrupted["note"]
    assert 10 <= interrupted["sent"] < 300
    assert code == 0, stderr
    assert interrupted["sent"] + report["sent"] == 300
    assert int(report["positions"]["0"]) == 300
    assert Counter(m.value() for m in committed) == {
        request(i, "action_draft"): 1 for i in range(300)
    }


def test_filters_and_dry_runs_count_the_same_and_a_dry_run_sends_nothing(
    rig: RigFactory,
) -> None:
    world = rig(partitions=1)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    at = [hour_ago + timedelta(minutes=m) for m in (10, 20, 30, 40)]
    specs = [
        *((i, "ACTION_NOT_PUBLISHED", "action_draft", at[0], None) for i in range(10)),
        *((10 + i, "UNKNOWN_ACTION", "action_x", at[1], None) for i in range(10)),
        *((20 + i, "RETRIES_EXHAUSTED", "action_b", at[2], None) for i in range(10)),
        *((30 + i, "ACTION_NOT_PUBLISHED", "action_draft", at[3], 3) for i in range(5)),
    ]
    letters = [
        (dead_letter(world, i, reason, action, moment, replays), moment)
        for i, reason, action, moment, replays in specs
    ]
    letters.append((b"not a dead letter", at[3]))
    put_dead_letters(world, letters)
    since = (at[2] - timedelta(minutes=5)).isoformat()
    until = (at[2] + timedelta(minutes=5)).isoformat()
    two_reasons = ["--reason", "ACTION_NOT_PUBLISHED", "--reason", "UNKNOWN_ACTION"]

    dry = [
        replay(world, "--dry-run", *two_reasons),
        replay(world, "--dry-run", *two_reasons),
        replay(world, "--dry-run", "--action", "action_x"),
        replay(world, "--dry-run", "--since", since, "--until", until),
    ]
    sent_by_dry_runs = read_requests(world, 0)
    limited = replay(world, "--reason", "ACTION_NOT_PUBLISHED", "--limit", "7")
    rest = replay(world, "--reason", "ACTION_NOT_PUBLISHED")
    again = replay(world)
    resumed_since = replay(world, "--dry-run", "--since", since)
    from_beginning_since = replay(
        world, "--dry-run", "--from-beginning", "--since", since
    )
    requests = read_requests(world, 10)

    def counts(result: tuple[int, dict[str, Any], str]) -> tuple[int, ...]:
        code, report, stderr = result
        assert code == 0, stderr
        keys = ("sent", "skipped", "filtered", "undecodable")
        return tuple(report[key] for key in keys)

    assert counts(dry[0]) == (20, 5, 10, 1)
    assert counts(dry[1]) == counts(dry[0])
    assert counts(dry[2]) == (10, 0, 25, 1)
    # The seek passes over the first twenty, so they are not even filtered.
    assert counts(dry[3]) == (10, 0, 5, 1)
    assert sent_by_dry_runs == []
    assert counts(limited) == (7, 0, 0, 0)
    assert counts(rest) == (3, 5, 20, 1)
    assert counts(again) == (0, 0, 0, 0)
    # --since never moves back past where the group stopped; with
    # --from-beginning it does.
    assert counts(resumed_since) == (0, 0, 0, 0)
    assert counts(from_beginning_since) == (10, 5, 0, 1)
    assert sorted(m.value() or b"" for m in requests) == sorted(
        request(i, "action_draft") for i in range(10)
    )


def test_wrong_arguments_stop_the_command_with_one_line(rig: RigFactory) -> None:
    world = rig(partitions=1)

    own_group = replay(world, "--group", world.group)
    bad_time = replay(world, "--since", "yesterday")
    backwards = replay(
        world, "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"
    )

    assert own_group[0] == 2
    assert own_group[2].strip().splitlines() == [
        "cxone-processor replay: invalid setting: --group must differ from "
        "PROCESSOR_GROUP_ID"
    ]
    assert bad_time[0] == 2
    assert "argument --since: 'yesterday' is not an ISO-8601 time" in bad_time[2]
    assert backwards[0] == 2
    assert "--until is before --since" in backwards[2]


def test_an_empty_dead_letter_topic_replays_nothing_and_ends(rig: RigFactory) -> None:
    world = rig(partitions=1)

    code, report, stderr = replay(world)

    assert code == 0, stderr
    assert (report["sent"], report["skipped"], report["filtered"]) == (0, 0, 0)
    assert report["positions"] == {"0": 0}
