"""Everything under this folder runs real servers and is marked ``integration``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Message

from processor.localkafka import LocalKafka
from processor.simulator import Behaviour, SimulatorThread
from tests.conftest import TopicFactory
from tests.pipeline_support import (
    ProcessorProcess,
    Topics,
    processor_env,
    produce,
    read,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@dataclass
class Rig:
    """A processor's world: topics on the real broker and a simulator."""

    bootstrap: str
    topics: Topics
    partitions: int
    simulator: SimulatorThread
    behaviour: Behaviour
    group: str
    tmp: Path
    processes: list[ProcessorProcess] = field(default_factory=list)

    def env(self, **settings: str) -> dict[str, str]:
        return processor_env(
            self.bootstrap,
            self.simulator.url,
            self.topics,
            self.behaviour,
            self.group,
            **settings,
        )

    def start(self, **settings: str) -> ProcessorProcess:
        log_path = self.tmp / f"processor-{len(self.processes)}.log"
        process = ProcessorProcess(self.env(**settings), log_path).start()
        self.processes.append(process)
        return process

    def produce(
        self,
        records: Iterable[tuple[bytes | None, bytes | None]],
        partition: int | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> int:
        return produce(
            self.bootstrap, self.topics.requests, records, partition, headers
        )

    def read(
        self, kind: str, expected: int, timeout: float = 90.0, settle: float = 1.0
    ) -> list[Message]:
        topic = getattr(self.topics, kind)
        return read(self.bootstrap, topic, expected, timeout, settle)

    def logs(self) -> str:
        return "\n".join(process.log() for process in self.processes)


RigFactory = Callable[..., Rig]


@pytest.fixture
def rig(
    kafka: LocalKafka, new_topic: TopicFactory, tmp_path: Path
) -> Iterator[RigFactory]:
    made: list[Rig] = []

    def make(behaviour: Behaviour | None = None, partitions: int = 4) -> Rig:
        behaviour = behaviour or Behaviour()
        topics = Topics(
            requests=new_topic(partitions, "requests"),
            results=new_topic(2, "results"),
            deadletter=new_topic(1, "deadletter"),
            audit=new_topic(1, "audit"),
        )
        simulator = SimulatorThread(behaviour).start()
        group = f"group-{uuid.uuid4().hex[:8]}"
        made.append(
            Rig(
                kafka.bootstrap_servers,
                topics,
                partitions,
                simulator,
                behaviour,
                group,
                tmp_path,
            )
        )
        return made[-1]

    yield make

    for each in made:
        for process in each.processes:
            process.kill()
        each.simulator.stop()
