"""Telemetry for one processor instance: tracing, metrics and the HTTP port.

Set up before anything is consumed (so a bad ``OTEL_*`` value stops the
start), started once the instance's parts exist to be observed, and shut
down last, flushing what the exporters still hold.
"""

from __future__ import annotations

import logging

from opentelemetry.sdk.trace import TracerProvider

from processor import telemetry
from processor.metrics import Gauges, Metrics, setup_metrics
from processor.settings import Settings
from processor.status import Checks, StatusServer

log = logging.getLogger(__name__)

_FLUSH_TIMEOUT_MS = 5000


class Observability:
    """The tracer and meter providers and the status server of one instance."""

    def __init__(self, settings: Settings) -> None:
        self._tracer_provider: TracerProvider = telemetry.setup_tracing(
            settings.instance_id
        )
        setup = setup_metrics(settings.instance_id)
        self._meter_provider = setup.provider
        self._registry = setup.registry
        self.metrics: Metrics = setup.metrics
        self._settings = settings
        self._server: StatusServer | None = None

    @property
    def url(self) -> str | None:
        """Where metrics and health are served, once started (if they are)."""
        return self._server.url if self._server else None

    async def start(self, gauges: Gauges, live: Checks, ready: Checks) -> None:
        self.metrics.observe(gauges)
        settings = self._settings
        self._server = StatusServer(
            settings.http_host, settings.http_port, self._registry, live, ready
        )
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        # The tracer provider may be the host program's; it flushes its own.
        self._tracer_provider.force_flush(_FLUSH_TIMEOUT_MS)
        self._meter_provider.shutdown(timeout_millis=_FLUSH_TIMEOUT_MS)
