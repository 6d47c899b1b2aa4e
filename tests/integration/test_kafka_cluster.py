"""The three-node cluster keeps accepting acks=all writes with one node down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from processor.localkafka import LocalKafka
from tests.pipeline_support import read, wait_until
from tests.support import CallbackGuard


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalKafka]:
    with LocalKafka(3) as running:
        yield running


def test_one_node_down_still_takes_acks_all_writes_and_serves_every_record(
    cluster: LocalKafka, callback_guard: CallbackGuard
) -> None:
    bootstrap = cluster.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("replicated", 6)])["replicated"].result(timeout=30)
    # Every node learns of a new topic from the controller on its own time; a
    # request that reaches one that has not yet would fail for a reason that
    # has nothing to do with what this test is about.
    assert wait_until(lambda: known_to_every_node(cluster, "replicated", 6), 30)
    described = admin.describe_configs([ConfigResource("topic", "replicated")])
    config = next(iter(described.values())).result(timeout=30)
    partitions = (
        admin.list_topics("replicated", timeout=10).topics["replicated"].partitions
    )

    cluster.stop_node(2)
    down_while_writing = not cluster.nodes[2].running
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 60_000,
        }
    )
    for i in range(600):
        producer.produce(
            "replicated",
            f"v-{i}".encode(),
            f"k-{i}",
            on_delivery=callback_guard.wrap(delivered),
        )
    remaining = producer.flush(90)
    received = read(bootstrap, "replicated", 600, settle=0)
    down_while_reading = not cluster.nodes[2].running
    cluster.start_node(2)

    assert all(len(p.replicas) == 3 for p in partitions.values())
    assert config["min.insync.replicas"].value == "2"
    assert down_while_writing and down_while_reading
    assert remaining == 0
    assert failures == []
    assert sorted(m.value() or b"" for m in received) == sorted(
        f"v-{i}".encode() for i in range(600)
    )


def known_to_every_node(cluster: LocalKafka, topic: str, partitions: int) -> bool:
    for node in cluster.nodes:
        metadata = AdminClient({"bootstrap.servers": node.address}).list_topics(
            topic, timeout=10
        )
        known = metadata.topics[topic]
        if known.error is not None or len(known.partitions) != partitions:
            return False
        if any(p.leader < 0 for p in known.partitions.values()):
            return False
    return True


def test_a_stopped_node_rejoins_on_its_old_ports(cluster: LocalKafka) -> None:
    node = cluster.nodes[1]
    address = node.address

    cluster.stop_node(1)
    stopped = node.running
    cluster.start_node(1)
    brokers = (
        AdminClient({"bootstrap.servers": address}).list_topics(timeout=10).brokers
    )

    assert not stopped
    assert node.running
    assert node.address == address
    assert set(brokers) == {1, 2, 3}
