"""The simulator's HTTP server: aiohttp's low-level server around ``SimulatedApi``.

Routing matches the raw request target, query string included, against the
documented paths only. A percent-encoded, dotted or otherwise odd action id
is therefore never decoded into a valid one: it is an unknown path, and
counted as one.

Besides the API, ``/_simulator/`` serves the counts (``GET stats``), the
rules (``GET``/``POST config``), ``POST reset`` and ``POST outage``.

Given an ``ssl.SSLContext`` it serves HTTPS instead, so a client's certificate
checks can be proven against it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import threading
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from processor.simulator.api import Reply, SimulatedApi
from processor.simulator.behaviour import Behaviour, BehaviourError

log = logging.getLogger(__name__)

_ACTION_ID = r"([A-Za-z0-9][A-Za-z0-9_.-]{0,127})"
_ACTION_PATH = re.compile(rf"^/api/v2/data-actions/{_ACTION_ID}$")
_JOBS_PATH = re.compile(rf"^/api/v2/data-actions/{_ACTION_ID}/jobs$")
_TOKEN_PATH = "/oauth/v2/token"  # noqa: S105 - a path, not a password
_ADMIN_PREFIX = "/_simulator/"

T = TypeVar("T")


class Simulator:
    """The simulated CXone API served over HTTP on a loopback port."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.api = SimulatedApi(behaviour)
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self._runner: web.ServerRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen and return the base URL, such as ``http://127.0.0.1:41234``.

        The scheme is ``https`` when the simulator was given an SSL context.
        """
        server = web.Server(self._handle, access_log=None)
        self._runner = web.ServerRunner(server, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self._host,
            self._port,
            reuse_address=True,
            ssl_context=self._ssl_context,
        )
        await site.start()

        sockets = self._runner.addresses
        host, port = sockets[0][0], sockets[0][1]
        scheme = "http" if self._ssl_context is None else "https"
        self.url = f"{scheme}://{host}:{port}"
        log.info("simulator listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        target = request.raw_path
        if target.startswith(_ADMIN_PREFIX):
            return await self._admin(request, target[len(_ADMIN_PREFIX) :])

        match = _JOBS_PATH.match(target)
        if match and request.method == "POST":
            return await self._submit_job(request, match.group(1))

        reply = await self._route(request, target)
        return _respond(reply)

    async def _route(self, request: web.BaseRequest, target: str) -> Reply:
        api = self.api
        if target == _TOKEN_PATH and request.method == "POST":
            form = await request.post()
            return api.issue_token({key: str(value) for key, value in form.items()})

        match = _ACTION_PATH.match(target)
        authorization = request.headers.get("Authorization")
        if match and request.method == "GET":
            return api.read_action(authorization, match.group(1))
        if match and request.method == "PATCH":
            return api.patch_action(authorization, match.group(1), await request.read())
        return api.unknown_request()

    async def _submit_job(
        self, request: web.BaseRequest, action_id: str
    ) -> web.StreamResponse:
        body = await request.read()
        headers = request.headers
        reply = self.api.begin_job(
            headers.get("Authorization"),
            action_id,
            headers.get("Idempotency-Key"),
            body,
        )
        try:
            if reply.delay_s > 0:
                await asyncio.sleep(reply.delay_s)
            return _respond(reply)
        finally:
            self.api.end_job(action_id, reply, headers.get("Idempotency-Key"))

    async def _admin(self, request: web.BaseRequest, name: str) -> web.StreamResponse:
        handlers = {
            ("GET", "stats"): self._stats,
            ("GET", "config"): self._config,
            ("GET", "timeline"): self._timeline,
            ("POST", "config"): self._reconfigure,
            ("POST", "reset"): self._reset,
            ("POST", "outage"): self._outage,
        }
        handler = handlers.get((request.method, name))
        if handler is None:
            return _json(404, {"error": "not_found"})

        try:
            return _json(200, await handler(request))
        except (BehaviourError, ValueError, KeyError, TypeError) as exc:
            return _json(400, {"error": "invalid_request", "message": str(exc)})

    async def _stats(self, _request: web.BaseRequest) -> dict[str, Any]:
        return self.api.stats()

    async def _timeline(self, _request: web.BaseRequest) -> dict[str, Any]:
        return {"timeline": list(self.api.timeline)}

    async def _config(self, _request: web.BaseRequest) -> dict[str, Any]:
        return self.api.behaviour.describe()

    async def _reconfigure(self, request: web.BaseRequest) -> dict[str, Any]:
        changes = await request.json()
        self.api.configure(self.api.behaviour.changed(changes))
        log.info("simulator behaviour changed: %s", ", ".join(sorted(changes)))
        return self.api.behaviour.describe()

    async def _reset(self, _request: web.BaseRequest) -> dict[str, Any]:
        self.api.reset()
        return self.api.stats()

    async def _outage(self, request: web.BaseRequest) -> dict[str, Any]:
        order = await request.json()
        duration_s = float(order["duration_s"])
        target = str(order.get("target", "api"))
        self.api.start_outage(duration_s, target)
        log.info("simulator outage of %s for %.1f s started", target, duration_s)
        return {"outage": {"target": target, "duration_s": duration_s}}


class SimulatorThread:
    """A ``Simulator`` on its own event loop in a background thread.

    For synchronous callers (tests, the demo): every method is safe to call
    from any thread, and reads the API's state on the simulator's own loop.
    """

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.simulator = Simulator(behaviour, port=port, ssl_context=ssl_context)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="cxone-simulator", daemon=True
        )

    @property
    def url(self) -> str:
        return self.simulator.url

    def start(self) -> SimulatorThread:
        self._thread.start()
        self._call(self.simulator.start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self.simulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def stats(self) -> dict[str, Any]:
        return self._call(_run(self.simulator.api.stats))

    def timeline(self) -> list[tuple[str, str, float]]:
        """Accepted submissions: ("in" | "out", Idempotency-Key, monotonic time)."""
        return self._call(_run(lambda: list(self.simulator.api.timeline)))

    def issued_tokens(self) -> list[str]:
        """The access tokens handed out so far (the latest ten thousand)."""
        return self._call(_run(lambda: list(self.simulator.api.issued_tokens)))

    def configure(self, **changes: Any) -> None:
        api = self.simulator.api
        self._call(_run(lambda: api.configure(api.behaviour.changed(changes))))

    def start_outage(self, duration_s: float, target: str = "api") -> None:
        api = self.simulator.api
        self._call(_run(lambda: api.start_outage(duration_s, target)))

    def reset(self) -> None:
        self._call(_run(self.simulator.api.reset))

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, coroutine: Awaitable[T]) -> T:
        future = asyncio.run_coroutine_threadsafe(_awaited(coroutine), self._loop)
        return future.result(timeout=30)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _run(function: Callable[[], T]) -> T:
    return function()


def _respond(reply: Reply) -> web.Response:
    return _json(reply.status, reply.body, reply.headers)


def _json(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers=headers,
        content_type="application/json",
    )
