"""``cxone-processor simulate``: serve the simulated API until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import ssl

from processor.simulator.behaviour import (
    ACTION_STATUSES,
    DEFAULT_ACTIONS,
    Behaviour,
    BehaviourError,
    Latency,
    Window,
)
from processor.simulator.server import Simulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Behaviour()
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve HTTPS with this certificate chain (needs --tls-key)",
    )
    parser.add_argument(
        "--tls-key", metavar="PEM", help="the private key of --tls-cert"
    )

    auth = parser.add_argument_group("credentials")
    auth.add_argument(
        "--client-id",
        default=os.environ.get("CXONE_CLIENT_ID", defaults.client_id),
        help="accepted client id (default: $CXONE_CLIENT_ID or %(default)s)",
    )
    auth.add_argument(
        "--client-secret",
        default=os.environ.get("CXONE_CLIENT_SECRET", defaults.client_secret),
        help="accepted client secret (default: $CXONE_CLIENT_SECRET or a fixed one)",
    )
    auth.add_argument(
        "--token-lifetime",
        type=int,
        default=defaults.token_lifetime_s,
        metavar="SECONDS",
        help="lifetime of issued tokens (default: %(default)s)",
    )

    actions = parser.add_argument_group("actions")
    actions.add_argument(
        "--action",
        action="append",
        default=[],
        metavar="ID=STATUS",
        help="add or override an action, e.g. action_x=DRAFT (repeatable); known "
        f"by default: {', '.join(f'{k}={v}' for k, v in DEFAULT_ACTIONS.items())}",
    )
    actions.add_argument(
        "--any-action",
        choices=ACTION_STATUSES,
        help="status of every other valid action id (default: they are unknown, 404)",
    )

    jobs = parser.add_argument_group("job submissions")
    jobs.add_argument("--latency-ms", type=float, default=50.0, help="mean latency")
    jobs.add_argument(
        "--latency-jitter-ms", type=float, default=10.0, help="spread of the latency"
    )
    jobs.add_argument(
        "--latency-distribution",
        choices=("constant", "uniform", "normal", "exponential"),
        default="normal",
    )
    jobs.add_argument(
        "--rate-limit", type=float, metavar="PER_SECOND", help="global job rate limit"
    )
    jobs.add_argument(
        "--rate-burst", type=float, help="bucket size (default: a tenth of a second)"
    )
    jobs.add_argument(
        "--max-concurrency", type=int, help="most submissions answered at once"
    )
    jobs.add_argument(
        "--retry-after",
        choices=("seconds", "date", "absent"),
        default="seconds",
        help="form of Retry-After on a 429",
    )
    jobs.add_argument(
        "--error-rate", type=float, default=0.0, help="share answered 500 or 503"
    )
    jobs.add_argument(
        "--outage",
        action="append",
        default=[],
        metavar="START:DURATION",
        help="seconds after start when job and action requests get 503 (repeatable)",
    )
    jobs.add_argument(
        "--token-outage",
        action="append",
        default=[],
        metavar="START:DURATION",
        help="the same for the token endpoint",
    )
    jobs.add_argument("--seed", type=int, help="seed for latency and faults")


def behaviour_from(args: argparse.Namespace) -> Behaviour:
    """Build the behaviour the flags describe; raises ``BehaviourError``."""
    actions = dict(DEFAULT_ACTIONS)
    for item in args.action:
        action_id, sep, status = item.partition("=")
        if not sep:
            raise BehaviourError(f"--action {item!r} is not ID=STATUS")
        actions[action_id] = status.upper()

    return Behaviour(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime_s=args.token_lifetime,
        actions=actions,
        other_actions=args.any_action,
        latency=Latency(
            args.latency_ms, args.latency_jitter_ms, args.latency_distribution
        ),
        rate_limit_per_s=args.rate_limit,
        rate_burst=args.rate_burst,
        max_concurrency=args.max_concurrency,
        retry_after=args.retry_after,
        error_rate=args.error_rate,
        outages=tuple(Window.parse(text) for text in args.outage),
        token_outages=tuple(Window.parse(text) for text in args.token_outage),
        seed=args.seed,
    )


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server's SSL context for ``--tls-cert``/``--tls-key``, if given.

    Raises ``BehaviourError`` naming the flag when only one is given or the
    files cannot be used.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing = "--tls-cert" if cert is None else "--tls-key"
        raise BehaviourError(f"{missing} is required with the other TLS flag")

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise BehaviourError(
            f"--tls-cert {cert} and --tls-key {key} cannot be used: {exc}"
        ) from None
    return context


def main(args: argparse.Namespace) -> int:
    behaviour = behaviour_from(args)
    context = tls_context(args.tls_cert, args.tls_key)
    asyncio.run(_serve(behaviour, args.host, args.port, context))
    return 0


async def _serve(
    behaviour: Behaviour, host: str, port: int, context: ssl.SSLContext | None
) -> None:
    simulator = Simulator(behaviour, host=host, port=port, ssl_context=context)
    url = await simulator.start()
    # The first line of stdout is the address, for scripts that start us.
    print(f"simulator listening on {url}", flush=True)

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        with contextlib.suppress(Exception):
            await simulator.stop()
