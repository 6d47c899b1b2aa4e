from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from urllib.parse import parse_qs

import httpx
import pytest

from processor.auth import TokenSource
from processor.errors import AuthenticationError, RetryableApiError
from processor.settings import DEFAULT_SCOPE
from tests.fakes import FakeTime, cxone_settings

SETTINGS = cxone_settings()
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


class TokenEndpoint:
    """Issues tok-1, tok-2, ... unless an answer is scripted."""

    def __init__(self, expires_in: float = 100.0, delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.delay = delay
        self.requests: list[httpx.Request] = []
        self.scripted: list[httpx.Response] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.scripted:
            return self.scripted.pop(0)
        token = f"tok-{len(self.requests)}"
        return httpx.Response(
            200, json={"access_token": token, "expires_in": self.expires_in}
        )


def source(handler: Handler, clock: FakeTime | None = None) -> TokenSource:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return TokenSource(client, SETTINGS, clock=clock or FakeTime())


async def test_the_client_credentials_form_is_sent() -> None:
    endpoint = TokenEndpoint()

    assert await source(endpoint).token() == "tok-1"

    [request] = endpoint.requests
    assert request.method == "POST"
    assert str(request.url) == "http://cxone.test/oauth/v2/token"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["id"],
        "client_secret": ["top-secret"],
        "scope": [DEFAULT_SCOPE],
    }


async def test_the_token_is_reused_then_refreshed_a_fifth_early() -> None:
    endpoint, clock = TokenEndpoint(expires_in=100), FakeTime()
    tokens = source(endpoint, clock)

    assert await tokens.token() == "tok-1"
    clock.now = 79.9
    assert await tokens.token() == "tok-1"
    assert len(endpoint.requests) == 1

    clock.now = 80.0
    assert await tokens.token() == "tok-2"
    assert tokens.refreshes == 2


async def test_a_long_lived_token_is_refreshed_at_most_a_minute_early() -> None:
    endpoint, clock = TokenEndpoint(expires_in=3600), FakeTime()
    tokens = source(endpoint, clock)
    await tokens.token()

    clock.now = 3539.0
    assert await tokens.token() == "tok-1"
    clock.now = 3540.0
    assert await tokens.token() == "tok-2"


async def test_concurrent_callers_share_one_request() -> None:
    endpoint = TokenEndpoint(delay=0.01)
    tokens = source(endpoint)

    got = await asyncio.gather(*(tokens.token() for _ in range(50)))

    assert set(got) == {"tok-1"}
    assert len(endpoint.requests) == 1


async def test_invalidate_forces_a_new_token_only_for_the_current_one() -> None:
    endpoint, clock = TokenEndpoint(expires_in=100), FakeTime()
    tokens = source(endpoint, clock)
    first = await tokens.token()

    tokens.invalidate(first)
    second = await tokens.token()
    assert second == "tok-2"

    tokens.invalidate(first)  # a late 401 for the token already replaced
    assert await tokens.token() == second
    assert len(endpoint.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_refused_credentials_are_an_authentication_error(status: int) -> None:
    endpoint = TokenEndpoint()
    tokens = source(endpoint)
    old = await tokens.token()
    tokens.invalidate(old)
    endpoint.scripted.append(
        httpx.Response(
            status,
            json={
                "error": "top-secret",
                "error_description": f"bad secret top-secret for {old}",
            },
        )
    )

    with pytest.raises(AuthenticationError) as caught:
        await tokens.token()

    message = str(caught.value)
    assert caught.value.status == status
    assert str(status) in message
    assert "CXONE_CLIENT_SECRET" in message
    assert "top-secret" not in message
    assert old not in message


async def test_the_standard_oauth_error_code_is_shown() -> None:
    endpoint = TokenEndpoint()
    endpoint.scripted.append(httpx.Response(401, json={"error": "invalid_client"}))

    with pytest.raises(AuthenticationError, match="invalid_client"):
        await source(endpoint).token()


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_server_trouble_is_retryable(status: int) -> None:
    endpoint = TokenEndpoint()
    endpoint.scripted.append(httpx.Response(status, text="busy"))
    tokens = source(endpoint)

    with pytest.raises(RetryableApiError) as caught:
        await tokens.token()

    assert caught.value.status == status
    assert await tokens.token() == "tok-2"  # nothing bad was cached


async def test_a_connection_error_is_retryable() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RetryableApiError, match="unreachable"):
        await source(refuse).token()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"token_type": "bearer", "expires_in": 100}),
        httpx.Response(200, json={"access_token": "", "expires_in": 100}),
        httpx.Response(200, json={"access_token": "t", "expires_in": 0}),
        httpx.Response(200, json={"access_token": "t", "expires_in": "soon"}),
        httpx.Response(200, text="<html>ok</html>"),
        httpx.Response(200, json=["tok"]),
    ],
)
async def test_a_200_without_a_usable_token_is_retryable(
    answer: httpx.Response,
) -> None:
    endpoint = TokenEndpoint()
    endpoint.scripted.append(answer)

    with pytest.raises(RetryableApiError, match="without a usable token"):
        await source(endpoint).token()
