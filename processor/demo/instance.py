"""The demo's processor: ``cxone-processor run`` in a subprocess, logging to a file.

It is the same program an operator runs, set up through the environment
alone, so what the demo shows is what production does. Its log goes to a
file the demo names when something goes wrong, not to the terminal.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from processor.simulator import Behaviour

# The line the processor logs once /metrics and /health are served.
_STATUS_LINE = re.compile(r"metrics and health on (http://[^\s\"]+)")
_STOP_TIMEOUT_S = 20.0
# Settings of the user's own environment that must not leak into the demo.
_FOREIGN = ("CXONE_", "KAFKA_", "PROCESSOR_", "SCHEMA_REGISTRY", "OTEL_")


def processor_env(bootstrap: str, api_url: str, api: Behaviour) -> dict[str, str]:
    """The processor's settings: defaults, except where the demo wants quicker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update(
        {
            "CXONE_BASE_URL": api_url,
            "CXONE_CLIENT_ID": api.client_id,
            "CXONE_CLIENT_SECRET": api.client_secret,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            # A free port: another processor may hold the default 9464.
            "PROCESSOR_HTTP_PORT": "0",
            # Retries of the simulator's faults should not outlast the demo.
            "PROCESSOR_BACKOFF_INITIAL_S": "0.1",
            "PROCESSOR_BACKOFF_MAX_S": "2",
            # With --keep, an action published after the run is seen soon.
            "PROCESSOR_ACTION_CACHE_TTL_S": "5",
            "PROCESSOR_GRACE_PERIOD_S": "10",
            "PROCESSOR_DRAIN_RATE_WINDOW_S": "10",
            "PROCESSOR_LOG_LEVEL": "INFO",
            "OTEL_METRICS_EXPORTER": "prometheus",
            "OTEL_TRACES_EXPORTER": "none",
        }
    )
    return env


class ProcessorInstance:
    """One ``cxone-processor run``; ``stop()`` ends it, gracefully if it can."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._status_url: str | None = None

    def __enter__(self) -> ProcessorInstance:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "processor", "run"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C in the terminal reaches the demo
                # alone, which then stops the processor in its own order.
                start_new_session=True,
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def exit_code(self) -> int | None:
        """None while it runs."""
        return None if self._process is None else self._process.poll()

    @property
    def status_url(self) -> str | None:
        """Where its /metrics are served, once its log has said so."""
        if self._status_url is None and self.log_path.exists():
            found = _STATUS_LINE.search(self.log_path.read_text(errors="replace"))
            self._status_url = found.group(1) if found else None
        return self._status_url

    def stop(self) -> int | None:
        """SIGTERM, which lets it finish its jobs; SIGKILL if it takes too long."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def last_log_line(self) -> str:
        if not self.log_path.exists():
            return "(nothing logged)"
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(nothing logged)"
