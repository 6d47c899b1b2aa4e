"""The benchmark itself works: its short form runs every scenario and reports.

Figures are not judged here (a test never asserts a speed); that every one
is measured, and is the kind of number it claims to be, is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def test_the_short_form_measures_every_figure_of_every_scenario(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "bench.json"

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--short", "--json", str(report_path)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    scenarios = report["scenarios"]
    assert set(scenarios) == set(SCENARIOS)
    for name, figures in scenarios.items():
        assert figures.pop("target"), name
        for figure, value in figures.items():
            if value is None:
                # "not reached within the run": only a time to an event may be.
                assert figure.startswith("seconds_to"), (name, figure)
                continue
            assert isinstance(value, int | float), (name, figure, value)
            # A drop or a growth is a difference of two noisy readings: either
            # sign is a result.
            signed = figure.startswith(("drop", "growth"))
            assert value >= 0 or signed, (name, figure, value)
            assert figure in done.stdout, figure
    # What each scenario is about really happened in it.
    assert scenarios["outage"]["dead_letters"] == 0
    assert scenarios["littles_law"]["jobs_per_s"] > 0
    assert 0 < scenarios["littles_law"]["api_mean_in_flight"] <= 64
    assert scenarios["littles_law"]["api_mean_latency_ms"] > 0
    assert scenarios["ceiling"]["cpu_us_per_job_c64"] > 0
    assert scenarios["rate_limit"]["share_429"] <= 1
    assert scenarios["memory"]["peak_rss_mb"] > 0
    assert scenarios["naive_peer"]["naive_jobs_per_s"] > 0
