"""``cxone-processor run``: the stream processor, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable

import uvloop

from processor import settings as settings_module
from processor.pipeline import Pipeline
from processor.settings import Settings

log = logging.getLogger(__name__)

# Flags for the settings it is common to change per run. The client secret has
# none on purpose: command lines are visible to every user of the machine.
_FLAGS = {
    "--base-url": "CXONE_BASE_URL",
    "--client-id": "CXONE_CLIENT_ID",
    "--bootstrap-servers": "KAFKA_BOOTSTRAP_SERVERS",
    "--group-id": "PROCESSOR_GROUP_ID",
    "--requests-topic": "PROCESSOR_REQUESTS_TOPIC",
    "--results-topic": "PROCESSOR_RESULTS_TOPIC",
    "--deadletter-topic": "PROCESSOR_DEADLETTER_TOPIC",
    "--audit-topic": "PROCESSOR_AUDIT_TOPIC",
    "--max-in-flight": "PROCESSOR_MAX_IN_FLIGHT",
    "--action-concurrency": "PROCESSOR_ACTION_CONCURRENCY",
    "--max-attempts": "PROCESSOR_MAX_ATTEMPTS",
    "--schema-registry-url": "SCHEMA_REGISTRY_URL",
    "--grace-period": "PROCESSOR_GRACE_PERIOD_S",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings (the environment wins over it)",
    )
    for flag, variable in _FLAGS.items():
        parser.add_argument(flag, metavar="VALUE", help=f"sets {variable}")


def main(args: argparse.Namespace) -> int:
    flags = {
        variable: value
        for flag, variable in _FLAGS.items()
        if (value := getattr(args, flag[2:].replace("-", "_"))) is not None
    }
    settings = settings_module.load(config_file=args.config, flags=flags)
    # uvloop runs the same asyncio code with a fraction of the loop's own
    # overhead per callback and socket event, which every job pays several times.
    uvloop.run(_run(settings))
    return 0


async def _run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stopper(stop, signum))
    await Pipeline(settings).run(stop)


def _stopper(stop: asyncio.Event, signum: signal.Signals) -> Callable[[], None]:
    def requested() -> None:
        if not stop.is_set():
            log.info("%s received: finishing the jobs in flight", signum.name)
        stop.set()

    return requested
