"""What the processor is measured against besides the API's limits.

- The bare Kafka pipe: the same consume, decode, encode and produce, with no
  HTTP call, in one loop: the most the Kafka side could give.
- The bare HTTP client: the processor's own client stack (httpx on its
  aiohttp transport) posting jobs at the same concurrency, with no Kafka.
- A naive peer: consume one record, post it, produce its result, commit, the
  way a first script would.
- An OTLP sink: where spans and metrics go when telemetry is on, so their
  export is paid for as it would be against a real collector.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from confluent_kafka import Consumer, Producer

from bench.world import CLIENT, Topics
from processor import schemas
from processor.transport import AiohttpTransport

_POLL_BATCH = 500
_DEADLINE_S = 300.0


def _result(record_value: bytes, codec: schemas.SingleObjectCodec) -> bytes:
    request = json.loads(record_value)
    return codec.encode(
        {
            "request_id": request["request_id"],
            "action_id": request["action_id"],
            "job_id": "job_0",
            "job_status": "QUEUED",
            "http_status": 202,
            "attempts": 1,
            "latency_ms": 0.0,
            "source_topic": "requests",
            "source_partition": 0,
            "source_offset": 0,
            "completed_at": int(time.time() * 1000),
            "job_created_at": None,
            "instance_id": "bench",
        }
    )


def bare_pipe(bootstrap: str, topics: Topics, count: int) -> float:
    """Records per second through consume, decode, encode, produce and commit."""
    codec = schemas.SingleObjectCodec(schemas.load("job_result"))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-pipe-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    consumer.subscribe([topics.requests])
    done, started = 0, 0.0
    deadline = time.monotonic() + _DEADLINE_S
    try:
        while done < count and time.monotonic() < deadline:
            messages = consumer.consume(_POLL_BATCH, timeout=0.5)
            if messages and not started:
                started = time.perf_counter()
            for message in messages:
                if message.error():
                    continue
                value = _result(message.value() or b"{}", codec)
                producer.produce(topics.results, value, message.key())
                done += 1
            producer.poll(0)
            if messages:
                consumer.commit(asynchronous=True)
        producer.flush(60)
        return done / (time.perf_counter() - started) if started else 0.0
    finally:
        consumer.close()


def bare_http(url: str, concurrency: int, seconds: float) -> float:
    """Jobs per second the processor's HTTP stack alone gets from the simulator."""
    return asyncio.run(_post_for(url, concurrency, seconds))


async def _post_for(url: str, concurrency: int, seconds: float) -> float:
    transport = AiohttpTransport(max_connections=concurrency)
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        token = await _token(client, url)
        headers = {"Authorization": f"Bearer {token}"}
        jobs = f"{url}/api/v2/data-actions/action_a/jobs"
        body = {"input": {"n": 1}, "options": {"async": True}}
        done = 0
        stop_at = time.monotonic() + seconds

        async def worker(name: int) -> None:
            nonlocal done
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                key = {"Idempotency-Key": f"w{name}-{n}"}
                answer = await client.post(jobs, json=body, headers=headers | key)
                if answer.status_code < 300:
                    done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / (time.perf_counter() - started)


async def _token(client: httpx.AsyncClient, url: str) -> str:
    answer = await client.post(
        f"{url}/oauth/v2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT["CXONE_CLIENT_ID"],
            "client_secret": CLIENT["CXONE_CLIENT_SECRET"],
            "scope": "data-actions:read data-actions:write data-actions:execute",
        },
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def naive(bootstrap: str, topics: Topics, url: str, seconds: float) -> float:
    """Jobs per second of consume, post, produce, commit: one job at a time."""
    codec = schemas.SingleObjectCodec(schemas.load("job_result"))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-naive-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    consumer.subscribe([topics.requests])
    done = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        token = client.post(
            "/oauth/v2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT["CXONE_CLIENT_ID"],
                "client_secret": CLIENT["CXONE_CLIENT_SECRET"],
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = 0.0
        stop_at = time.monotonic() + _DEADLINE_S
        while time.monotonic() < stop_at:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if not started:
                started = time.perf_counter()
                stop_at = time.monotonic() + seconds
            request = json.loads(message.value() or b"{}")
            client.post(
                f"/api/v2/data-actions/{request['action_id']}/jobs",
                json={"input": request["input"], "options": {"async": True}},
                headers=headers | {"Idempotency-Key": request["request_id"]},
            )
            producer.produce(topics.results, _result(message.value() or b"{}", codec))
            producer.flush(10)
            consumer.commit(message=message, asynchronous=False)
            done += 1
    consumer.close()
    return done / (time.perf_counter() - started) if started else 0.0


class _Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return  # one line per export would drown the bench's own output


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint on loopback that accepts and drops everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
