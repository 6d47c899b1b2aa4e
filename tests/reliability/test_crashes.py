"""The processor killed with SIGKILL again and again: nothing lost, no job twice."""

from __future__ import annotations

import random
import time

from processor.simulator import Behaviour, Latency
from tests.integration.conftest import RigFactory
from tests.reliability.support import (
    accepted,
    account,
    finish,
    publish,
    scaled,
    seeded_random,
    stalled,
    stop_all,
    wait_for_jobs,
)

REQUESTS = scaled(20_000, 200_000)
KILLS = scaled(5, 10)
MAX_IN_FLIGHT = 64
BUFFER_MAX_RECORDS = 2000


def test_sigkill_at_random_moments_loses_nothing_and_creates_no_job_twice(
    rig: RigFactory,
) -> None:
    rng = seeded_random("crashes")
    world = rig(Behaviour(latency=Latency(2.5, 2.5, "uniform")), partitions=8)
    expected = set(publish(world, REQUESTS))
    settings = {
        "PROCESSOR_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "PROCESSOR_BUFFER_MAX_RECORDS": str(BUFFER_MAX_RECORDS),
    }

    current = world.start(**settings)
    killed_at = []
    for threshold in kill_points(REQUESTS, KILLS, rng):
        wait_for_jobs(world, threshold)
        # A moment inside the stretch of work, not on the poll's beat.
        time.sleep(rng.uniform(0.0, 0.3))
        assert current.running, stalled(world, "the processor ended by itself")
        current.kill()
        killed_at.append(accepted(world.simulator))
        current = world.start(**settings)

    finish(world, REQUESTS)
    exits = stop_all(world.processes)
    stats = world.simulator.stats()
    ledger = account(world, expected)

    bound = (MAX_IN_FLIGHT + BUFFER_MAX_RECORDS) * KILLS
    print(
        f"crashes: {KILLS} SIGKILLs at {killed_at} jobs created; {ledger.summary()}; "
        f"{stats['duplicates']} repeated submissions answered from the idempotency "
        f"store; duplicate results allowed up to {bound}"
    )
    assert all(count < REQUESTS for count in killed_at), "every kill was mid-run"
    assert exits == [0]
    assert ledger.missing == set()
    assert ledger.unexpected == set()
    assert sum(ledger.dead_letters.values()) == 0
    assert stats["accepted"] == REQUESTS
    assert stats["accepted_without_key"] == 0
    assert ledger.requests_with_two_jobs == set()
    assert ledger.duplicate_results <= bound


def kill_points(total: int, kills: int, rng: random.Random) -> list[int]:
    """A random point inside each of ``kills`` equal stretches of the run.

    The last stretch is left without a kill, so the run ends under a
    processor that has been restarted.
    """
    stretch = total / (kills + 1)
    return [int(stretch * (k + rng.uniform(0.2, 0.8))) for k in range(kills)]
