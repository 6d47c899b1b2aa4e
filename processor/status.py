"""The processor's HTTP port: Prometheus metrics and health.

- ``GET /metrics``: the metrics in Prometheus' text format (when the
  ``prometheus`` reader is on, which it is by default).
- ``GET /health/live``: 200 while the event loop answers and the Kafka
  consumer thread runs; 503 when the consumer is gone.
- ``GET /health/ready``: 200 when the instance has joined its consumer
  group, its producer is healthy and the circuit breaker is closed; 503
  otherwise. Both answer a JSON object with each check by name.

The port is ``PROCESSOR_HTTP_PORT`` on ``PROCESSOR_HTTP_HOST``. A port that
cannot be bound is logged and the processor goes on without it: its jobs
matter more than its metrics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Checks = Callable[[], Mapping[str, bool]]


class StatusServer:
    """Serves ``/metrics`` and ``/health/*`` on the processor's own loop."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry | None,
        live: Checks,
        ready: Checks,
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._live = live
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health/live", self._health(self._live))
        app.router.add_get("/health/ready", self._health(self._ready))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except OSError as exc:
            log.warning(
                "metrics and health not served: cannot listen on %s:%d (%s); "
                "set PROCESSOR_HTTP_PORT to a free port",
                self._host,
                self._port,
                exc.strerror or exc,
            )
            await runner.cleanup()
            return

        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        log.info("metrics and health on %s (/metrics, /health/ready)", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self._registry is None:
            return web.Response(
                status=404, text="the prometheus reader is off (OTEL_METRICS_EXPORTER)"
            )
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @staticmethod
    def _health(checks: Checks) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def answer(_request: web.Request) -> web.Response:
            results = dict(checks())
            status = 200 if all(results.values()) else 503
            body = {"status": "ok" if status == 200 else "failing", "checks": results}
            return web.Response(
                status=status, text=json.dumps(body), content_type="application/json"
            )

        return answer
