"""The ``cxone-processor`` command and its subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from processor import demo, logs, run
from processor.errors import ProcessorError, SettingsError
from processor.localkafka import cli as broker_cli
from processor.simulator import cli as simulate_cli
from processor.simulator.behaviour import BehaviourError

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging()

    command: Command = args.command
    try:
        return command(args)
    except SettingsError as exc:
        print(f"cxone-processor {args.name}: invalid setting: {exc}", file=sys.stderr)
        return 2
    except BehaviourError as exc:
        print(f"cxone-processor {args.name}: {exc}", file=sys.stderr)
        return 2
    except ProcessorError as exc:
        print(f"cxone-processor {args.name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxone-processor",
        description="Feed NICE CXone Data Actions jobs from Kafka.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    subcommands: list[
        tuple[str, str, Callable[[argparse.ArgumentParser], None], Command]
    ] = [
        (
            "run",
            "consume job requests and submit them to CXone until stopped",
            run.add_arguments,
            run.main,
        ),
        (
            "simulate",
            "serve the simulated CXone Data Actions API",
            simulate_cli.add_arguments,
            simulate_cli.main,
        ),
        (
            "broker",
            "run a local Apache Kafka (fetched with Maven) until Ctrl-C",
            broker_cli.add_arguments,
            broker_cli.main,
        ),
        (
            "demo",
            "start a local broker and simulator and send a job through them",
            demo.add_arguments,
            demo.main,
        ),
    ]
    for name, summary, add_arguments, command in subcommands:
        sub = commands.add_parser(name, help=summary, description=summary)
        add_arguments(sub)
        sub.set_defaults(command=command, name=name)
    return parser


def _configure_logging() -> None:
    logs.configure(os.environ.get("PROCESSOR_LOG_LEVEL", "INFO"))
