"""Fixtures shared by both tiers: a real broker, fresh topics, the simulator."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from processor.localkafka import LocalKafka
from processor.simulator import Behaviour, SimulatorThread
from tests.support import CallbackGuard

TopicFactory = Callable[..., str]


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka]:
    """One real single-node Kafka for the whole session."""
    with LocalKafka(1) as cluster:
        yield cluster


@pytest.fixture
def bootstrap(kafka: LocalKafka) -> str:
    return kafka.bootstrap_servers


@pytest.fixture
def new_topic(kafka: LocalKafka) -> TopicFactory:
    """Creates a topic no other test uses and returns its name."""
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})

    def create(partitions: int = 1, prefix: str = "test") -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics([NewTopic(name, partitions, 1)])
        futures[name].result(timeout=30)
        return name

    return create


@pytest.fixture
def simulator() -> Iterator[SimulatorThread]:
    """The simulated CXone API with default rules and no latency."""
    with SimulatorThread(Behaviour()) as running:
        yield running


@pytest.fixture(autouse=True)
def callback_guard() -> Iterator[CallbackGuard]:
    """Fails the test if a guarded Kafka callback raised.

    librdkafka calls delivery and rebalance callbacks from inside poll() and
    flush(); an exception there can vanish, so tests wrap their callbacks with
    ``callback_guard.wrap`` and any error is reported here.
    """
    guard = CallbackGuard()
    yield guard
    guard.check()
