"""``cxone-processor tail``: a topic's records, decoded, as JSON Lines on stdout.

The records come from a ``TopicReader`` (no consumer group joined, nothing
committed); each becomes one line shaped by ``rendering.describe``, whatever
its value holds. Ctrl-C or SIGTERM ends it with exit code 0, as does the end
of the topic without ``--follow``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message

from processor import schemas, tool_settings
from processor.errors import SettingsError
from processor.records import Record
from processor.rendering import ValueDecoder, describe
from processor.settings import Settings
from processor.topic_reader import Start, TopicReader

# Which topic setting each name stands for, and the schema of its values.
TOPICS = {
    "requests": ("requests_topic", "job_request"),
    "results": ("results_topic", "job_result"),
    "deadletter": ("deadletter_topic", "dead_letter"),
    "audit": ("audit_topic", "audit_event"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "which",
        nargs="?",
        choices=tuple(TOPICS),
        metavar="{requests,results,deadletter,audit}",
        help="the configured topic to read (PROCESSOR_*_TOPIC)",
    )
    parser.add_argument("--topic", metavar="NAME", help="read this topic instead")
    parser.add_argument(
        "--from",
        dest="start",
        default="beginning",
        metavar="WHERE",
        help="beginning (default), end, or an ISO 8601 time such as "
        "2026-12-03T10:00:00Z (UTC when it names no zone)",
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep printing new records until Ctrl-C"
    )
    parser.add_argument(
        "--limit", type=_count, metavar="N", help="stop after N records"
    )
    tool_settings.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    if (args.which is None) == (args.topic is None):
        raise SettingsError(
            "TOPIC",
            "must be one of requests, results, deadletter or audit, "
            "or --topic NAME (one of the two)",
        )
    start = parse_start(args.start)
    settings = tool_settings.load(args)
    topic, kind = _chosen(args, settings)
    decoder = ValueDecoder(schemas.Reader(tool_settings.registry(settings)), kind)

    with (
        TopicReader(settings, topic, start, args.follow) as reader,
        _stop_on_signals() as stopped,
    ):
        printed, undecodable = _print(reader.messages(stopped), decoder, args.limit)

    print(
        f"{printed} record(s) from {topic}, {undecodable} not decodable",
        file=sys.stderr,
    )
    return 0


def parse_start(text: str) -> Start:
    """``beginning``, ``end``, or the time in ``text`` as epoch milliseconds."""
    if text == "beginning":
        return "beginning"
    if text == "end":
        return "end"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(
            "--from",
            f"{text!r} is not beginning, end or an ISO 8601 time "
            "(such as 2026-12-03T10:00:00Z)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _count(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1")
    return number


def _chosen(args: argparse.Namespace, settings: Settings) -> tuple[str, str | None]:
    """The topic's name, and the schema of its values where the topic is known."""
    configured = {
        getattr(settings, setting): schema for setting, schema in TOPICS.values()
    }
    if args.topic is not None:
        return args.topic, configured.get(args.topic)
    setting, schema = TOPICS[args.which]
    return getattr(settings, setting), schema


def _print(
    messages: Iterator[Message | None], decoder: ValueDecoder, limit: int | None
) -> tuple[int, int]:
    """Print each message until they end, the limit, or the reader goes away."""
    printed = undecodable = 0
    output = Output()
    for message in messages:
        if message is None:
            # Idle: a --follow reader sees what was printed so far now.
            output.flush()
            continue

        line = describe(_record(message), decoder)
        output.write(line)
        printed += 1
        undecodable += "error" in line
        if not output.open or printed == limit:
            break
    output.flush()
    return printed, undecodable


class Output:
    """JSON Lines on stdout, in UTF-8, until the reader goes away."""

    def __init__(self) -> None:
        self.open = True

    def write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, ensure_ascii=False) + "\n"
        self._guarded(lambda: sys.stdout.buffer.write(text.encode()))

    def flush(self) -> None:
        self._guarded(sys.stdout.buffer.flush)

    def _guarded(self, step: Callable[[], object]) -> None:
        if not self.open:
            return
        try:
            step()
        except BrokenPipeError:
            # The reader left (`tail ... | head`): that is the end, not an
            # error. Point stdout at /dev/null so the last flush is quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            self.open = False


def _record(message: Message) -> Record:
    kind, timestamp = message.timestamp()
    raw = message.headers() or []
    headers = raw.items() if isinstance(raw, dict) else raw
    return Record(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=[
            (name, value.encode() if isinstance(value, str) else value)
            for name, value in headers
        ],
        timestamp_ms=timestamp if kind else None,
    )


@contextmanager
def _stop_on_signals() -> Iterator[list[bool]]:
    """A flag that SIGINT or SIGTERM sets, checked between polls."""
    stopped: list[bool] = []
    previous = {
        signum: signal.signal(signum, lambda *_: stopped.append(True))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stopped
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
