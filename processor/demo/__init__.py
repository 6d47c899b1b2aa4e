"""``cxone-processor demo``: the processor's whole job on one machine, in one command.

It starts a local Kafka broker and the CXone simulator (a rate limit,
latency, faults, two outages, a DRAFT action), produces a few thousand keyed
job requests with some bad ones among them, runs ``cxone-processor run``
against them with a live view of its own metrics, stops once every request
has an output, and prints a summary read back from the topics, with the
commands that replay the dead letters. Everything it started is stopped and
removed on the way out, Ctrl-C and SIGTERM included; ``--keep`` keeps it all
running until Ctrl-C.

- ``workload``: the requests and the simulated API's rules;
- ``instance``: the processor subprocess;
- ``view``: the live view;
- ``summary``: what the topics hold afterwards;
- ``stopping``: stopping all of it, whatever ends the run;
- ``command``: the run, step by step.
"""

from __future__ import annotations

import argparse
import signal

from processor.demo.command import demo_from
from processor.demo.stopping import Stopped, sigterm_stops
from processor.demo.workload import MIN_JOBS

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=3000,
        metavar="N",
        help=f"job requests to produce, a few bad ones included (default 3000, "
        f"at least {MIN_JOBS})",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the broker, the simulator and the processor running after the "
        "summary, until Ctrl-C",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the summary to FILE as JSON"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="give up when not every request has an output by then "
        "(default 60 s plus 1 s per 50 jobs)",
    )


def main(args: argparse.Namespace) -> int:
    demo = demo_from(args)
    with sigterm_stops():
        try:
            return demo.run()
        except Stopped:
            return 128 + signal.SIGTERM


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < MIN_JOBS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number >= {MIN_JOBS}"
        )
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return seconds
