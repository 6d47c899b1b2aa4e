"""Helpers for tests: callback guarding and simulator client calls."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import httpx
import pytest

from processor.simulator import Behaviour

P = ParamSpec("P")
R = TypeVar("R")


class CallbackGuard:
    """Records exceptions raised inside callbacks that a library may swallow."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def wrap(self, callback: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(callback)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return callback(*args, **kwargs)
            except BaseException:
                self.errors.append(traceback.format_exc())
                raise

        return guarded

    def check(self) -> None:
        if self.errors:
            pytest.fail("a callback raised:\n" + "\n".join(self.errors))


def token(client: httpx.Client, behaviour: Behaviour, scope: str | None = None) -> str:
    """A fresh access token from the simulator."""
    form = {
        "grant_type": "client_credentials",
        "client_id": behaviour.client_id,
        "client_secret": behaviour.client_secret,
    }
    if scope is not None:
        form["scope"] = scope
    answer = client.post("/oauth/v2/token", data=form)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def job_body() -> dict[str, Any]:
    return {"input": {"sourceId": "src_456"}, "options": {"async": True}}


@contextmanager
def simulator_process(*flags: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``cxone-processor simulate`` as a subprocess on a free port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "processor", "simulate", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PROCESSOR_LOG_LEVEL": "WARNING"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("simulator listening on "), first + (
            process.stderr.read() if process.stderr else ""
        )
        yield first.split()[-1], process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
