"""What the demo sends, and the API it sends it to.

Most requests are valid jobs for three published actions. A few must end as
dead letters, one per way a request can fail before CXone creates a job:
broken or incomplete JSON and action ids that try to leave the URL path
(``INVALID_REQUEST``), jobs for a DRAFT action (``ACTION_NOT_PUBLISHED``) and
for an action CXone does not know (``UNKNOWN_ACTION``). The simulated API
throttles at 300 jobs/s, answers in 30 to 50 ms, fails 2% of submissions and
has two short outages on the way.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from processor.errors import ProcessorError
from processor.settings import Settings
from processor.simulator import Behaviour, Latency, SimulatorThread

PUBLISHED_ACTIONS = ("action_a", "action_b", "action_c")
DRAFT_ACTION = "action_draft"  # DRAFT among the simulator's default actions
UNKNOWN_ACTION = "action_retired"  # not among them: CXone answers 404
MIN_JOBS = 50

# What each planned request should end as: "result" or a dead-letter reason.
RESULT = "result"

_KAFKA_TIMEOUT_S = 30.0
_CUSTOMERS = 100

# Requests that must never reach the API, each with the reason the processor
# should give. Their keys and values come back unchanged in the dead letters.
_BROKEN: tuple[bytes, ...] = (
    b'{"request_id": "demo-bad-1", "action_id": "action_a", "input": {',
    b"\xff\xfe not even UTF-8",
    b'["an", "array", "not", "an", "object"]',
    b'{"action_id": "action_a", "input": {"sourceId": "no request_id"}}',
    b'{"request_id": "demo-bad-5", "action_id": "action_a"}',
    b'{"request_id": "demo-bad-6", "action_id": "../admin", "input": {}}',
    b'{"request_id": "demo-bad-7", "action_id": "action_a/../../oauth", "input": {}}',
    b'{"request_id": "demo-bad-8", "action_id": "%2e%2e%2fadmin", "input": {}}',
)


@dataclass(frozen=True)
class Outage:
    """An API outage started once this share of the requests has an output."""

    at_share: float
    duration_s: float


OUTAGES = (Outage(0.3, 3.0), Outage(0.65, 2.0))


def simulated_api() -> Behaviour:
    """CXone as the demo shows it: throttling, slow-ish, a little faulty."""
    return Behaviour(
        rate_limit_per_s=300,
        latency=Latency(mean_ms=40, jitter_ms=10, distribution="uniform"),
        error_rate=0.02,
    )


@dataclass(frozen=True)
class Workload:
    """The requests to produce, in order, and what each should end as."""

    records: list[tuple[bytes, bytes]]
    outcomes: list[str]

    @property
    def size(self) -> int:
        return len(self.records)

    @property
    def expected(self) -> Counter[str]:
        return Counter(self.outcomes)


def workload(jobs: int, seed: int = 2026) -> Workload:
    """``jobs`` keyed requests, a few of them bad, shuffled."""
    rng = random.Random(seed)
    drafts = max(5, jobs // 100)
    unknown = max(3, jobs // 300)
    valid = jobs - len(_BROKEN) - drafts - unknown

    planned: list[tuple[str, bytes]] = [("INVALID_REQUEST", value) for value in _BROKEN]
    actions = [
        *(("ACTION_NOT_PUBLISHED", DRAFT_ACTION) for _ in range(drafts)),
        *(("UNKNOWN_ACTION", UNKNOWN_ACTION) for _ in range(unknown)),
        *((RESULT, rng.choice(PUBLISHED_ACTIONS)) for _ in range(valid)),
    ]
    planned += [
        (outcome, _job(i, action)) for i, (outcome, action) in enumerate(actions)
    ]
    rng.shuffle(planned)

    records = [(_customer(rng), value) for _, value in planned]
    return Workload(records, [outcome for outcome, _ in planned])


def create_topics(settings: Settings, partitions: dict[str, int]) -> None:
    """The four topics, on a broker that has none of them yet."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = {
        "requests": settings.requests_topic,
        "results": settings.results_topic,
        "deadletter": settings.deadletter_topic,
        "audit": settings.audit_topic,
    }
    wanted = [NewTopic(names[kind], count, 1) for kind, count in partitions.items()]
    try:
        for future in admin.create_topics(wanted).values():
            future.result(timeout=_KAFKA_TIMEOUT_S)
    except KafkaException as exc:
        raise ProcessorError(f"cannot create the demo's topics: {exc}") from None


def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    """Every record on the requests topic, acknowledged, or ProcessorError."""
    # log_level 3: a fresh broker makes the idempotent producer retry its id
    # request once ("coordinator load in progress"), which is not news.
    producer = Producer(
        settings.producer_config(
            **{"enable.idempotence": True, "linger.ms": 20, "log_level": 3}
        )
    )
    for key, value in records:
        _produce_one(producer, settings.requests_topic, key, value)
    left = producer.flush(_KAFKA_TIMEOUT_S)
    if left:
        raise ProcessorError(
            f"the local broker did not acknowledge {left} of the job requests"
        )


def _produce_one(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    deadline = time.monotonic() + _KAFKA_TIMEOUT_S
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            # librdkafka's queue is full: let it send some first.
            if time.monotonic() > deadline:
                raise ProcessorError(
                    "the local broker stopped taking requests"
                ) from None
            producer.poll(0.1)


def _job(i: int, action_id: str) -> bytes:
    request = {
        "request_id": f"demo-{i:06d}",
        "action_id": action_id,
        "input": {"sourceId": f"src_{i}", "filter": "status='active'"},
        "options": {"async": True},
    }
    return json.dumps(request).encode()


def _customer(rng: random.Random) -> bytes:
    return f"customer-{rng.randrange(_CUSTOMERS):03d}".encode()


class OutageSchedule:
    """Starts the ``OUTAGES`` on the simulator as the outputs reach each share."""

    def __init__(self, simulator: SimulatorThread, jobs: int) -> None:
        self._simulator = simulator
        self._pending = [(outage.at_share * jobs, outage) for outage in OUTAGES]
        self._ends = 0.0
        self.started = 0

    @property
    def active(self) -> bool:
        return time.monotonic() < self._ends

    def advance(self, outputs: int) -> None:
        while self._pending and outputs >= self._pending[0][0]:
            _, outage = self._pending.pop(0)
            self._simulator.start_outage(outage.duration_s)
            self._ends = time.monotonic() + outage.duration_s
            self.started += 1
