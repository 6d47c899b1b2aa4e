"""An httpx transport on aiohttp's connection pool.

httpx's own async pool spends milliseconds of CPU per request once dozens are
in flight, and more as concurrency grows; aiohttp's stays near a tenth of a
millisecond. The processor speaks httpx everywhere; only the bytes go through
aiohttp. aiohttp's errors are translated to httpx's here, at the edge, so
callers catch ``httpx.TimeoutException`` and ``httpx.TransportError`` as with
any httpx transport.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import httpx
from yarl import URL

# One URL per action, plus the token endpoint: a few hundred in practice.
_MAX_CACHED_URLS = 1024


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one ``aiohttp.ClientSession``."""

    def __init__(
        self, *, max_connections: int, verify: ssl.SSLContext | bool = True
    ) -> None:
        self._max_connections = max_connections
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None
        # httpx URLs are parsed once per distinct URL, not once per request.
        self._urls: dict[str, URL] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        url = self._url(request.url)
        timeout = _timeout(request.extensions.get("timeout"))
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
        ]

        try:
            async with session.request(
                request.method,
                url,
                headers=headers,
                data=request.content,
                timeout=timeout,
                allow_redirects=False,
                auto_decompress=True,
            ) as answer:
                content = await answer.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(
                str(exc) or type(exc).__name__, request=request
            ) from exc

        return httpx.Response(
            answer.status, headers=answer.raw_headers, content=content, request=request
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ssl=self._verify, enable_cleanup_closed=True
        )
        # No default headers: httpx has already set the ones the request needs.
        # No cookie jar either: the API sets none, and a jar is consulted on
        # every request and every answer.
        self._session = aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=("User-Agent",),
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    def _url(self, url: httpx.URL) -> URL:
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            if len(self._urls) >= _MAX_CACHED_URLS:
                self._urls.clear()
            parsed = self._urls[text] = URL(text, encoded=True)
        return parsed


def _timeout(spec: Any) -> aiohttp.ClientTimeout:
    spec = spec or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=spec.get("connect"),
        sock_read=spec.get("read"),
    )
