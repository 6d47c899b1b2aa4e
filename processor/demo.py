"""``cxone-processor demo``: the whole set-up on one machine, and one job through it.

It starts a local Kafka broker and the CXone simulator, publishes a job
request, reads it back from Kafka, submits it to the simulator the way the
processor does (OAuth token, ``Idempotency-Key``), and removes everything it
started on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from processor.errors import ProcessorError
from processor.localkafka import LocalKafka
from processor.simulator import Behaviour, Latency, SimulatorThread

REQUESTS_TOPIC = "cxone.jobs.requests"
_DEADLINE_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--action", default="action_123", help="action to submit the job to"
    )


def main(args: argparse.Namespace) -> int:
    print(
        "Starting a local Kafka broker (the first run fetches its jars with Maven)..."
    )
    behaviour = Behaviour(latency=Latency(mean_ms=20, jitter_ms=5))

    with LocalKafka(1) as kafka, SimulatorThread(behaviour) as simulator:
        print(f"  Kafka            {kafka.bootstrap_servers}")
        print(f"  CXone simulator  {simulator.url}")

        request = _job_request(args.action)
        partition, offset = _round_trip(kafka.bootstrap_servers, request)
        print(
            f"Published and read back {request['request_id']} at {REQUESTS_TOPIC}"
            f" [{partition}] @ {offset}"
        )

        job = _submit(simulator.url, behaviour, request)
        print(f"Submitted it to {args.action}: job {job['id']} is {job['status']}")

        counts = simulator.stats()
        print(
            f"Simulator counts: {counts['submissions']} submission(s), "
            f"{counts['accepted']} job(s) created, {counts['tokens_issued']} token(s)"
        )

    print("Stopped the broker and the simulator and removed their data.")
    _print_next_steps()
    return 0


def _job_request(action_id: str) -> dict[str, Any]:
    return {
        "request_id": f"demo-{int(time.time())}",
        "action_id": action_id,
        "input": {"sourceId": "src_456", "filter": "status='active'"},
        "options": {"async": True},
    }


def _round_trip(
    bootstrap: str, request: dict[str, Any]
) -> tuple[int | None, int | None]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(REQUESTS_TOPIC, 3)]).values():
        future.result(timeout=_DEADLINE_S)

    # log_level 3: a fresh broker makes the idempotent producer retry its id
    # request once ("coordinator load in progress"), which is not news.
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "log_level": 3}
    )
    producer.produce(
        REQUESTS_TOPIC, json.dumps(request).encode(), request["request_id"]
    )
    if producer.flush(_DEADLINE_S) != 0:
        raise ProcessorError("the local broker did not acknowledge the job request")

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "cxone-processor-demo",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([REQUESTS_TOPIC])
        deadline = time.monotonic() + _DEADLINE_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            return message.partition(), message.offset()
    finally:
        consumer.close()
    raise ProcessorError("the job request did not come back from the local broker")


def _submit(base_url: str, behaviour: Behaviour, request: dict[str, Any]) -> Any:
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        token = client.post(
            "/oauth/v2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": behaviour.client_id,
                "client_secret": behaviour.client_secret,
            },
        )
        token.raise_for_status()
        answer = client.post(
            f"/api/v2/data-actions/{request['action_id']}/jobs",
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "Idempotency-Key": request["request_id"],
            },
            json={"input": request["input"], "options": request["options"]},
        )
        answer.raise_for_status()
        return answer.json()


def _print_next_steps() -> None:
    print(
        "\nNext:\n"
        "  cxone-processor broker      keep a local Kafka running\n"
        "  cxone-processor simulate    serve the simulated CXone API "
        "(--help lists its limits and faults)\n"
        "  bash .ci/run                install everything and run the tests"
    )
