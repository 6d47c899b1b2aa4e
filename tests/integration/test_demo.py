"""``cxone-processor demo`` as a user runs it: start to finish, kept, interrupted.

The demo starts its own broker, simulator and processor, so these tests run
it as a subprocess and look at what it leaves: the summary it writes, the
topics themselves while ``--keep`` holds them, and the processes and folders
it started, which must all be gone once it exits.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message

from tests.pipeline_support import decode, read, wait_until

DEMO = (sys.executable, "-m", "processor", "demo")
JOBS = 400


class DemoProcess:
    """The demo in a subprocess, its output in a file, its children tracked."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.tmp = tmp
        self.output_path = tmp / "demo-output.txt"
        with self.output_path.open("w") as output:
            self.process = subprocess.Popen(
                [*DEMO, *args],
                env={**os.environ, "TMPDIR": str(tmp)},
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started: dict[int, str] = {}

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def running_children(self) -> dict[int, str]:
        """The broker and processor it runs now, remembered for the end."""
        found = children(self.process.pid)
        self.started.update(found)
        return found

    def runs_broker_and_processor(self) -> bool:
        commands = self.running_children().values()
        return any("kafka.Kafka" in c for c in commands) and any(
            "processor run" in c for c in commands
        )

    def wait(self, timeout: float) -> int | None:
        """Its exit code, noting the children it runs meanwhile."""

        def exited() -> bool:
            self.running_children()
            return self.process.poll() is not None

        wait_until(exited, timeout)
        return self.process.poll()

    def leftovers(self) -> list[str]:
        """Processes and folders it started that are still there."""
        alive = [
            f"{pid}: {command[:80]}"
            for pid, command in self.started.items()
            if running(pid, command)
        ]
        folders = [path.name for path in self.tmp.glob("cxone-*")]
        return alive + folders

    def kill_everything(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for pid, command in self.started.items():
            if running(pid, command):
                os.kill(pid, signal.SIGKILL)


@contextmanager
def demo(tmp: Path, *args: str) -> Iterator[DemoProcess]:
    started = DemoProcess(tmp, *args)
    try:
        yield started
    finally:
        started.kill_everything()


def children(parent: int) -> dict[int, str]:
    """Processes whose parent is ``parent``, by pid, with their command lines."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # it ended while we looked
            continue
        # The command name in brackets may hold spaces: fields follow the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        # A zombie has an empty command line: keep what it ran while alive.
        if ppid == parent and command:
            found[int(entry.name)] = command.replace(b"\0", b" ").decode()
    return found


def running(pid: int, command: str) -> bool:
    """Whether ``pid`` still runs ``command`` (not a zombie, not a reused pid)."""
    process = Path(f"/proc/{pid}")
    try:
        state = (process / "stat").read_text().rsplit(")", 1)[1].split()[0]
        now = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return state != "Z" and now == command


def test_the_demo_gives_every_request_one_output_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    summary_path = tmp_path / "summary.json"
    with demo(tmp_path, "--jobs", str(JOBS), "--json", str(summary_path)) as run:
        assert run.wait(timeout=240) == 0, run.output()
    commands = run.started.values()
    assert any("kafka.Kafka" in command for command in commands)
    assert any("processor run" in command for command in commands)

    summary = json.loads(summary_path.read_text())
    expected = summary["expected"]
    assert summary["produced"] == JOBS == sum(expected.values())
    assert summary["results"]["count"] == expected["result"]
    assert summary["results"]["request_ids"] == expected["result"]
    assert summary["dead_letters"]["by_reason"] == {
        reason: count for reason, count in expected.items() if reason != "result"
    }
    assert summary["accounted"] == {
        "requests_with_an_output": JOBS,
        "duplicates": 0,
        "missing": 0,
    }
    assert summary["api"]["accepted"] == expected["result"]
    assert summary["api"]["duplicates"] == 0

    printed = run.output()
    assert "every request has exactly one output" in printed
    bootstrap = summary["bootstrap_servers"]
    assert summary["replay"] == [
        f"cxone-processor replay --bootstrap-servers {bootstrap} --reason {reason}"
        for reason in ("ACTION_NOT_PUBLISHED", "UNKNOWN_ACTION")
    ]
    for command in summary["replay"]:
        assert command in printed
    assert run.leftovers() == []


def test_with_keep_the_topics_hold_what_the_summary_says_until_ctrl_c(
    tmp_path: Path,
) -> None:
    summary_path = tmp_path / "summary.json"
    args = ("--jobs", str(JOBS), "--keep", "--json", str(summary_path))
    with demo(tmp_path, *args) as run:
        assert wait_until(run.runs_broker_and_processor, timeout=180), run.output()
        assert wait_until(
            lambda: summary_path.exists() or run.process.poll() is not None,
            timeout=180,
        )
        assert run.process.poll() is None, run.output()
        assert run.runs_broker_and_processor()

        summary = json.loads(summary_path.read_text())
        topics = Topics(summary)
        check_against_topics(summary, topics)

        run.process.send_signal(signal.SIGINT)
        assert run.wait(timeout=90) == 0, run.output()
        # The demo waits for each process it stops, so none may outlive it.
        assert run.leftovers() == []


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 128 + 15)],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_during_the_run_stops_everything_the_demo_started(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    with demo(tmp_path, "--jobs", "3000") as run:
        assert wait_until(run.runs_broker_and_processor, timeout=180), run.output()

        run.process.send_signal(signum)
        assert run.wait(timeout=90) == code, run.output()

        assert "Interrupted: stopping everything the demo started" in run.output()
        # The demo waits for each process it stops, so none may outlive it.
        assert run.leftovers() == []


class Topics:
    """The demo's topics, read and decoded while ``--keep`` holds its broker."""

    def __init__(self, summary: dict[str, Any]) -> None:
        bootstrap = summary["bootstrap_servers"]
        names = summary["topics"]
        self.requests = read(bootstrap, names["requests"], summary["produced"])
        self.results = [
            decode(message, "results")
            for message in read(
                bootstrap, names["results"], summary["results"]["count"]
            )
        ]
        self.dead_letters = [
            decode(message, "deadletter")
            for message in read(
                bootstrap, names["deadletter"], summary["dead_letters"]["count"]
            )
        ]
        audit_events = sum(summary["audit"]["by_type"].values())
        self.audit = [
            decode(message, "audit")
            for message in read(bootstrap, names["audit"], audit_events)
        ]


def check_against_topics(summary: dict[str, Any], topics: Topics) -> None:
    outputs = [*topics.results, *topics.dead_letters]
    assert len(topics.requests) == summary["produced"] == JOBS

    # Every request (by partition and offset) has exactly one output.
    sources = Counter((o["source_partition"], o["source_offset"]) for o in outputs)
    assert sources == Counter(
        (message.partition(), message.offset()) for message in topics.requests
    )

    # And so does every request id, but those of requests too broken to trust.
    invalid = {
        (d["source_partition"], d["source_offset"])
        for d in topics.dead_letters
        if d["reason"] == "INVALID_REQUEST"
    }
    produced_ids = [
        _request_id(message)
        for message in topics.requests
        if (message.partition(), message.offset()) not in invalid
    ]
    output_ids = Counter(o["request_id"] for o in outputs if o["request_id"])
    assert output_ids == Counter(produced_ids)

    # Dead letters keep the request as it came.
    originals = {(m.partition(), m.offset()): m for m in topics.requests}
    for letter in topics.dead_letters:
        original = originals[(letter["source_partition"], letter["source_offset"])]
        assert letter["original_value"] == original.value()
        assert letter["original_key"] == original.key()

    results = summary["results"]
    assert len(topics.results) == results["count"]
    assert len({r["request_id"] for r in topics.results}) == results["request_ids"]
    assert sum(r["attempts"] > 1 for r in topics.results) == results["retried_jobs"]
    cuts = statistics.quantiles(
        [r["latency_ms"] for r in topics.results], n=100, method="inclusive"
    )
    assert results["latency_ms"] == {
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "p99": round(cuts[98], 1),
    }

    letters = summary["dead_letters"]
    assert Counter(d["reason"] for d in topics.dead_letters) == letters["by_reason"]
    assert letters["request_ids"] == len(
        {d["request_id"] for d in topics.dead_letters if d["request_id"]}
    )

    # Events of the run itself; a kept processor adds only DRAIN_RATE ones.
    seen = Counter(event["event_type"] for event in topics.audit)
    by_type = summary["audit"]["by_type"]
    for kind in ("PARTITIONS_PAUSED", "THROTTLED", "JOB_RETRIED", "BREAKER_OPENED"):
        assert seen[kind] == by_type.get(kind, 0), kind
    pauses = Counter(
        event["details"]["reason"]
        for event in topics.audit
        if event["event_type"] == "PARTITIONS_PAUSED"
    )
    assert pauses == summary["audit"]["pauses_by_reason"]


def _request_id(message: Message) -> str:
    value = message.value()
    assert value is not None
    return str(json.loads(value)["request_id"])
