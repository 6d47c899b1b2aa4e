"""The commands as a user types them: the console script and ``python -m``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "cxone-processor"


def run(
    *command: str, timeout: float = 120, tmp: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROCESSOR_LOG_LEVEL": "WARNING"}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


@pytest.mark.parametrize(
    "command",
    [(str(SCRIPT),), (sys.executable, "-m", "processor")],
    ids=["script", "module"],
)
def test_both_entry_points_list_the_commands(command: tuple[str, ...]) -> None:
    done = run(*command, "--help")

    assert done.returncode == 0
    for name in ("simulate", "broker", "demo"):
        assert name in done.stdout


def test_the_demo_sends_a_job_through_a_local_broker_and_simulator(
    tmp_path: Path,
) -> None:
    done = run(str(SCRIPT), "demo", timeout=180, tmp=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "Published and read back demo-" in done.stdout
    assert "job job_1 is QUEUED" in done.stdout
    assert "1 submission(s), 1 job(s) created" in done.stdout
    assert "removed their data" in done.stdout
    assert list(tmp_path.glob("cxone-kafka-*")) == []
