"""``python -m bench``: every scenario in one run, a table and a JSON file.

    .venv/bin/python -m bench                  # every scenario, about 12 min
    .venv/bin/python -m bench rate_limit       # some of them
    .venv/bin/python -m bench --short          # seconds a scenario: a check

It starts a local Kafka (the simulator and the processor run as
subprocesses per scenario) and prints every figure beside the limit it is
measured against, measured in the same run: these machines are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.scenarios import SCENARIOS, Figures
from bench.world import World
from processor.localkafka import LocalKafka

_ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], default=[])
    parser.add_argument("--short", action="store_true", help="a few seconds each")
    parser.add_argument("--json", type=Path, default=_ROOT / "bench" / "results.json")
    args = parser.parse_args()
    chosen = args.scenarios or list(SCENARIOS)

    started = time.monotonic()
    figures: dict[str, Figures] = {}
    with LocalKafka(1) as kafka:
        logs = Path(tempfile.mkdtemp(prefix="cxone-bench-"))
        print(f"processor logs in {logs}", flush=True)
        world = World(kafka.bootstrap_servers, logs, args.short)
        for name in chosen:
            print(f"-- {name}", flush=True)
            figures[name] = SCENARIOS[name](world)
            print(json.dumps(figures[name]), flush=True)

    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "short": args.short,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "scenarios": figures,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(figures))
    return 0


def _machine() -> str:
    python = platform.python_version()
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {python}"


def _table(figures: dict[str, Figures]) -> str:
    lines = [f"\n{'scenario':16} {'figure':36} value"]
    for name, values in figures.items():
        for key, value in values.items():
            if key != "target":
                lines.append(f"{name:16} {key:36} {value}")
        lines.append(f"{'':16} {'target':36} {values['target']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
