from __future__ import annotations

import asyncio

import httpx
import pytest

from processor.actions import ActionCache
from processor.auth import TokenSource
from processor.cxone import CxoneApi
from processor.errors import RejectedError, RetryableApiError
from tests.fakes import CXONE_BASE, FakeTime, cxone_settings

BASE = CXONE_BASE
SETTINGS = cxone_settings()
TTL = 60.0


class FakeCxone:
    """The token endpoint and ``GET`` of actions, with scripted answers."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.statuses: dict[str, str] = {"send-sms": "PUBLISHED"}
        self.scripted: list[httpx.Response] = []
        self.reads: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        assert request.method == "GET"
        assert request.headers["Authorization"] == "Bearer tok"
        action_id = request.url.path.removeprefix("/api/v2/data-actions/")
        self.reads.append(action_id)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.scripted:
            return self.scripted.pop(0)
        if action_id not in self.statuses:
            return httpx.Response(404, json={"error": "not found"})
        return httpx.Response(
            200, json={"id": action_id, "status": self.statuses[action_id]}
        )


def cache_over(cxone: FakeCxone, clock: FakeTime) -> ActionCache:
    transport = httpx.MockTransport(cxone)
    client = httpx.AsyncClient(transport=transport)
    api = CxoneApi(transport, TokenSource(client, SETTINGS, clock=clock), BASE)
    return ActionCache(api, TTL, clock=clock)


async def test_a_status_is_cached_for_the_ttl_then_read_again() -> None:
    cxone, clock = FakeCxone(), FakeTime()
    cache = cache_over(cxone, clock)

    first = await cache.status("send-sms")
    cxone.statuses["send-sms"] = "DRAFT"
    clock.now = TTL - 0.1
    cached = await cache.status("send-sms")
    clock.now = TTL
    fresh = await cache.status("send-sms")

    assert (first.status, cached.status, fresh.status) == (
        "PUBLISHED",
        "PUBLISHED",
        "DRAFT",
    )
    assert first.known
    assert cxone.reads == ["send-sms", "send-sms"]


async def test_actions_are_cached_separately() -> None:
    cxone, clock = FakeCxone(), FakeTime()
    cxone.statuses["other"] = "DRAFT"
    cache = cache_over(cxone, clock)

    assert (await cache.status("send-sms")).status == "PUBLISHED"
    assert (await cache.status("other")).status == "DRAFT"
    assert cxone.reads == ["send-sms", "other"]


async def test_concurrent_look_ups_of_one_action_make_one_get() -> None:
    cxone = FakeCxone(delay=0.01)
    cache = cache_over(cxone, FakeTime())

    answers = await asyncio.gather(*(cache.status("send-sms") for _ in range(50)))

    assert {answer.status for answer in answers} == {"PUBLISHED"}
    assert cxone.reads == ["send-sms"]


async def test_an_unknown_action_is_remembered_as_unknown() -> None:
    cxone = FakeCxone()
    cache = cache_over(cxone, FakeTime())

    first = await cache.status("missing")
    second = await cache.status("missing")

    assert not first.known
    assert first.status is None
    assert second == first
    assert cxone.reads == ["missing"]


async def test_a_server_error_is_raised_and_not_cached() -> None:
    cxone = FakeCxone()
    cxone.scripted.append(httpx.Response(503, text="down for maintenance"))
    cache = cache_over(cxone, FakeTime())

    with pytest.raises(RetryableApiError) as caught:
        await cache.status("send-sms")
    assert caught.value.status == 503
    assert caught.value.body == "down for maintenance"

    assert (await cache.status("send-sms")).status == "PUBLISHED"
    assert cxone.reads == ["send-sms", "send-sms"]


async def test_concurrent_callers_all_see_a_failed_read() -> None:
    cxone = FakeCxone(delay=0.01)
    cxone.scripted.append(httpx.Response(503))
    cache = cache_over(cxone, FakeTime())

    results = await asyncio.gather(
        *(cache.status("send-sms") for _ in range(5)), return_exceptions=True
    )

    assert all(isinstance(result, RetryableApiError) for result in results)
    assert cxone.reads == ["send-sms"]


async def test_other_client_errors_are_rejections_and_not_cached() -> None:
    cxone = FakeCxone()
    cxone.scripted.append(httpx.Response(403, text="forbidden"))
    cache = cache_over(cxone, FakeTime())

    with pytest.raises(RejectedError) as caught:
        await cache.status("send-sms")

    assert caught.value.status == 403
    assert (await cache.status("send-sms")).known


async def test_an_answer_without_a_status_is_retryable() -> None:
    cxone = FakeCxone()
    cxone.scripted.append(httpx.Response(200, json={"id": "send-sms"}))
    cache = cache_over(cxone, FakeTime())

    with pytest.raises(RetryableApiError, match="no status"):
        await cache.status("send-sms")


async def test_a_cancelled_reader_does_not_strand_the_others() -> None:
    cxone = FakeCxone(delay=0.01)
    cache = cache_over(cxone, FakeTime())
    first = asyncio.create_task(cache.status("send-sms"))
    await asyncio.sleep(0)  # let it start the read
    waiter = asyncio.create_task(cache.status("send-sms"))
    await asyncio.sleep(0)

    first.cancel()

    assert (await waiter).status == "PUBLISHED"
    assert first.cancelled()
