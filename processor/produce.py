"""``cxone-processor produce``: job requests from JSON Lines to the requests topic.

Each line is checked the way the processor will check the record it becomes:
``jobs.parse`` runs on the very bytes that would be sent. A line the processor
would dead-letter as ``INVALID_REQUEST`` is reported with its number and
reason and never sent. The good ones go out through an idempotent producer
(``acks=all``), and the command waits for every acknowledgement.

Exit codes: 0 when every good line was acknowledged, bad lines or not (the
closing count says how many were skipped); 1 when the broker refused or never
acknowledged a record; 2 for a bad setting or an unreadable file; 130 on
Ctrl-C, after flushing what was already read.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from processor import schemas, tool_settings
from processor.errors import InvalidRequest, ProcessorError, SettingsError
from processor.progress import Progress
from processor.request_lines import Prepared, Preparer
from processor.settings import Settings, kafka_setting_error

# librdkafka gives up on a record after message.timeout.ms, 300 s by default:
# too long for a command someone is watching. KAFKA_MESSAGE_TIMEOUT_MS wins.
_MESSAGE_TIMEOUT_MS = 30_000
_QUEUE_FULL_WAIT_S = 0.5


class Sender:
    """An idempotent producer that counts acknowledgements and refusals."""

    def __init__(self, settings: Settings) -> None:
        self.acknowledged = 0
        self.refused = 0
        self.first_refusal: str | None = None

        config = settings.producer_config(
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "client.id": "cxone-processor-produce",
                # Errors only: a fresh broker makes the idempotent producer
                # retry its id request once, which is not news to the user.
                "log_level": 3,
            }
        )
        timeout_ms = config.get("message.timeout.ms", config.get("delivery.timeout.ms"))
        if timeout_ms is None:
            config["message.timeout.ms"] = timeout_ms = _MESSAGE_TIMEOUT_MS
        try:
            self._producer = Producer(config)
        except KafkaException as exc:
            raise kafka_setting_error(exc.args[0].str()) from None
        # Every record is acknowledged, refused or timed out by then.
        self._flush_timeout_s = int(timeout_ms) / 1000 + 10

    def send(self, topic: str, record: Prepared) -> None:
        # A full local queue drains as records are acknowledged or time out
        # (message.timeout.ms), so this wait always ends.
        while True:
            try:
                self._producer.produce(
                    topic, record.value, record.key, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(_QUEUE_FULL_WAIT_S)
            except KafkaException as exc:
                self._refuse(exc.args[0].str())
                break
        self._producer.poll(0)

    def finish(self) -> None:
        """Wait for every acknowledgement; what is left counts as refused."""
        left: int = self._producer.flush(self._flush_timeout_s)
        if left:
            self.refused += left
            self.first_refusal = self.first_refusal or "no acknowledgement in time"

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.acknowledged += 1
        else:
            self._refuse(error.str())

    def _refuse(self, reason: str) -> None:
        self.refused += 1
        self.first_refusal = self.first_refusal or reason


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default="-",
        metavar="FILE",
        help="JSON Lines file of job requests (- or nothing: standard input)",
    )
    parser.add_argument(
        "--format",
        choices=("json", "avro"),
        default="json",
        help="value format: the line's JSON as it is (default), or Avro "
        "(Schema Registry framing when SCHEMA_REGISTRY_URL is set)",
    )
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--key-field",
        default="request_id",
        metavar="NAME",
        help="the field whose value is the record key (default request_id)",
    )
    keys.add_argument("--no-key", action="store_true", help="send records keyless")
    parser.add_argument(
        "--requests-topic", metavar="VALUE", help="sets PROCESSOR_REQUESTS_TOPIC"
    )
    tool_settings.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    settings = tool_settings.load(args, PROCESSOR_REQUESTS_TOPIC=args.requests_topic)
    preparer = _preparer(args, settings)
    topic = settings.requests_topic

    with (
        _opened(args.path) as source,
        Progress(_size(source), enabled=sys.stderr.isatty()) as progress,
    ):
        sender = Sender(settings)
        skipped, interrupted = _send_lines(source, preparer, sender, topic, progress)
        sender.finish()
        progress.advance(0, sender.acknowledged, skipped)

    print(_summary(sender, skipped, topic), file=sys.stderr)
    if sender.refused:
        raise ProcessorError(
            f"the broker did not take {sender.refused} record(s) for {topic}: "
            f"{sender.first_refusal}"
        )
    return 130 if interrupted else 0


def _preparer(args: argparse.Namespace, settings: Settings) -> Preparer:
    key_field = None if args.no_key else args.key_field
    registry = tool_settings.registry(settings)
    reader = schemas.Reader(registry)
    if args.format == "json":
        return Preparer(reader, settings.max_request_bytes, key_field)

    schema = schemas.load("job_request")
    codec: schemas.Codec
    if registry is None:
        codec = schemas.SingleObjectCodec(schema)
    else:
        try:
            codec = schemas.register(registry, settings.requests_topic, schema)
        except Exception as exc:  # the registry client raises several kinds
            raise ProcessorError(
                f"the Schema Registry at {settings.schema_registry_url} did not "
                f"register {settings.requests_topic}-value: {exc}"
            ) from None
    return Preparer(reader, settings.max_request_bytes, key_field, codec)


def _send_lines(
    source: BinaryIO,
    preparer: Preparer,
    sender: Sender,
    topic: str,
    progress: Progress,
) -> tuple[int, bool]:
    """Send each good line; returns how many were skipped, and if interrupted."""
    skipped = 0
    number = 0
    try:
        for number, line in enumerate(source, start=1):
            progress.advance(len(line), sender.acknowledged, skipped)
            if not line.strip():
                continue
            try:
                record = preparer.prepare(line)
            except InvalidRequest as exc:
                skipped += 1
                progress.report(f"line {number}: {exc} (not sent)")
                continue
            sender.send(topic, record)
    except KeyboardInterrupt:
        progress.report(f"interrupted: nothing after line {number} was read")
        return skipped, True
    return skipped, False


def _summary(sender: Sender, skipped: int, topic: str) -> str:
    text = f"sent {sender.acknowledged} request(s) to {topic}"
    if sender.refused:
        text += f", {sender.refused} refused by the broker"
    if skipped:
        return text + f"; skipped {skipped} bad line(s), reported above"
    return text + "; no bad lines"


@contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        if sys.stdin.isatty():
            print(
                "reading job requests from standard input (Ctrl-D ends)",
                file=sys.stderr,
            )
        yield sys.stdin.buffer
        return
    try:
        source = open(path, "rb")  # noqa: SIM115 - closed below, after the loop
    except OSError as exc:
        raise SettingsError(
            "FILE", f"cannot be read: {exc.strerror} ({path})"
        ) from None
    with source:
        yield source


def _size(source: BinaryIO) -> int | None:
    """The file's size for the progress bar; none for a pipe or a terminal."""
    try:
        status = os.fstat(source.fileno())
    except (OSError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None
