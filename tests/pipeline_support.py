"""Helpers for tests that run ``cxone-processor run`` against real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from processor import schemas
from processor.simulator import Behaviour

SCHEMA_FOR_TOPIC = {
    "results": "job_result",
    "deadletter": "dead_letter",
    "audit": "audit_event",
}


@dataclass(frozen=True)
class Topics:
    requests: str
    results: str
    deadletter: str
    audit: str


def request(i: int, action: str = "action_a", **extra: Any) -> bytes:
    body = {"request_id": f"r-{i:06d}", "action_id": action, "input": {"n": i}}
    body.update(extra)
    return json.dumps(body).encode()


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    partition: int | None = None,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent = 0
    for key, value in records:
        if partition is None:
            producer.produce(topic, value, key, headers=headers)
        else:
            producer.produce(topic, value, key, partition=partition, headers=headers)
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return sent


def read(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout: float = 60.0,
    settle: float = 1.0,
) -> list[Message]:
    """Every record of `topic`: waits for `expected`, then `settle` s for extras."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            _poll_into(consumer, received)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            _poll_into(consumer, received)
    finally:
        consumer.close()
    return received


def _poll_into(consumer: Consumer, received: list[Message]) -> None:
    message = consumer.poll(0.2)
    if message is not None and message.error() is None:
        received.append(message)


def decode(message: Message, kind: str) -> dict[str, Any]:
    value = message.value()
    assert value is not None
    return schemas.Reader().read(value, schemas.load(SCHEMA_FOR_TOPIC[kind]))


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offsets (-1001 where there is none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    asked = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        for _ in range(20):
            try:
                return [tp.offset for tp in consumer.committed(asked, timeout=10)]
            except KafkaException:  # the group coordinator may still be loading
                time.sleep(0.5)
        return [tp.offset for tp in consumer.committed(asked, timeout=10)]
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()


def wait_until(
    condition: Callable[[], bool], timeout: float, interval: float = 0.2
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class ProcessorProcess:
    """``cxone-processor run`` as a subprocess; its stderr goes to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcessorProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "processor", "run"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def processor_env(
    bootstrap: str,
    simulator_url: str,
    topics: Topics,
    behaviour: Behaviour,
    group: str,
    **settings: str,
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CXONE_", "KAFKA_", "PROCESSOR_", "SCHEMA_REGISTRY"))
    }
    env.update(
        {
            "CXONE_BASE_URL": simulator_url,
            "CXONE_CLIENT_ID": behaviour.client_id,
            "CXONE_CLIENT_SECRET": behaviour.client_secret,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PROCESSOR_GROUP_ID": group,
            "PROCESSOR_REQUESTS_TOPIC": topics.requests,
            "PROCESSOR_RESULTS_TOPIC": topics.results,
            "PROCESSOR_DEADLETTER_TOPIC": topics.deadletter,
            "PROCESSOR_AUDIT_TOPIC": topics.audit,
            "PROCESSOR_COMMIT_INTERVAL_S": "0.5",
            # A killed instance leaves the group after 6 s, not librdkafka's 45.
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "PROCESSOR_BACKOFF_INITIAL_S": "0.05",
            "PROCESSOR_BACKOFF_MAX_S": "0.5",
            # Metrics and health on a free port, so instances never collide.
            "PROCESSOR_HTTP_PORT": "0",
        }
    )
    env.update(settings)
    return env


def by_request_id(
    messages: Iterable[Message], kind: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    for message in messages:
        fields = decode(message, kind)
        yield str(fields["request_id"]), fields
