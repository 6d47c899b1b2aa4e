"""What ``cxone-processor actions`` tells an operator when CXone says no."""

from __future__ import annotations

import dataclasses

import pytest

from processor import actions_cli
from processor.actions_cli import explain
from processor.errors import (
    ApiError,
    AuthenticationError,
    RejectedError,
    RetryableApiError,
    ThrottledError,
    UnauthorizedError,
)
from processor.logs import Redactor
from tests.fakes import CXONE_BASE, cxone_settings


def test_a_401_points_at_the_client_credentials() -> None:
    told = explain(
        UnauthorizedError("401 unauthorized", 401), "GET", "action_a", cxone_settings()
    )

    assert told.startswith("GET action_a was refused (401)")
    assert "CXONE_CLIENT_ID and CXONE_CLIENT_SECRET" in told
    assert CXONE_BASE in told


def test_refused_credentials_keep_the_token_endpoints_own_advice() -> None:
    refused = AuthenticationError(
        "CXone refused the client credentials (401 invalid_client): check "
        "CXONE_CLIENT_ID, CXONE_CLIENT_SECRET and CXONE_SCOPE",
        401,
    )

    told = explain(refused, "PATCH", "action_a", cxone_settings())

    assert told.startswith("no access token for PATCH action_a: CXone refused")
    assert "CXONE_CLIENT_SECRET" in told


def test_a_403_on_patch_names_the_write_scope_missing_from_the_setting() -> None:
    settings = dataclasses.replace(
        cxone_settings(), cxone_scope="data-actions:read data-actions:execute"
    )

    told = explain(RejectedError("403 Forbidden", 403), "PATCH", "a", settings)

    assert told == (
        "PATCH a is forbidden (403): the token lacks data-actions:write; add it to "
        "CXONE_SCOPE (now 'data-actions:read data-actions:execute')"
    )


def test_a_403_with_the_scope_asked_for_points_at_the_clients_grant() -> None:
    told = explain(RejectedError("403 Forbidden", 403), "GET", "a", cxone_settings())

    assert "the token lacks data-actions:read although CXONE_SCOPE asks" in told
    assert "grant the scope to the client" in told


def test_a_429_says_how_long_to_wait() -> None:
    throttled = ThrottledError("429 throttled, retry after 7.0 s", 7.0)

    told = explain(throttled, "PATCH", "action_a", cxone_settings())

    assert told.startswith("PATCH action_a was throttled (429)")
    assert "wait 7 s (Retry-After)" in told


def test_a_404_names_the_action_and_the_base_url() -> None:
    told = explain(
        RejectedError("404 Not Found", 404), "GET", "acton_a", cxone_settings()
    )

    assert told.startswith("GET acton_a was answered 404")
    assert f"CXONE_BASE_URL ({CXONE_BASE})" in told
    assert "case-sensitive" in told


@pytest.mark.parametrize(
    ("error", "start"),
    [
        (RetryableApiError("GET failed: ConnectError: refused"), "cannot reach"),
        (RetryableApiError("503 Service Unavailable", 503), "CXone failed to answer"),
    ],
)
def test_faults_and_unreachable_apis_are_told_apart(
    error: ApiError, start: str
) -> None:
    assert explain(error, "GET", "a", cxone_settings()).startswith(start)


def test_another_refusal_shows_the_answer_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redactor = Redactor()
    redactor.add("leaked-token")
    monkeypatch.setattr(actions_cli, "redact", redactor)
    rejected = RejectedError(
        "400 Bad Request", 400, '{"message": "bad config", "echo": "leaked-token"}'
    )

    told = explain(rejected, "PATCH", "a", cxone_settings())

    assert told.startswith("PATCH a was rejected (400 Bad Request): ")
    assert "bad config" in told
    assert "leaked-token" not in told
