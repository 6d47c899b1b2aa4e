"""Reliability scenarios: real processes against real servers, marked ``integration``.

They reuse the integration tier's ``rig`` (topics on the session's broker, a
simulator, processor subprocesses); scenarios that take a broker down get a
``LocalKafka`` of their own through ``rig_on``, so no other test is disturbed.
``RELIABILITY_SOAK=1`` runs the long form (see ``support.SOAK``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from processor.localkafka import LocalKafka
from processor.simulator import Behaviour, SimulatorThread

# The integration tier's fixture, shared rather than copied.
from tests.integration.conftest import Rig, rig  # noqa: F401 - a fixture
from tests.pipeline_support import Topics
from tests.reliability.support import TEST_TIMEOUT_S, create_topics

RigOn = Callable[[LocalKafka, Behaviour, int], Rig]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


@pytest.fixture
def rig_on(tmp_path: Path) -> Iterator[RigOn]:
    """Like ``rig``, on a cluster the test started itself."""
    made: list[Rig] = []

    def make(cluster: LocalKafka, behaviour: Behaviour, partitions: int) -> Rig:
        names = create_topics(cluster, partitions)
        simulator = SimulatorThread(behaviour).start()
        made.append(
            Rig(
                cluster.bootstrap_servers,
                Topics(**names),
                partitions,
                simulator,
                behaviour,
                f"group-{uuid.uuid4().hex[:8]}",
                tmp_path,
            )
        )
        return made[-1]

    yield make

    for each in made:
        for process in each.processes:
            process.kill()
        each.simulator.stop()
