from __future__ import annotations

import httpx

from processor.actions import ActionCache
from processor.auth import TokenSource
from processor.breaker import Breaker
from processor.cxone import CxoneApi
from processor.flow import FlowControl
from processor.jobs import JobRequest
from processor.limiter import AdaptiveLimit
from processor.outcomes import Failed, Reason, Submitted
from processor.submitter import RetryPolicy, Submitter
from processor.throttle import Throttle
from tests.fakes import CXONE_BASE, FakeTime, cxone_settings

BASE = CXONE_BASE
SETTINGS = cxone_settings()
POLICY = RetryPolicy(max_attempts=3, initial_s=0.01, max_s=0.02)
REQUEST = JobRequest("req-42", "send-sms", {"to": "+15550100"}, {"async": True})
JOBS_PATH = "/api/v2/data-actions/send-sms/jobs"


class FakeCxone:
    """Token endpoint, ``GET`` action and scripted ``POST .../jobs`` answers."""

    def __init__(
        self, *posts: httpx.Response, action_status: str = "PUBLISHED"
    ) -> None:
        self.posts = list(posts)
        self.action_status = action_status
        self.tokens_issued = 0
        self.jobs: list[httpx.Request] = []
        self.action_reads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            self.tokens_issued += 1
            token = f"tok-{self.tokens_issued}"
            return httpx.Response(200, json={"access_token": token, "expires_in": 3600})
        if request.method == "GET":
            self.action_reads += 1
            return httpx.Response(200, json={"status": self.action_status})
        assert (request.method, request.url.path) == ("POST", JOBS_PATH)
        self.jobs.append(request)
        return self.posts.pop(0) if self.posts else accepted()


def accepted(job_id: str = "job-7") -> httpx.Response:
    return httpx.Response(202, json={"id": job_id, "status": "QUEUED"})


def status(code: int, **headers: str) -> httpx.Response:
    return httpx.Response(code, headers=headers, text=f"answer {code}")


class Harness:
    def __init__(self, cxone: FakeCxone) -> None:
        self.cxone = cxone
        self.time = FakeTime()
        self.retry_waits: list[float] = []
        self.retries: list[tuple[int, float, BaseException]] = []
        self.holds: list[float] = []
        transport = httpx.MockTransport(cxone)
        client = httpx.AsyncClient(transport=transport)
        tokens = TokenSource(client, SETTINGS, clock=self.time.clock)
        api = CxoneApi(transport, tokens, BASE)
        self.throttle = Throttle(clock=self.time.clock, sleep=self.time.sleep)
        self.throttle.on_hold.append(self.holds.append)
        self.breaker = Breaker(clock=self.time.clock)
        self.limit = AdaptiveLimit(8, clock=self.time.clock)
        flow = FlowControl(self.throttle, self.breaker, self.limit)
        self.submitter = Submitter(
            api,
            ActionCache(api, 60.0, clock=self.time.clock),
            flow,
            POLICY,
            sleep=self.record_wait,
            on_retry=self.record_retry,
        )

    async def record_wait(self, seconds: float) -> None:
        self.retry_waits.append(seconds)

    def record_retry(
        self, request: JobRequest, attempt: int, wait: float, error: BaseException
    ) -> None:
        assert request is REQUEST
        self.retries.append((attempt, wait, error))


async def submitted(*posts: httpx.Response) -> tuple[Submitted, Harness]:
    harness = Harness(FakeCxone(*posts))
    outcome = await harness.submitter.submit(REQUEST)
    assert isinstance(outcome, Submitted), outcome
    return outcome, harness


async def failed(cxone: FakeCxone) -> tuple[Failed, Harness]:
    harness = Harness(cxone)
    outcome = await harness.submitter.submit(REQUEST)
    assert isinstance(outcome, Failed), outcome
    return outcome, harness


async def test_a_job_is_submitted_at_the_first_attempt() -> None:
    outcome, harness = await submitted(accepted("job-1"))

    assert outcome.attempts == 1
    assert outcome.job.job_id == "job-1"
    assert outcome.job.http_status == 202
    assert harness.retries == []
    assert harness.retry_waits == []


async def test_the_request_carries_its_key_token_and_body() -> None:
    _, harness = await submitted()

    [post] = harness.cxone.jobs
    assert post.headers["Idempotency-Key"] == "req-42"
    assert post.headers["Authorization"] == "Bearer tok-1"
    assert post.content == REQUEST.body()


async def test_server_errors_are_retried_with_jittered_waits() -> None:
    outcome, harness = await submitted(status(503), status(503), accepted())

    assert outcome.attempts == 3
    assert [attempt for attempt, _, _ in harness.retries] == [1, 2]
    assert [wait for _, wait, _ in harness.retries] == harness.retry_waits
    assert len(harness.retry_waits) == 2
    assert all(0.0 <= wait <= POLICY.max_s for wait in harness.retry_waits)


async def test_retries_run_out() -> None:
    outcome, harness = await failed(FakeCxone(status(503), status(503), status(503)))

    assert outcome.reason == Reason.RETRIES_EXHAUSTED
    assert outcome.attempts == 3
    assert outcome.http_status == 503
    assert "gave up after 3 attempts" in outcome.error
    assert len(harness.cxone.jobs) == 3
    assert len(harness.retry_waits) == 2


async def test_a_rejected_job_fails_at_once_with_the_body() -> None:
    rejection = httpx.Response(400, json={"message": "input.to is required"})

    outcome, harness = await failed(FakeCxone(rejection))

    assert outcome.reason == Reason.REJECTED
    assert outcome.http_status == 400
    assert outcome.attempts == 1
    assert "input.to is required" in outcome.error
    assert len(harness.cxone.jobs) == 1
    assert harness.retry_waits == []


async def test_a_404_on_submit_is_an_unknown_action() -> None:
    outcome, _ = await failed(FakeCxone(status(404)))

    assert outcome.reason == Reason.UNKNOWN_ACTION
    assert outcome.http_status == 404


async def test_an_unpublished_action_gets_no_post() -> None:
    outcome, harness = await failed(FakeCxone(action_status="DRAFT"))

    assert outcome.reason == Reason.ACTION_NOT_PUBLISHED
    assert "DRAFT" in outcome.error
    assert harness.cxone.jobs == []


async def test_a_429_holds_the_throttle_and_spends_no_attempt() -> None:
    outcome, harness = await submitted(status(429, **{"Retry-After": "2"}))

    assert outcome.attempts == 1
    assert harness.holds == [2.0]
    assert harness.time.slept == [2.0]
    assert harness.time.now == 2.0
    assert harness.retries == []
    assert len(harness.cxone.jobs) == 2


async def test_a_401_fetches_a_new_token_and_spends_no_attempt() -> None:
    outcome, harness = await submitted(status(401))

    assert outcome.attempts == 1
    assert harness.cxone.tokens_issued == 2
    auth = [post.headers["Authorization"] for post in harness.cxone.jobs]
    assert auth == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_persistent_401_is_a_rejection() -> None:
    outcome, harness = await failed(FakeCxone(status(401), status(401), status(401)))

    assert outcome.reason == Reason.REJECTED
    assert outcome.http_status == 401
    assert "401" in outcome.error
    assert outcome.attempts == 1
    assert harness.cxone.tokens_issued == 3
