"""``cxone-processor actions``: read a Data Action, or patch it from a JSON file.

``get ID`` prints the action as CXone describes it. ``patch ID --file F``
checks F against ``schemas/action_patch.schema.json`` first, and sends
nothing unless every field passes; then it prints the updated action. The
settings are the processor's (``CXONE_*``, from the environment or
``--config``); none of Kafka's are needed. An answer the command cannot use
is explained in one line with what to check, as is a refused credential.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
from pathlib import Path
from typing import Any

import httpx

from processor import action_patch
from processor import settings as settings_module
from processor.auth import TokenSource
from processor.cxone import CxoneApi
from processor.errors import (
    ApiError,
    AuthenticationError,
    InvalidActionPatch,
    ProcessorError,
    RetryableApiError,
    ThrottledError,
    UnauthorizedError,
)
from processor.jobs import ACTION_ID_PATTERN
from processor.logs import redact
from processor.settings import Settings

# The scope each request needs, named when CXone answers 403.
NEEDED_SCOPE = {"GET": "data-actions:read", "PATCH": "data-actions:write"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings (the environment wins over it)",
    )
    verbs = parser.add_subparsers(
        title="actions", dest="verb", required=True, metavar="VERB"
    )

    summary = "print an action as CXone describes it, in JSON"
    get = verbs.add_parser("get", parents=[common], help=summary, description=summary)
    get.add_argument("action_id", metavar="ID", type=_action_id)

    patch = verbs.add_parser(
        "patch",
        parents=[common],
        help="check a JSON patch, send it, and print the updated action",
        description='The file holds {"id", "status", "config"}, as printed by '
        "get; it is checked field by field before anything is sent.",
    )
    patch.add_argument("action_id", metavar="ID", type=_action_id)
    patch.add_argument(
        "--file", required=True, metavar="FILE", help="the patch as JSON ('-': stdin)"
    )


def main(args: argparse.Namespace) -> int:
    action_id: str = args.action_id
    patch: dict[str, Any] | None = None
    if args.verb == "patch":
        try:
            patch = _patch_from(args.file, action_id)
        except InvalidActionPatch as exc:
            _report(exc)
            return 2
        except OSError as exc:
            problem = f"--file {args.file} cannot be read: {exc.strerror}"
            print(f"cxone-processor actions: {problem}", file=sys.stderr)
            return 2

    settings = settings_module.load(config_file=args.config)
    try:
        action = asyncio.run(_send(settings, action_id, patch))
    except ApiError as exc:
        method = "GET" if patch is None else "PATCH"
        raise ProcessorError(explain(exc, method, action_id, settings)) from None

    print(json.dumps(action, indent=2))
    return 0


def explain(error: ApiError, method: str, action_id: str, settings: Settings) -> str:
    """What went wrong with ``method`` on ``action_id``, and what to check."""
    request = f"{method} {action_id}"
    base = settings.cxone_base_url
    if isinstance(error, AuthenticationError):
        return f"no access token for {request}: {error}"
    if isinstance(error, RetryableApiError) and error.status is None:
        return f"cannot reach CXONE_BASE_URL ({base}): {error}"
    if isinstance(error, RetryableApiError):
        return f"CXone failed to answer {request} ({error}); try again later"
    return f"{request} {_refusal(error, method, settings)}"


def _refusal(error: ApiError, method: str, settings: Settings) -> str:
    base = settings.cxone_base_url
    if isinstance(error, ThrottledError):
        return (
            f"was throttled (429): CXone asks to wait {error.retry_after_s:.0f} s "
            "(Retry-After) before trying again; the processor's job submissions "
            "count against the same limit"
        )
    if isinstance(error, UnauthorizedError):
        return (
            "was refused (401): CXone did not accept the access token it had just "
            "issued; check that CXONE_CLIENT_ID and CXONE_CLIENT_SECRET are a "
            f"client of the organisation behind CXONE_BASE_URL ({base})"
        )
    if error.status == 403:
        return f"is forbidden (403): {_missing_scope(method, settings)}"
    if error.status == 404:
        return (
            f"was answered 404: CXone has no such action at CXONE_BASE_URL ({base}); "
            "check the id (ids are case-sensitive) and that the URL is your "
            "organisation's"
        )
    return f"was rejected ({error}): {redact(error.body)}"


def _missing_scope(method: str, settings: Settings) -> str:
    needed = NEEDED_SCOPE[method]
    scope = settings.cxone_scope
    if needed not in scope.split():
        return f"the token lacks {needed}; add it to CXONE_SCOPE (now {scope!r})"
    return (
        f"the token lacks {needed} although CXONE_SCOPE asks for it; grant the "
        "scope to the client in CXone Admin, and check that the action belongs "
        "to the client's organisation"
    )


def _patch_from(path: str, action_id: str) -> dict[str, Any]:
    source = "stdin" if path == "-" else path
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return action_patch.checked(action_patch.parse(text, source), action_id, source)


async def _send(
    settings: Settings, action_id: str, patch: dict[str, Any] | None
) -> dict[str, Any]:
    verify: ssl.SSLContext | bool = True
    if settings.cxone_ca_bundle:
        verify = ssl.create_default_context(cafile=settings.cxone_ca_bundle)
    timeout = httpx.Timeout(settings.request_timeout_s)
    transport = httpx.AsyncHTTPTransport(verify=verify)

    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        api = CxoneApi(
            transport, TokenSource(client, settings), settings.cxone_base_url, timeout
        )
        if patch is None:
            return await api.describe_action(action_id)
        return await api.patch_action(action_id, patch)


def _action_id(text: str) -> str:
    # The contract's pattern, checked before the id can reach a URL.
    if not ACTION_ID_PATTERN.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an action id (^[A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}$)"
        )
    return text


def _report(error: InvalidActionPatch) -> None:
    lines = [
        f"cxone-processor actions: {error.source} is not a valid action patch; "
        "nothing was sent:",
        *(f"  {problem}" for problem in error.problems),
    ]
    print("\n".join(lines), file=sys.stderr)
