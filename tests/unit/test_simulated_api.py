"""The simulated API's rules, on a fake clock and without HTTP."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime

import pytest

from processor.simulator import Behaviour, SimulatedApi, Window
from tests.fakes import FakeTime

JOB = json.dumps({"input": {"sourceId": "s"}, "options": {"async": True}}).encode()


def make_api(**rules: object) -> tuple[SimulatedApi, FakeTime]:
    clock = FakeTime(1000)
    api = SimulatedApi(
        Behaviour().changed(rules), clock=clock, wall_clock=lambda: 1_800_000_000.0
    )
    return api, clock


def bearer(api: SimulatedApi, scope: str | None = None) -> str:
    behaviour = api.behaviour
    form = {
        "grant_type": "client_credentials",
        "client_id": behaviour.client_id,
        "client_secret": behaviour.client_secret,
    }
    if scope is not None:
        form["scope"] = scope
    reply = api.issue_token(form)
    assert reply.status == 200
    return f"Bearer {reply.body['access_token']}"


def submit(
    api: SimulatedApi,
    auth: str | None,
    key: str | None = "k-1",
    action: str = "action_a",
) -> int:
    reply = api.begin_job(auth, action, key, JOB)
    api.end_job(action)
    return reply.status


def test_tokens_are_issued_only_for_the_configured_client() -> None:
    api, _ = make_api()
    good = {"grant_type": "client_credentials", "client_id": "simulator-client"}

    wrong_secret = api.issue_token({**good, "client_secret": "nope"})
    wrong_grant = api.issue_token(
        {**good, "grant_type": "password", "client_secret": "simulator-secret"}
    )
    issued = api.issue_token({**good, "client_secret": "simulator-secret"})

    assert wrong_secret.status == 401
    assert wrong_grant.status == 400
    assert issued.status == 200
    assert issued.body["token_type"] == "Bearer"
    assert issued.body["expires_in"] == 3600
    assert api.counters.tokens_issued == 1
    assert api.counters.token_failures == 2


def test_a_token_is_refused_with_401_once_its_lifetime_is_over() -> None:
    api, clock = make_api(token_lifetime_s=5)
    auth = bearer(api)

    assert submit(api, auth, "k-1") == 202
    clock.now += 5.0
    assert submit(api, auth, "k-2") == 401
    assert api.counters.expired_tokens == 1
    assert submit(api, "Bearer made-up", "k-3") == 401
    assert submit(api, None, "k-4") == 401
    assert api.counters.unauthorized == 3


def test_a_token_without_the_execute_scope_gets_403_on_jobs() -> None:
    api, _ = make_api()
    auth = bearer(api, scope="data-actions:read")

    assert api.read_action(auth, "action_a").status == 200
    assert submit(api, auth) == 403
    assert api.counters.forbidden == 1


def test_a_scope_the_client_does_not_have_is_refused() -> None:
    api, _ = make_api(allowed_scopes=["data-actions:read"])
    form = {
        "grant_type": "client_credentials",
        "client_id": "simulator-client",
        "client_secret": "simulator-secret",
        "scope": "data-actions:read data-actions:execute",
    }

    reply = api.issue_token(form)

    assert reply.status == 400
    assert reply.body == {"error": "invalid_scope", "scope": "data-actions:execute"}


def test_actions_are_served_by_status_and_unknown_ones_are_404() -> None:
    api, _ = make_api(
        actions={"pub": "PUBLISHED", "draft": "DRAFT", "old": "DEPRECATED"}
    )
    auth = bearer(api)

    statuses = {
        a: api.read_action(auth, a).body.get("status") for a in ("pub", "draft", "old")
    }
    unknown = api.read_action(auth, "missing")

    assert statuses == {"pub": "PUBLISHED", "draft": "DRAFT", "old": "DEPRECATED"}
    assert unknown.status == 404
    assert submit(api, auth, action="missing") == 404
    assert submit(api, auth, action="draft") == 409
    assert api.counters.unknown_actions == 2
    assert api.counters.unpublished == 1


def test_other_actions_can_be_treated_as_published() -> None:
    api, _ = make_api(other_actions="PUBLISHED")

    assert submit(api, bearer(api), action="anything_else") == 202


def test_a_patch_is_validated_then_changes_the_action() -> None:
    api, _ = make_api()
    auth = bearer(api)
    good = {"id": "action_a", "status": "DRAFT", "config": {"maxRetries": 3}}

    wrong_id = api.patch_action(
        auth, "action_a", json.dumps({**good, "id": "b"}).encode()
    )
    wrong_status = api.patch_action(
        auth, "action_a", json.dumps({**good, "status": "ON"}).encode()
    )
    patched = api.patch_action(auth, "action_a", json.dumps(good).encode())

    assert (wrong_id.status, wrong_status.status) == (400, 400)
    assert patched.status == 200
    assert patched.body["status"] == "DRAFT"
    assert patched.body["config"] == {"maxRetries": 3}
    assert patched.body["updatedTimestamp"].endswith("Z")
    assert submit(api, auth) == 409


def test_the_rate_limit_answers_429_with_retry_after_in_seconds() -> None:
    api, clock = make_api(rate_limit_per_s=2, rate_burst=2)
    auth = bearer(api)

    first = [submit(api, auth, f"k-{i}") for i in range(3)]
    throttled = api.begin_job(auth, "action_a", "k-9", JOB)
    api.end_job("action_a")
    clock.now += 0.5

    assert first == [202, 202, 429]
    assert throttled.status == 429
    assert throttled.headers["Retry-After"] == "1"
    assert submit(api, auth, "k-10") == 202
    assert api.counters.throttled_rate == 2
    assert api.counters.accepted == 3


def test_retry_after_can_be_an_http_date_or_absent() -> None:
    dated, _ = make_api(rate_limit_per_s=1, rate_burst=1, retry_after="date")
    absent, _ = make_api(rate_limit_per_s=1, rate_burst=1, retry_after="absent")
    for api in (dated, absent):
        submit(api, bearer(api), "k-1")

    by_date = dated.begin_job(bearer(dated), "action_a", "k-2", JOB)
    without = absent.begin_job(bearer(absent), "action_a", "k-2", JOB)

    moment = parsedate_to_datetime(by_date.headers["Retry-After"])
    assert by_date.status == 429
    assert moment.timestamp() == 1_800_000_001
    assert without.status == 429
    assert "Retry-After" not in without.headers


def test_the_concurrency_cap_answers_429_while_too_many_are_in_flight() -> None:
    api, _ = make_api(max_concurrency=2)
    auth = bearer(api)

    held = [api.begin_job(auth, "action_a", f"k-{i}", JOB) for i in range(3)]
    api.end_job("action_a")  # the refused one finishes at once
    api.end_job("action_a")
    after_one_left = api.begin_job(auth, "action_a", "k-9", JOB)

    assert [reply.status for reply in held] == [202, 202, 429]
    assert held[2].headers["Retry-After"] == "1"
    assert after_one_left.status == 202
    assert api.counters.throttled_concurrency == 1
    assert api.counters.max_concurrent == 3
    assert api.counters.max_concurrent_by_action == {"action_a": 3}


def test_it_sums_the_time_submissions_are_held_including_those_still_held() -> None:
    api, clock = make_api()
    auth = bearer(api)

    api.begin_job(auth, "action_a", "k-1", JOB)
    clock.now += 0.5
    api.begin_job(auth, "action_a", "k-2", JOB)
    clock.now += 0.25
    api.end_job("action_a")
    clock.now += 1.0

    # Two held from 0.5 s to 0.75 s, one before and one after: 2 s in all.
    assert api.stats()["in_flight_s"] == pytest.approx(2.0)


def test_the_error_rate_injects_500s_and_503s() -> None:
    api, _ = make_api(error_rate=0.3, seed=11)
    auth = bearer(api)

    statuses = [submit(api, auth, f"k-{i}") for i in range(2000)]

    faults = [s for s in statuses if s >= 500]
    assert set(faults) == {500, 503}
    assert 0.25 < len(faults) / len(statuses) < 0.35
    assert api.counters.faults == len(faults)
    assert api.counters.accepted == statuses.count(202)


def test_scheduled_outages_answer_503_then_end() -> None:
    api, clock = make_api(outages=[Window(10, 5)], token_outages=[Window(20, 5)])
    auth = bearer(api)

    before = submit(api, auth, "k-1")
    clock.now += 12
    during = submit(api, auth, "k-2")
    clock.now += 4
    after = submit(api, auth, "k-3")
    clock.now += 5
    token_down = api.issue_token({"grant_type": "client_credentials"})

    assert (before, during, after) == (202, 503, 202)
    assert api.counters.outage_rejections == 1
    assert token_down.status == 503


def test_an_outage_can_be_started_on_demand() -> None:
    api, clock = make_api()
    auth = bearer(api)

    api.start_outage(3.0)
    during = submit(api, auth, "k-1")
    clock.now += 3.0

    assert during == 503
    assert submit(api, auth, "k-2") == 202


def test_a_repeated_idempotency_key_returns_the_same_job_and_counts_a_duplicate() -> (
    None
):
    api, _ = make_api()
    auth = bearer(api)

    first = api.begin_job(auth, "action_a", "req-1", JOB)
    again = api.begin_job(auth, "action_a", "req-1", JOB)
    other = api.begin_job(auth, "action_a", "req-2", JOB)
    unkeyed = [api.begin_job(auth, "action_a", None, JOB) for _ in range(2)]

    assert first.status == again.status == 202
    assert again.body == first.body
    assert other.body["id"] != first.body["id"]
    assert unkeyed[0].body["id"] != unkeyed[1].body["id"]
    assert api.counters.duplicates == 1
    assert api.counters.accepted == 4
    assert api.counters.accepted_without_key == 2


def test_an_accepted_job_answers_in_the_contract_shape_after_its_latency() -> None:
    api, _ = make_api(
        latency={"mean_ms": 40, "jitter_ms": 0, "distribution": "constant"}
    )

    reply = api.begin_job(bearer(api), "action_a", "k", JOB)

    assert reply.status == 202
    assert set(reply.body) == {"id", "actionId", "status", "createdTimestamp"}
    assert reply.body["status"] == "QUEUED"
    assert reply.body["actionId"] == "action_a"
    assert reply.delay_s == pytest.approx(0.040)


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"input": 3}', b'{"options": {}}']
)
def test_a_malformed_job_body_is_400(body: bytes) -> None:
    api, _ = make_api()

    reply = api.begin_job(bearer(api), "action_a", "k", body)

    assert reply.status == 400
    assert api.counters.bad_requests == 1
    assert api.counters.accepted == 0


def test_reset_clears_counts_and_jobs_but_keeps_the_rules() -> None:
    api, _ = make_api(
        rate_limit_per_s=50, latency={"mean_ms": 5, "distribution": "constant"}
    )
    submit(api, bearer(api))

    api.reset()

    assert api.stats()["submissions"] == 0
    assert api.stats()["jobs_stored"] == 0
    assert api.behaviour.rate_limit_per_s == 50
