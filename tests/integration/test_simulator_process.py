"""``cxone-processor simulate`` as a user starts it: a process on a port."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from processor.simulator import Behaviour
from tests.support import job_body, simulator_process, token


def test_the_simulate_command_serves_the_api_and_its_counts() -> None:
    flags = ("--latency-ms", "0", "--latency-jitter-ms", "0", "--rate-limit", "1")
    with (
        simulator_process(*flags) as (url, process),
        httpx.Client(base_url=url) as client,
    ):
        bearer = token(client, Behaviour())
        headers = {"Authorization": f"Bearer {bearer}", "Idempotency-Key": "k"}
        answers = [
            client.post(
                "/api/v2/data-actions/action_123/jobs", headers=headers, json=job_body()
            )
            for _ in range(2)
        ]
        stats = client.get("/_simulator/stats").json()

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)

    assert [a.status_code for a in answers] == [202, 429]
    assert stats["submissions"] == 2
    assert stats["throttled_rate"] == 1
    assert stats["behaviour"]["rate_limit_per_s"] == 1
    assert code == 0


def test_a_bad_flag_stops_the_start_with_one_line_naming_it() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "processor",
            "simulate",
            "--port",
            "0",
            "--error-rate",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0
    assert "error_rate" in done.stderr


def test_credentials_come_from_the_processors_environment() -> None:
    env_flags = ("--client-id", "team-client", "--client-secret", "team-secret")
    with (
        simulator_process(*env_flags) as (url, _),
        httpx.Client(base_url=url) as client,
    ):
        accepted = client.post(
            "/oauth/v2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "team-client",
                "client_secret": "team-secret",
            },
        )
        refused = client.post(
            "/oauth/v2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "simulator-client",
                "client_secret": "simulator-secret",
            },
        )

    assert accepted.status_code == 200
    assert refused.status_code == 401
