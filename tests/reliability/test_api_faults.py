"""The API failing in the ways it is known to: no loss, and not one dead letter.

An outage, random 5xx, tokens that expire every few seconds and a token
endpoint that is down are all the API's trouble, not the jobs': every request
must end in a result, and the dead-letter topic must stay empty.
"""

from __future__ import annotations

from typing import Any

from processor.simulator import Behaviour, Latency
from tests.integration.conftest import Rig, RigFactory
from tests.reliability.support import (
    Account,
    account,
    finish,
    publish,
    scaled,
    seeded_random,
    stop_all,
    wait_for_jobs,
)

REQUESTS = scaled(6000, 60_000)
OUTAGE_S = scaled(8.0, 30.0)
TOKEN_OUTAGE_S = scaled(6.0, 20.0)
TOKEN_LIFETIME_S = 2
FAST = Latency(2.5, 2.5, "uniform")
# Jobs of 20 to 30 ms, at most 16 at once: no more than 800 jobs/s, so a run
# of REQUESTS lasts REQUESTS / 800 seconds at least, whatever the machine.
SLOW = Latency(25, 5, "uniform")
SLOW_SETTINGS = {"PROCESSOR_MAX_IN_FLIGHT": "16"}
SLOW_RUN_S = REQUESTS / (16 / 0.020)


def test_an_outage_mid_run_loses_nothing_and_dead_letters_nothing(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=FAST), partitions=4)
    expected = set(publish(world, REQUESTS))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="64")
    outage_at = wait_for_jobs(world, REQUESTS // 4)
    world.simulator.start_outage(OUTAGE_S)
    ledger, stats = settle(world, [processor], expected)

    print(
        f"{OUTAGE_S:.0f} s outage at {outage_at} jobs: {ledger.summary()}; "
        f"{stats['outage_rejections']} submissions refused by the outage"
    )
    assert outage_at < REQUESTS
    assert stats["outage_rejections"] >= 1
    assert_nothing_lost_and_nothing_dead_lettered(ledger, stats)


def test_five_percent_random_faults_for_a_whole_run_dead_letter_nothing(
    rig: RigFactory,
) -> None:
    seed = seeded_random("faults").randrange(2**32)
    world = rig(Behaviour(latency=FAST, error_rate=0.05, seed=seed), partitions=4)
    expected = set(publish(world, REQUESTS))

    # Eight attempts, not five: five faults in a row on one job (one chance in
    # 3 million at 5%) would be a dead letter the design allows.
    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="64", PROCESSOR_MAX_ATTEMPTS="8")
    ledger, stats = settle(world, [processor], expected)

    print(f"5% faults: {ledger.summary()}; {stats['faults']} faults injected")
    assert stats["faults"] >= 1
    assert_nothing_lost_and_nothing_dead_lettered(ledger, stats)


def test_tokens_expiring_every_two_seconds_dead_letter_nothing(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=SLOW, token_lifetime_s=TOKEN_LIFETIME_S))
    expected = set(publish(world, REQUESTS))

    processor = world.start(**SLOW_SETTINGS)
    ledger, stats = settle(world, [processor], expected)

    print(
        f"tokens of {TOKEN_LIFETIME_S} s: {ledger.summary()}; "
        f"{stats['tokens_issued']} tokens, {stats['expired_tokens']} expired ones used"
    )
    # The run outlasts SLOW_RUN_S, and no token outlasts TOKEN_LIFETIME_S.
    assert stats["tokens_issued"] >= SLOW_RUN_S // TOKEN_LIFETIME_S
    assert_nothing_lost_and_nothing_dead_lettered(ledger, stats)


def test_the_token_endpoint_down_for_a_while_dead_letters_nothing(
    rig: RigFactory,
) -> None:
    world = rig(Behaviour(latency=SLOW, token_lifetime_s=TOKEN_LIFETIME_S))
    expected = set(publish(world, REQUESTS))

    processor = world.start(**SLOW_SETTINGS)
    outage_at = wait_for_jobs(world, REQUESTS // 4)
    world.simulator.start_outage(TOKEN_OUTAGE_S, target="token")
    ledger, stats = settle(world, [processor], expected)

    print(
        f"{TOKEN_OUTAGE_S:.0f} s token endpoint outage at {outage_at} jobs: "
        f"{ledger.summary()}; {stats['token_failures']} token requests refused"
    )
    # The token in hand expires during the outage, long before the rest of
    # the run can be done, so a new one must have been asked for in it.
    assert outage_at < REQUESTS
    assert stats["token_failures"] >= 1
    assert_nothing_lost_and_nothing_dead_lettered(ledger, stats)


def settle(
    world: Rig, processes: list[Any], expected: set[str]
) -> tuple[Account, dict[str, Any]]:
    """Run to the end, stop the processors, and account for every request."""
    finish(world, len(expected))
    exits = stop_all(processes)
    assert exits == [0] * len(processes)
    return account(world, expected), world.simulator.stats()


def assert_nothing_lost_and_nothing_dead_lettered(
    ledger: Account, stats: dict[str, Any]
) -> None:
    assert ledger.missing == set()
    assert ledger.unexpected == set()
    assert dict(ledger.dead_letters) == {}
    assert stats["accepted"] == len(ledger.expected)
    assert ledger.requests_with_two_jobs == set()
