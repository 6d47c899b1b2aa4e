"""The local broker is a real Kafka: records go through it and come back."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from tests.conftest import TopicFactory
from tests.pipeline_support import read
from tests.support import CallbackGuard


def test_records_produced_with_acks_all_are_consumed_back(
    bootstrap: str, new_topic: TopicFactory, callback_guard: CallbackGuard
) -> None:
    topic = new_topic(partitions=4)
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True}
    )
    sent = {f"key-{i}": f"value-{i}".encode() for i in range(500)}
    for key, value in sent.items():
        producer.produce(topic, value, key, on_delivery=callback_guard.wrap(delivered))
    assert producer.flush(30) == 0

    received = read(bootstrap, topic, len(sent), settle=0)

    assert failures == []
    assert {m.key(): m.value() for m in received} == {
        key.encode(): value for key, value in sent.items()
    }
    assert {m.partition() for m in received} == {0, 1, 2, 3}
