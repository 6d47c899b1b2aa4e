"""Kafka with SASL/SCRAM-SHA-256: the processor logs in, or says it cannot.

A broker of its own for this module, whose SASL_PLAINTEXT listener takes
SCRAM logins. The processor is given that listener only, with
``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_MECHANISMS``, ``KAFKA_SASL_USERNAME``
and ``KAFKA_SASL_PASSWORD``; the test itself uses the broker's plain listener
to set up topics and read the outputs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from processor.localkafka import LocalKafka
from processor.simulator import Behaviour, SimulatorThread
from tests.pipeline_support import (
    ProcessorProcess,
    Topics,
    by_request_id,
    processor_env,
    produce,
    read,
    request,
    wait_until,
)

USER = "cxone-processor"
PASSWORD = f"kafka-{uuid.uuid4().hex}"
JOBS = 20


@pytest.fixture(scope="module")
def sasl_kafka() -> Iterator[LocalKafka]:
    with LocalKafka(1, sasl_users={USER: PASSWORD}) as cluster:
        yield cluster


@pytest.fixture
def topics(sasl_kafka: LocalKafka) -> Topics:
    admin = AdminClient({"bootstrap.servers": sasl_kafka.bootstrap_servers})
    suffix = uuid.uuid4().hex[:8]
    made = Topics(
        *(f"{kind}.{suffix}" for kind in ("requests", "results", "dead", "audit"))
    )
    futures = admin.create_topics(
        [NewTopic(name, 1, 1) for name in vars(made).values()]
    )
    for future in futures.values():
        future.result(timeout=30)
    return made


def sasl_processor(
    kafka: LocalKafka,
    simulator: SimulatorThread,
    topics: Topics,
    password: str,
    log_path: Path,
) -> ProcessorProcess:
    env = processor_env(
        kafka.sasl_bootstrap_servers,
        simulator.url,
        topics,
        simulator.simulator.api.behaviour,
        f"group-{uuid.uuid4().hex[:8]}",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISMS="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME=USER,
        KAFKA_SASL_PASSWORD=password,
        PROCESSOR_LOG_LEVEL="DEBUG",
    )
    return ProcessorProcess(env, log_path).start()


def test_the_processor_works_through_a_scram_listener(
    sasl_kafka: LocalKafka, topics: Topics, tmp_path: Path
) -> None:
    plain = sasl_kafka.bootstrap_servers
    produce(
        plain, topics.requests, ((f"k{i}".encode(), request(i)) for i in range(JOBS))
    )

    with SimulatorThread(Behaviour()) as simulator:
        process = sasl_processor(
            sasl_kafka, simulator, topics, PASSWORD, tmp_path / "processor.log"
        )
        try:
            results = dict(by_request_id(read(plain, topics.results, JOBS), "results"))
        finally:
            code = process.stop()

    assert code == 0, process.log()[-2000:]
    assert sorted(results) == [f"r-{i:06d}" for i in range(JOBS)]
    assert PASSWORD not in process.log()


def test_wrong_kafka_credentials_stop_the_start_with_one_line_naming_them(
    sasl_kafka: LocalKafka, topics: Topics, tmp_path: Path
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"

    with SimulatorThread(Behaviour()) as simulator:
        process = sasl_processor(
            sasl_kafka, simulator, topics, wrong, tmp_path / "processor.log"
        )
        try:
            exited = wait_until(lambda: not process.running, timeout=60)
        finally:
            code = process.stop()

    log = process.log()
    last = log.strip().splitlines()[-1]
    assert exited
    assert code == 1
    assert last.startswith("cxone-processor run: ")
    assert "authentication" in last.lower(), last
    assert wrong not in log
    assert PASSWORD not in log
