"""The demo's run, from an empty machine to the summary and back.

``Demo.run`` reads as the steps the README promises; each step is a method
or function below it. Whatever ends the run, ``stopping.Started`` stops what
was started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from processor import settings as settings_module
from processor.demo import summary as summaries
from processor.demo.instance import ProcessorInstance, processor_env
from processor.demo.stopping import Started, Stopped, work_folder
from processor.demo.view import Display, Observer, Reading
from processor.demo.workload import (
    DRAFT_ACTION,
    OUTAGES,
    RESULT,
    OutageSchedule,
    Workload,
    create_topics,
    produce,
    simulated_api,
    workload,
)
from processor.errors import ProcessorError
from processor.localkafka import LocalKafka
from processor.settings import Settings
from processor.simulator import Behaviour, SimulatorThread

PARTITIONS = {"requests": 4, "results": 3, "deadletter": 1, "audit": 1}
_TICK_S = 0.25
# The simulator's counts worth keeping in the summary.
_API_COUNTS = (
    "submissions", "accepted", "duplicates", "throttled", "faults",
    "outage_rejections", "unknown_actions", "unpublished", "unknown_paths",
)  # fmt: skip


def demo_from(args: argparse.Namespace) -> Demo:
    timeout = args.timeout if args.timeout is not None else 60 + args.jobs / 50
    return Demo(args.jobs, timeout, args.keep, args.json)


class Demo:
    """One run of the demo, as the flags chose it."""

    def __init__(
        self, jobs: int, timeout_s: float, keep: bool, json_path: str | None
    ) -> None:
        self.jobs = jobs
        self.timeout_s = timeout_s
        self.keep = keep
        self.json_path = None if json_path is None else Path(json_path)
        self.api = simulated_api()

    def run(self) -> int:
        """The whole demo; returns its exit code."""
        _quiet_parts_in_this_process()
        with Started() as started:
            kafka, simulator, folder = self._start(started)
            env = processor_env(kafka.bootstrap_servers, simulator.url, self.api)
            settings = settings_module.load(env)
            planned = self._produce(settings)

            log_path = folder / "processor.log"
            print(f"Running cxone-processor run (its log: {log_path})", flush=True)
            instance = started.enter_context(ProcessorInstance(env, log_path))
            began = time.monotonic()
            self._watch(settings, simulator, instance)
            run_s = time.monotonic() - began
            if not self.keep:
                _stop(instance)

            document = self._report(settings, simulator, planned, run_s)
            self._write_json(document)
            if self.keep:
                _wait_for_ctrl_c(instance, simulator, self.api)
        print("Stopped the processor, the simulator and the broker; data removed.")
        return 0

    def _start(self, started: Started) -> tuple[LocalKafka, SimulatorThread, Path]:
        print(
            "Starting a local Kafka broker (the first run fetches its jars with Maven)",
            flush=True,
        )
        kafka = started.enter_context(LocalKafka(1))
        simulator = started.enter_context(SimulatorThread(self.api))
        folder = started.enter_context(work_folder())

        outages = " and ".join(f"{o.duration_s:.0f} s" for o in OUTAGES)
        print(f"  Kafka            {kafka.bootstrap_servers}")
        print(
            f"  CXone simulator  {simulator.url}: at most "
            f"{self.api.rate_limit_per_s:.0f} jobs/s, 30-50 ms a job, "
            f"{self.api.error_rate:.0%} faults, outages of {outages} on the way, "
            f"{DRAFT_ACTION} is a DRAFT"
        )
        return kafka, simulator, folder

    def _produce(self, settings: Settings) -> Workload:
        planned = workload(self.jobs)
        create_topics(settings, PARTITIONS)
        produce(settings, planned.records)

        expected = planned.expected
        print(
            f"Produced {planned.size:,} keyed job requests to "
            f"{settings.requests_topic}: {expected[RESULT]:,} valid, "
            f"{expected['ACTION_NOT_PUBLISHED']} for the DRAFT action, "
            f"{expected['UNKNOWN_ACTION']} for an unknown one, "
            f"{expected['INVALID_REQUEST']} broken",
            flush=True,
        )
        return planned

    def _watch(
        self,
        settings: Settings,
        simulator: SimulatorThread,
        instance: ProcessorInstance,
    ) -> None:
        """The live view, until every request has an output (or the deadline)."""
        outages = OutageSchedule(simulator, self.jobs)
        observer = Observer(settings, self.jobs)
        deadline = time.monotonic() + self.timeout_s
        try:
            with Display(Console()) as display:
                while True:
                    reading = observer.read(instance.status_url, outages.active)
                    outages.advance(reading.outputs)
                    finished = reading.outputs >= self.jobs
                    display.show(reading, final=finished)
                    if finished:
                        return
                    _check_progress(instance, reading, deadline, self.timeout_s)
                    time.sleep(_TICK_S)
        finally:
            observer.close()

    def _report(
        self,
        settings: Settings,
        simulator: SimulatorThread,
        planned: Workload,
        run_s: float,
    ) -> dict[str, Any]:
        """Prints the summary and returns it as the JSON document."""
        summary = summaries.read(settings, planned.size)
        stats = simulator.stats()
        api = {name: stats[name] for name in _API_COUNTS}
        for line in summaries.render(summary, api, run_s):
            print(line)

        bootstrap = settings.bootstrap_servers
        replays = summaries.replay_commands(summary, bootstrap)
        _print_replay_hints(replays, bootstrap, self.keep)
        return {
            "bootstrap_servers": bootstrap,
            "simulator_url": simulator.url,
            "kept": self.keep,
            "topics": {
                "requests": settings.requests_topic,
                "results": settings.results_topic,
                "deadletter": settings.deadletter_topic,
                "audit": settings.audit_topic,
            },
            "expected": dict(sorted(planned.expected.items())),
            "run_s": round(run_s, 2),
            **summary.as_dict(),
            "api": api,
            "replay": replays,
        }

    def _write_json(self, document: dict[str, Any]) -> None:
        if self.json_path is None:
            return
        # Written whole, then renamed: whoever waits for it never reads half.
        partial = self.json_path.with_name(self.json_path.name + ".partial")
        partial.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(partial, self.json_path)


def _quiet_parts_in_this_process() -> None:
    # The broker's and the simulator's INFO lines would only repeat what the
    # demo prints, and break into its live view.
    for name in ("processor.localkafka", "processor.simulator"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _check_progress(
    instance: ProcessorInstance, reading: Reading, deadline: float, timeout_s: float
) -> None:
    code = instance.exit_code
    if code is not None:
        raise ProcessorError(
            f"the processor exited with code {code} after {reading.outputs:,} of "
            f"{reading.jobs:,} outputs; its log is kept at {instance.log_path}, "
            f"ending: {instance.last_log_line()}"
        )
    if time.monotonic() > deadline:
        raise ProcessorError(
            f"only {reading.outputs:,} of {reading.jobs:,} requests had an output "
            f"after {timeout_s:.0f} s (--timeout); the processor's log is kept at "
            f"{instance.log_path}"
        )


def _stop(instance: ProcessorInstance) -> None:
    code = instance.stop()
    if code != 0:
        print(f"The processor exited with code {code}; see {instance.log_path}")


def _print_replay_hints(replays: list[str], bootstrap: str, kept: bool) -> None:
    print(
        "\nDead letters keep each request's key, value and headers as they came:\n"
        f"  cxone-processor tail deadletter --bootstrap-servers {bootstrap}\n"
        "Once a cause is fixed, replay them onto the requests topic (invalid "
        "requests would only fail again):"
    )
    for command in replays:
        print(f"  {command}")
    if not kept:
        print(
            "The broker is gone once the demo ends: `cxone-processor demo --keep` "
            "keeps it, the simulator and the processor running until Ctrl-C."
        )


def _wait_for_ctrl_c(
    instance: ProcessorInstance, simulator: SimulatorThread, api: Behaviour
) -> None:
    print(
        "\nKept running until Ctrl-C. To publish the DRAFT action before "
        "replaying its dead letters:\n"
        f'  echo \'{{"id": "{DRAFT_ACTION}", "status": "PUBLISHED", '
        f'"config": {{}}}}\' | CXONE_BASE_URL={simulator.url} '
        f"CXONE_CLIENT_ID={api.client_id} CXONE_CLIENT_SECRET={api.client_secret} "
        f"cxone-processor actions patch {DRAFT_ACTION} --file -",
        flush=True,
    )
    warned = False
    try:
        while True:
            if instance.exit_code is not None and not warned:
                print(f"The processor exited; its log: {instance.log_path}", flush=True)
                warned = True
            time.sleep(0.5)
    except (KeyboardInterrupt, Stopped):
        print("\nStopping", flush=True)
