"""``cxone-processor broker``: a local Kafka for development, until stopped."""

from __future__ import annotations

import argparse
import signal
import threading

from processor.localkafka.cluster import LocalKafka
from processor.localkafka.jars import classpath


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nodes", type=int, default=1, help="brokers in the cluster (default: 1)"
    )
    parser.add_argument(
        "--fetch-only",
        action="store_true",
        help="only fetch the broker's jars with Maven, then exit",
    )


def main(args: argparse.Namespace) -> int:
    if args.fetch_only:
        jars = classpath().split(":")
        print(f"Kafka broker jars ready: {len(jars)} jars")
        return 0

    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())

    with LocalKafka(args.nodes) as cluster:
        print(f"Kafka listening on {cluster.bootstrap_servers}", flush=True)
        print(
            "Set KAFKA_BOOTSTRAP_SERVERS to that; Ctrl-C stops it and deletes its data."
        )
        stopped.wait()
    return 0
