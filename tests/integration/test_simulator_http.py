"""The simulator over real HTTP: the limits, faults and counts clients meet."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime

import httpx

from processor.simulator import Behaviour, SimulatorThread
from tests.support import job_body, token

JOBS = "/api/v2/data-actions/action_a/jobs"


def submit(client: httpx.Client, bearer: str, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}", "Idempotency-Key": key}
    return client.post(JOBS, headers=headers, json=job_body())


def test_rate_limit_answers_429_with_retry_after() -> None:
    behaviour = Behaviour(rate_limit_per_s=2, rate_burst=2)
    with SimulatorThread(behaviour) as sim, httpx.Client(base_url=sim.url) as client:
        bearer = token(client, behaviour)

        answers = [submit(client, bearer, f"k-{i}") for i in range(5)]
        stats = sim.stats()

    assert [a.status_code for a in answers[:2]] == [202, 202]
    throttled = [a for a in answers if a.status_code == 429]
    assert len(throttled) == stats["throttled_rate"] >= 2
    assert all(int(a.headers["Retry-After"]) >= 1 for a in throttled)


def test_retry_after_as_an_http_date_is_in_the_future() -> None:
    behaviour = Behaviour(rate_limit_per_s=1, rate_burst=1, retry_after="date")
    with SimulatorThread(behaviour) as sim, httpx.Client(base_url=sim.url) as client:
        bearer = token(client, behaviour)
        submit(client, bearer, "k-1")
        throttled = submit(client, bearer, "k-2")

    assert throttled.status_code == 429
    assert (
        parsedate_to_datetime(throttled.headers["Retry-After"]).timestamp()
        > time.time()
    )


def test_an_expired_token_is_answered_401() -> None:
    behaviour = Behaviour(token_lifetime_s=1)
    with SimulatorThread(behaviour) as sim, httpx.Client(base_url=sim.url) as client:
        bearer = token(client, behaviour)
        fresh = submit(client, bearer, "k-1")
        time.sleep(1.1)
        expired = submit(client, bearer, "k-2")
        renewed = submit(client, token(client, behaviour), "k-2")
        stats = sim.stats()

    assert fresh.status_code == 202
    assert expired.status_code == 401
    assert expired.json()["message"] == "token expired"
    assert renewed.status_code == 202
    assert stats["expired_tokens"] == 1


async def test_the_concurrency_cap_refuses_the_excess_and_counts_the_peak() -> None:
    behaviour = Behaviour().changed(
        {"max_concurrency": 3, "latency": {"mean_ms": 300, "distribution": "constant"}}
    )
    with SimulatorThread(behaviour) as sim:
        async with httpx.AsyncClient(base_url=sim.url) as client:
            form = {
                "grant_type": "client_credentials",
                "client_id": behaviour.client_id,
                "client_secret": behaviour.client_secret,
            }
            bearer = (await client.post("/oauth/v2/token", data=form)).json()[
                "access_token"
            ]
            headers = {"Authorization": f"Bearer {bearer}"}

            answers = await asyncio.gather(
                *(
                    client.post(
                        JOBS,
                        headers={**headers, "Idempotency-Key": f"k-{i}"},
                        json=job_body(),
                    )
                    for i in range(8)
                )
            )
        stats = sim.stats()

    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 3 + [429] * 5
    assert stats["throttled_concurrency"] == 5
    # The three held ones and at least one refused arrival were in at once.
    assert 4 <= stats["max_concurrent"] <= 8
    assert stats["accepted"] == 3


def test_an_outage_answers_503_until_it_ends() -> None:
    behaviour = Behaviour()
    with SimulatorThread(behaviour) as sim, httpx.Client(base_url=sim.url) as client:
        bearer = token(client, behaviour)

        outage = client.post("/_simulator/outage", json={"duration_s": 0.5})
        during = submit(client, bearer, "k-1")
        time.sleep(0.6)
        after = submit(client, bearer, "k-1")
        stats = client.get("/_simulator/stats").json()

    assert outage.status_code == 200
    assert during.status_code == 503
    assert after.status_code == 202
    assert stats["outage_rejections"] == 1
    assert stats["accepted"] == 1


def test_a_scheduled_outage_starts_and_ends_on_time() -> None:
    behaviour = Behaviour().changed({"outages": ["0.3:0.4"]})
    with SimulatorThread(behaviour) as sim, httpx.Client(base_url=sim.url) as client:
        bearer = token(client, behaviour)
        statuses: list[int] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            statuses.append(submit(client, bearer, f"k-{len(statuses)}").status_code)
            time.sleep(0.02)

    first_503 = statuses.index(503)
    last_503 = len(statuses) - 1 - statuses[::-1].index(503)
    assert set(statuses[:first_503]) == {202}
    assert set(statuses[first_503 : last_503 + 1]) == {503}
    assert set(statuses[last_503 + 1 :]) == {202}
    assert last_503 < len(statuses) - 1


def test_duplicates_return_the_same_job_and_are_counted() -> None:
    behaviour = Behaviour()
    with SimulatorThread(behaviour) as sim, httpx.Client(base_url=sim.url) as client:
        bearer = token(client, behaviour)
        first = submit(client, bearer, "req-1")
        again = submit(client, bearer, "req-1")
        stats = sim.stats()

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert stats["duplicates"] == 1
    assert stats["accepted"] == 1
    assert stats["submissions"] == 2


def test_requests_outside_the_documented_paths_are_404_and_counted() -> None:
    behaviour = Behaviour(other_actions="PUBLISHED")
    odd_targets = [
        "/api/v2/data-actions/..%2Fx/jobs",
        "/api/v2/data-actions/%2e%2e/jobs",
        "/api/v2/data-actions/a/b/jobs",
        "/api/v2/data-actions/action%3Fx=1/jobs",
        "/api/v2/data-actions/action_a/jobs?x=1",
        "/api/v2/data-actions/%D0%B0ction/jobs",
        "/api/v2/other",
    ]
    with SimulatorThread(behaviour) as sim, httpx.Client(base_url=sim.url) as client:
        bearer = token(client, behaviour)
        headers = {"Authorization": f"Bearer {bearer}"}
        statuses = [
            client.send(
                client.build_request(
                    "POST",
                    httpx.URL(sim.url + target),
                    headers=headers,
                    json=job_body(),
                )
            ).status_code
            for target in odd_targets
        ]
        wrong_method = client.delete("/api/v2/data-actions/action_a", headers=headers)
        stats = sim.stats()

    assert statuses == [404] * len(odd_targets)
    assert wrong_method.status_code == 404
    assert stats["unknown_paths"] == len(odd_targets) + 1
    assert stats["accepted"] == 0


def test_behaviour_can_be_changed_over_http_and_bad_changes_are_refused() -> None:
    with SimulatorThread(Behaviour()) as sim, httpx.Client(base_url=sim.url) as client:
        changed = client.post("/_simulator/config", json={"rate_limit_per_s": 100})
        refused = client.post("/_simulator/config", json={"error_rate": 7})
        current = client.get("/_simulator/config").json()

    assert changed.status_code == 200
    assert refused.status_code == 400
    assert "error_rate" in refused.json()["message"]
    assert current["rate_limit_per_s"] == 100
    assert current["client_secret"] == "***"
