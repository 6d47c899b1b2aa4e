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


def test_the_demo_lists_its_options() -> None:
    # The demo's runs themselves are in test_demo.py.
    done = run(str(SCRIPT), "demo", "--help")

    assert done.returncode == 0, done.stderr
    for option in ("--jobs", "--keep", "--json", "--timeout"):
        assert option in done.stdout


def test_the_demo_refuses_too_few_jobs_in_one_line() -> None:
    done = run(str(SCRIPT), "demo", "--jobs", "3")

    assert done.returncode == 2
    assert "--jobs" in done.stderr.strip().splitlines()[-1]
