"""``produce`` and ``tail`` as a user runs them, against the real broker."""

from __future__ import annotations

import base64
import json
import os
import pty
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from processor.localkafka import LocalKafka
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import committed, produce, read

SCRIPT = Path(sys.executable).parent / "cxone-processor"


def tool_env(world: Rig, **settings: str) -> dict[str, str]:
    """The processor's settings, less the API's: these commands never need them."""
    env = {k: v for k, v in world.env().items() if not k.startswith("CXONE_")}
    return {**env, "PROCESSOR_LOG_LEVEL": "WARNING", **settings}


def command(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def tail(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = command(env, "tail", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def jsonl(*requests: dict[str, Any] | str) -> str:
    return "".join(
        (r if isinstance(r, str) else json.dumps(r)) + "\n" for r in requests
    )


def job(rid: str, action: str = "action_a", **extra: Any) -> dict[str, Any]:
    return {"request_id": rid, "action_id": action, "input": {"id": rid}, **extra}


def test_produce_sends_exactly_the_good_lines_keyed_by_the_chosen_field(
    rig: RigFactory, tmp_path: Path
) -> None:
    world = rig(partitions=1)
    good = [
        job("r-1", customer="c-1"),
        job("r-3", customer="c-3"),
        job("r-7", customer=7),
    ]
    source = tmp_path / "requests.jsonl"
    source.write_text(
        jsonl(
            good[0],
            "{not json",
            good[1],
            "",
            job("r-5", action="../admin", customer="c-5"),
            job("r-6"),
            good[2],
        )
    )

    done = command(tool_env(world), "produce", str(source), "--key-field", "customer")
    sent = read(world.bootstrap, world.topics.requests, 3, timeout=30)

    assert done.returncode == 0, done.stderr
    assert "line 2: value is not valid JSON" in done.stderr
    assert "line 5: action_id '../admin' does not match" in done.stderr
    assert "line 6: customer is missing, and the key comes from it" in done.stderr
    assert "line 4" not in done.stderr
    assert (
        f"sent 3 request(s) to {world.topics.requests}; skipped 3 bad line(s)"
        in done.stderr
    )
    assert [m.key() for m in sent] == [b"c-1", b"c-3", b"7"]
    assert [m.value() for m in sent] == [json.dumps(r).encode() for r in good]


def test_produce_exits_1_when_the_broker_refuses_a_record(
    kafka: LocalKafka, rig: RigFactory
) -> None:
    world = rig(partitions=1)
    small = f"small.{time.time_ns()}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    admin.create_topics([NewTopic(small, 1, 1, config={"max.message.bytes": "1000"})])[
        small
    ].result(timeout=30)

    done = command(
        tool_env(world),
        "produce",
        "--requests-topic",
        small,
        stdin=jsonl(job("r-big", blob="x" * 3000)),
    )

    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"cxone-processor produce: the broker did not take 1 record(s) for {small}: "
        "Broker: Message size too large"
    )


def test_produce_shows_a_progress_bar_only_on_a_terminal(rig: RigFactory) -> None:
    world = rig(partitions=1)
    env = tool_env(world, TERM="xterm", COLUMNS="100")
    requests = jsonl(*(job(f"r-{i}") for i in range(3)))

    piped = command(env, "produce", stdin=requests)
    on_terminal = _stderr_on_a_terminal(env, requests)

    assert piped.returncode == 0
    assert "producing" not in piped.stderr
    assert "producing" in on_terminal
    assert "3 sent, 0 skipped" in on_terminal
    assert "sent 3 request(s)" in on_terminal


def test_tail_decodes_all_four_topics_in_both_framings_after_a_processor_run(
    rig: RigFactory,
) -> None:
    world = rig(partitions=2)
    env = tool_env(world)
    registry_env = tool_env(world, SCHEMA_REGISTRY_URL="mock://tail")
    first = jsonl(job("r-1"), job("r-2", action="action_draft"))
    assert command(env, "produce", stdin=first).returncode == 0
    avro = command(env, "produce", "--format", "avro", stdin=jsonl(job("r-3")))
    assert avro.returncode == 0, avro.stderr
    produce(world.bootstrap, world.topics.requests, [(b"k-bad", b"\xff\xfe")])

    # Single-object outputs from one run, registry ones from the next.
    processor = world.start()
    world.read("deadletter", 2, settle=0)
    world.read("results", 2, settle=0)
    assert processor.stop() == 0
    second = jsonl(job("r-4"), job("r-5", action="action_draft"))
    assert command(env, "produce", stdin=second).returncode == 0
    processor = world.start(SCHEMA_REGISTRY_URL="mock://processor")
    world.read("deadletter", 3, settle=0)
    world.read("results", 3, settle=0)
    assert processor.stop() == 0
    avro = command(registry_env, "produce", "--format", "avro", stdin=jsonl(job("r-6")))
    assert avro.returncode == 0, avro.stderr
    positions = committed(world.bootstrap, world.group, world.topics.requests, 2)

    for tool in (env, registry_env):
        _assert_requests(tail(tool, "requests"))
        _assert_results(tail(tool, "results"))
        _assert_dead_letters(tail(tool, "deadletter"))
        _assert_audit(tail(tool, "--topic", world.topics.audit))

    # assign() under a throwaway id: no group left behind, none moved.
    groups = AdminClient({"bootstrap.servers": world.bootstrap}).list_consumer_groups()
    names = [g.group_id for g in groups.result(timeout=30).valid]
    assert not [name for name in names if name.startswith("cxone-processor-tail")]
    assert (
        committed(world.bootstrap, world.group, world.topics.requests, 2) == positions
    )


def _assert_requests(lines: list[dict[str, Any]]) -> None:
    by_key = {line["key"]: line for line in lines}
    assert len(lines) == 7
    assert Counter(line.get("format") for line in lines) == {
        "json": 4,
        "avro-single-object": 1,
        "avro-registry": 1,
        None: 1,
    }
    assert by_key["r-1"]["value"] == job("r-1")
    assert by_key["r-3"]["value"]["input"] == '{"id": "r-3"}'
    assert by_key["r-6"]["value"]["request_id"] == "r-6"
    assert "warning" in by_key["r-6"]

    bad = by_key["k-bad"]
    assert "neither Avro in a known framing nor JSON" in bad["error"]
    assert base64.b64decode(bad["value_base64"]) == b"\xff\xfe"
    assert {"topic", "partition", "offset", "timestamp", "headers"} <= set(bad)


def _assert_results(lines: list[dict[str, Any]]) -> None:
    assert sorted(line["key"] for line in lines) == ["r-1", "r-3", "r-4"]
    assert {line["value"]["request_id"] for line in lines} == {"r-1", "r-3", "r-4"}
    assert {line["value"]["job_status"] for line in lines} == {"QUEUED"}
    assert Counter(line["format"] for line in lines) == {
        "avro-single-object": 2,
        "avro-registry": 1,
    }
    for line in lines:
        assert line["headers"][0]["key"] == "traceparent"
        assert line["value"]["completed_at"].endswith("Z")


def _assert_dead_letters(lines: list[dict[str, Any]]) -> None:
    by_reason = Counter(line["value"]["reason"] for line in lines)
    unreadable = next(line["value"] for line in lines if line["key"] is None)
    draft = next(line["value"] for line in lines if line["key"] == "r-2")

    assert by_reason == {"ACTION_NOT_PUBLISHED": 2, "INVALID_REQUEST": 1}
    assert {line["format"] for line in lines} == {"avro-single-object", "avro-registry"}
    assert unreadable["original_key"] == "k-bad"
    assert unreadable["original_value"] == {"base64": "//4="}
    assert json.loads(draft["original_value"]) == job("r-2", action="action_draft")


def _assert_audit(lines: list[dict[str, Any]]) -> None:
    kinds = Counter(line["value"]["event_type"] for line in lines)
    assert not [line for line in lines if "error" in line]
    assert {line["format"] for line in lines} == {"avro-single-object", "avro-registry"}
    assert kinds["PROCESSOR_STARTED"] == 2
    assert kinds["JOB_COMPLETED"] == 3
    assert kinds["JOB_DEAD_LETTERED"] == 3


def test_tail_from_a_time_from_the_end_and_up_to_a_limit(rig: RigFactory) -> None:
    world = rig(partitions=3)
    env = tool_env(world)
    before = jsonl(*(job(f"old-{i}") for i in range(4)))
    assert command(env, "produce", stdin=before).returncode == 0
    since = datetime.now(UTC)
    after = jsonl(*(job(f"new-{i}") for i in range(5)))
    assert command(env, "produce", stdin=after).returncode == 0

    recent = tail(env, "requests", "--from", since.isoformat())
    limited = tail(env, "requests", "--limit", "2")
    at_end = tail(env, "requests", "--from", "end")

    assert sorted(line["key"] for line in recent) == [f"new-{i}" for i in range(5)]
    assert len(limited) == 2
    assert at_end == []


def test_tail_names_what_is_wrong_in_one_line(rig: RigFactory) -> None:
    env = tool_env(rig(partitions=1))

    bad_start = command(env, "tail", "requests", "--from", "yesterday")
    no_topic = command(env, "tail")
    unknown = command(env, "tail", "--topic", "no.such.topic")

    assert (bad_start.returncode, no_topic.returncode, unknown.returncode) == (2, 2, 1)
    for done in (bad_start, no_topic, unknown):
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stdout == ""
    assert "--from 'yesterday' is not beginning, end or an ISO 8601" in bad_start.stderr
    assert "TOPIC must be one of requests" in no_topic.stderr
    assert "topic no.such.topic cannot be read" in unknown.stderr


def test_tail_follow_prints_new_records_until_ctrl_c(rig: RigFactory) -> None:
    world = rig(partitions=2)
    env = tool_env(world)
    assert command(env, "produce", stdin=jsonl(job("r-1"))).returncode == 0
    follower = subprocess.Popen(
        [str(SCRIPT), "tail", "requests", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = _next_line(follower, timeout=30)
        assert command(env, "produce", stdin=jsonl(job("r-2"))).returncode == 0
        second = _next_line(follower, timeout=30)
        follower.send_signal(signal.SIGINT)
        exit_code = follower.wait(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=10)
    assert follower.stderr is not None

    assert [first["key"], second["key"]] == ["r-1", "r-2"]
    assert exit_code == 0
    assert "2 record(s) from" in follower.stderr.read()


def _next_line(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The next line the process prints, within ``timeout`` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), "tail printed nothing in time"
    line: dict[str, Any] = json.loads(process.stdout.readline())
    return line


def _stderr_on_a_terminal(env: dict[str, str], stdin: str) -> str:
    """``produce`` with a pseudo-terminal as its stderr: what it drew there."""
    main_fd, terminal_fd = pty.openpty()
    drawn: list[bytes] = []
    # Read while it runs: a full terminal buffer would block the command.
    reader = threading.Thread(target=_drain, args=(main_fd, drawn), daemon=True)
    reader.start()
    try:
        process = subprocess.Popen(
            [str(SCRIPT), "produce"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=terminal_fd,
            text=True,
        )
        os.close(terminal_fd)
        process.communicate(stdin, timeout=60)
        reader.join(timeout=10)
    finally:
        os.close(main_fd)
    return b"".join(drawn).decode(errors="replace")


def _drain(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # Linux reports the closed far end as EIO
            return
        if not chunk:
            return
        into.append(chunk)
