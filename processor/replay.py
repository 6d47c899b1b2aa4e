"""``cxone-processor replay``: dead letters back onto the requests topic.

Once the cause of a failure is fixed, each selected dead letter's original
key, value and headers go back to the requests topic, where the processor
takes them up like any other request.

- Where it reads: from where the replay group (``<PROCESSOR_GROUP_ID>-replay``
  unless ``--group``) last stopped, or from the oldest dead letter with
  ``--from-beginning``. ``--since`` seeks by time to the first dead letter at
  or after it, but never back past the group's position without
  ``--from-beginning``, so a run repeated after an interruption resumes rather
  than starts over. It ends at the partitions' ends as they were at its start.
- Exactly once: one Kafka transaction per batch holds the batch's records and
  the group's new position (``send_offsets_to_transaction``). An interrupted
  batch is aborted (Ctrl-C) or left open and aborted by the next run, which
  shares its ``transactional.id`` (the group's name); readers with
  ``isolation.level=read_committed``, the processor among them, never see it.
- The loop guard and the filters are in ``processor.deadletters``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import FrameType

from processor import deadletters, schemas, tool_settings
from processor.deadletters import Selection, Tally
from processor.errors import ProcessorError, SettingsError
from processor.republisher import Plan, Republisher
from processor.settings import Settings

log = logging.getLogger(__name__)

# Beyond the flags every topic tool takes (tool_settings).
_TOPIC_FLAGS = {
    "--requests-topic": "PROCESSOR_REQUESTS_TOPIC",
    "--deadletter-topic": "PROCESSOR_DEADLETTER_TOPIC",
}
_MAX_BATCH = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tool_settings.add_arguments(parser)
    for flag, variable in _TOPIC_FLAGS.items():
        parser.add_argument(flag, metavar="VALUE", help=f"sets {variable}")
    parser.add_argument(
        "--reason",
        action="append",
        choices=deadletters.REASONS,
        metavar="REASON",
        help="replay dead letters with this reason only (repeatable): "
        + ", ".join(deadletters.REASONS[1:]),
    )
    parser.add_argument(
        "--action",
        action="append",
        metavar="ACTION_ID",
        help="replay dead letters of this action only (repeatable)",
    )
    parser.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="dead letters that failed at or after this ISO-8601 time (UTC "
        "without an offset); seeks there, but not back past where the group "
        "stopped unless --from-beginning",
    )
    parser.add_argument(
        "--until",
        type=_time,
        metavar="TIME",
        help="dead letters that failed at or before this ISO-8601 time",
    )
    parser.add_argument(
        "--limit", type=_count, metavar="N", help="send at most N records, then stop"
    )
    parser.add_argument(
        "--max-replays",
        type=_count,
        default=3,
        metavar="N",
        help="skip requests already replayed N times (default 3)",
    )
    parser.add_argument(
        "--group",
        metavar="GROUP",
        help="consumer group that keeps the position "
        "(default <PROCESSOR_GROUP_ID>-replay)",
    )
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the oldest dead letter, not where the group stopped",
    )
    parser.add_argument(
        "--batch-size",
        type=_count,
        default=200,
        metavar="N",
        help=f"records per transaction (default 200, at most {_MAX_BATCH})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="count what would be sent; send nothing and keep the position",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as one JSON object"
    )


def main(args: argparse.Namespace) -> int:
    settings = _settings(args)
    plan = _plan(args, settings)
    republisher = Republisher(settings, plan, _reader(settings))

    with _stop_on_signals() as stopped:
        try:
            republisher.run(stopped.event)
        except ProcessorError:
            if republisher.committed.handled():
                note = "stopped by the error below"
                _report(republisher, settings, plan, args.json, note)
            raise

    if stopped.signum is not None:
        note = "interrupted; any batch in progress was aborted"
        _report(republisher, settings, plan, args.json, note)
        return 128 + stopped.signum
    _report(republisher, settings, plan, args.json, None)
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    return tool_settings.load(
        args,
        PROCESSOR_REQUESTS_TOPIC=args.requests_topic,
        PROCESSOR_DEADLETTER_TOPIC=args.deadletter_topic,
    )


def _plan(args: argparse.Namespace, settings: Settings) -> Plan:
    group = args.group or f"{settings.group_id}-replay"
    if group == settings.group_id:
        # The processor's group has live members; offsets committed on its
        # behalf by a transaction would be refused, and would confuse it.
        raise SettingsError("--group", "must differ from PROCESSOR_GROUP_ID")
    if args.since and args.until and args.until < args.since:
        raise SettingsError("--until", "is before --since")
    if args.batch_size > _MAX_BATCH:
        raise SettingsError("--batch-size", f"must be at most {_MAX_BATCH}")

    selection = Selection(
        reasons=deadletters.unique(args.reason),
        actions=deadletters.unique(args.action),
        since=args.since,
        until=args.until,
    )
    return Plan(
        group=group,
        selection=selection,
        max_replays=args.max_replays,
        limit=args.limit,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        from_beginning=args.from_beginning,
    )


def _reader(settings: Settings) -> schemas.Reader:
    return schemas.Reader(tool_settings.registry(settings))


def _time(text: str) -> datetime:
    try:
        return deadletters.parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time, e.g. 2026-01-31T09:30:00Z"
        ) from None


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


@dataclass
class _Stopped:
    event: threading.Event
    signum: int | None = None


@contextmanager
def _stop_on_signals() -> Iterator[_Stopped]:
    """SIGINT and SIGTERM ask the replay to stop after aborting its batch.

    A second Ctrl-C raises ``KeyboardInterrupt`` at once, for a Kafka call that
    hangs; the transaction it leaves open is aborted by the next run.
    """
    stopped = _Stopped(threading.Event())

    def requested(signum: int, _frame: FrameType | None) -> None:
        if stopped.signum is None:
            log.info("%s received: aborting the batch in progress", _name(signum))
        stopped.signum = signum
        stopped.event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {
        signum: signal.signal(signum, requested)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stopped
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def _report(
    republisher: Republisher,
    settings: Settings,
    plan: Plan,
    as_json: bool,
    note: str | None,
) -> None:
    tally: Tally = republisher.committed
    if as_json:
        document = {
            "group": plan.group,
            "dry_run": plan.dry_run,
            "note": note,
            **tally.as_dict(),
            "positions": {str(p): o for p, o in sorted(republisher.positions.items())},
        }
        print(json.dumps(document), flush=True)
        return

    print(
        f"replay of {settings.deadletter_topic} onto {settings.requests_topic} "
        f"(group {plan.group})"
    )
    if note is not None:
        print(f"{note}; committed before that:")
    for line in deadletters.summary(tally, dry_run=plan.dry_run):
        print(line)
    if plan.dry_run:
        print("dry run: nothing was sent and the group's position did not move")
    sys.stdout.flush()
