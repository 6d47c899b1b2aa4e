"""The client secret and the access tokens stay out of everything written.

A run with tokens that last a second, a token endpoint outage, injected
faults and rejected jobs, logging at DEBUG and exporting spans over OTLP to
a local sink: neither the secret nor any token the simulator issued may
appear in the log, in results, dead letters or audit events (values and
headers), or in the raw bytes of the exported spans. A refused secret stops
the start without showing either the wrong secret or the right one.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Message

from processor.simulator import Behaviour, Latency
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import ProcessorProcess, request, wait_until
from tests.security.otlp_sink import OtlpSink

FIRST_BATCH = 150
SECOND_BATCH = 150
LAST_BATCH = 20
REJECTED = 3


def traced(world: Rig, sink: OtlpSink, **settings: str) -> ProcessorProcess:
    return world.start(
        PROCESSOR_LOG_LEVEL="DEBUG",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=sink.url,
        OTEL_BSP_SCHEDULE_DELAY="200",
        **settings,
    )


def valid_requests(start: int, stop: int) -> list[tuple[bytes, bytes]]:
    return [(f"k{i}".encode(), request(i)) for i in range(start, stop)]


def written(message: Message) -> bytes:
    """Everything a record carries: key, value, header names and values."""
    parts = [message.key() or b"", message.value() or b""]
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:
        text = value.encode() if isinstance(value, str) else value or b""
        parts += [name.encode(), text]
    return b"\n".join(parts)


def test_no_secret_or_token_reaches_logs_outputs_or_spans(rig: RigFactory) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    behaviour = Behaviour(
        client_secret=secret,
        token_lifetime_s=1,
        latency=Latency(10, 2),
        error_rate=0.05,
        seed=5,
        failing_actions={"action_c": 400},
    )
    world = rig(behaviour, partitions=2)
    total = FIRST_BATCH + SECOND_BATCH
    world.produce(valid_requests(0, FIRST_BATCH))

    with OtlpSink() as sink:
        process = traced(world, sink, PROCESSOR_MAX_IN_FLIGHT="4")
        assert wait_until(lambda: world.simulator.stats()["accepted"] >= 50, 60)
        world.simulator.start_outage(3.0, target="token")
        # The processor's token is stale a second later; the next batch has
        # to ask the failing token endpoint for a new one.
        time.sleep(1.0)
        world.produce(
            [
                *valid_requests(FIRST_BATCH, total),
                *((b"no", request(10_000 + i, "action_c")) for i in range(REJECTED)),
                (b"gone", request(20_000, "action_missing")),
                (b"bad", b"{"),
            ]
        )
        world.read("results", total, timeout=120, settle=0)
        # Idle past the token's lifetime once more: the last batch needs a
        # third token, however fast the rest went.
        time.sleep(1.2)
        world.produce(valid_requests(total, total + LAST_BATCH))
        total += LAST_BATCH
        outputs = [
            *world.read("results", total, timeout=60),
            *world.read("deadletter", REJECTED + 2),
            *world.read("audit", 2 * total, settle=2.0),
        ]
        code = process.stop()
        spans = b"\n".join(sink.received("/v1/traces"))

    stats = world.simulator.stats()
    tokens = world.simulator.issued_tokens()
    assert code == 0, process.log()[-2000:]
    assert stats["tokens_issued"] >= 3
    assert stats["token_failures"] >= 1
    assert stats["faults"] >= 1
    assert stats["failed_on_purpose"] == REJECTED
    assert len(tokens) == stats["tokens_issued"]
    # The sink did receive the run's spans, HTTP requests included.
    assert f"process {world.topics.requests}".encode() in spans
    assert b"POST /api/v2/data-actions/{id}/jobs" in spans
    assert '"level": "DEBUG"' in process.log()

    texts = {"log": process.log().encode(), "spans": spans}
    texts.update({f"{m.topic()}@{m.offset()}": written(m) for m in outputs})
    for where, text in texts.items():
        assert secret.encode() not in text, where
        assert not [token for token in tokens if token.encode() in text], where


def test_a_refused_secret_stops_the_start_and_shows_neither_secret(
    rig: RigFactory,
) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    world = rig(Behaviour(client_secret=secret), partitions=1)
    world.produce([(b"k", request(1))])

    with OtlpSink() as sink:
        process = traced(world, sink, CXONE_CLIENT_SECRET=wrong)
        assert wait_until(lambda: not process.running, timeout=60)
        code = process.stop()
        exported = b"\n".join(body for _, body in sink.bodies)

    log = process.log()
    last = log.strip().splitlines()[-1]
    stats = world.simulator.stats()
    assert code == 1
    assert last.startswith("cxone-processor run: CXone refused the client credentials")
    assert "CXONE_CLIENT_SECRET" in last
    assert stats["token_failures"] >= 1
    assert stats["tokens_issued"] == 0
    for text in (log.encode(), exported):
        assert wrong.encode() not in text
        assert secret.encode() not in text
