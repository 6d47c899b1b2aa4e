"""The ``cxone-processor`` command and its subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from processor import actions_cli, demo, logs, produce, replay, run, tail
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
            "replay",
            "send dead letters back to the requests topic, each batch exactly once",
            replay.add_arguments,
            replay.main,
        ),
        (
            "produce",
            "send job requests from a JSON Lines file to the requests topic",
            produce.add_arguments,
            produce.main,
        ),
        (
            "tail",
            "print a topic's records, decoded, as JSON Lines",
            tail.add_arguments,
            tail.main,
        ),
        (
            "demo",
            "run the processor on a local broker and simulator: a live view, a summary",
            demo.add_arguments,
            demo.main,
        ),
        (
            "actions",
            "read a Data Action, or check a JSON patch and apply it",
            actions_cli.add_arguments,
            actions_cli.main,
        ),
    ]
    for name, summary, add_arguments, command in subcommands:
        sub = commands.add_parser(name, help=summary, description=summary)
        add_arguments(sub)
        sub.set_defaults(command=command, name=name)
    return parser


def _configure_logging() -> None:
    logs.configure(os.environ.get("PROCESSOR_LOG_LEVEL", "INFO"))
