"""The local broker is a real Kafka: records go through it and come back."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, Message, Producer

from tests.conftest import TopicFactory
from tests.support import CallbackGuard


def consume_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append(message)
    finally:
        consumer.close()
    return received


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

    received = consume_all(bootstrap, topic, len(sent))

    assert failures == []
    assert {m.key(): m.value() for m in received} == {
        key.encode(): value for key, value in sent.items()
    }
    assert {m.partition() for m in received} == {0, 1, 2, 3}
