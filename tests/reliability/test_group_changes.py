"""Instances killed and added in one group: no loss, commits catch up, caps hold.

The cap matrix is per instance, so across the group the API may see up to
cap x live instances of an action at once, and never more. A killed
instance's requests already at the API count as live for a moment after it.
"""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient, ConsumerGroupDescription

from processor.simulator import Behaviour, Latency
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import request, wait_until
from tests.reliability.support import (
    Lifetimes,
    account,
    check_caps,
    finish,
    publish,
    request_ids,
    scaled,
    seeded_random,
    stalled,
    stop_all,
    wait_for_jobs,
)

REQUESTS = scaled(6000, 60_000)
ACTIONS = ("action_a", "action_b", "action_c")
CAPS = {"action_a": 2, "action_b": 3, "*": 4}
# Far above any latency drawn below: how long a killed instance's requests
# may still be answered by the API.
LINGER_S = 1.0
DOOMED_SESSION_S = 10


@pytest.mark.parametrize("instances", [2, 3])
def test_a_member_killed_and_another_added_lose_nothing_and_keep_the_caps(
    rig: RigFactory, instances: int
) -> None:
    rng = seeded_random(f"group of {instances}")
    world = rig(Behaviour(latency=Latency(10, 5, "uniform")), partitions=12)
    action_of = publish(world, REQUESTS, ACTIONS)
    settings = {
        "PROCESSOR_MAX_IN_FLIGHT": "16",
        "PROCESSOR_ACTION_CONCURRENCY": ",".join(f"{a}={c}" for a, c in CAPS.items()),
    }
    lifetimes = Lifetimes()

    members = []
    for _ in range(instances):
        members.append((lifetimes.started(), world.start(**settings)))
    wait_for_jobs(world, REQUESTS // 4)
    index, victim = members.pop(rng.randrange(len(members)))
    assert victim.running, stalled(world, "an instance ended by itself")
    victim.kill()
    lifetimes.ended(index, LINGER_S)
    wait_for_jobs(world, REQUESTS // 2)
    members.append((lifetimes.started(), world.start(**settings)))

    finish(world, REQUESTS)
    exits = stop_all(process for _, process in members)
    stats = world.simulator.stats()
    timeline = world.simulator.timeline()
    ledger = account(world, set(action_of))
    caps = check_caps(timeline, action_of, CAPS, lifetimes.live_at)

    print(
        f"group of {instances}, one killed, one added: {ledger.summary()}; "
        f"peak per action at the API {caps.peaks}; "
        f"{stats['duplicates']} repeated submissions"
    )
    assert exits == [0] * instances
    assert ledger.missing == set()
    assert sum(ledger.dead_letters.values()) == 0
    assert stats["accepted"] == REQUESTS
    assert ledger.requests_with_two_jobs == set()
    # The timeline holds every accepted submission, so nothing escaped the check.
    assert len(timeline) == 2 * (stats["accepted"] + stats["duplicates"])
    assert caps.violations == []


def test_commits_refused_while_the_group_rebalances_are_made_again(
    rig: RigFactory,
) -> None:
    """Work finished while the group rebalances is committed once it is over.

    A member killed with SIGKILL stays in the group until its session runs
    out, so a rebalance started meanwhile waits for it, and commits made by
    the other members in that time are refused (ILLEGAL_GENERATION). The
    records they covered must be committed again afterwards, even when no
    record comes after them on their partition.
    """
    world = rig(Behaviour(), partitions=4)
    publish(world, 400)
    survivor = world.start(PROCESSOR_INSTANCE_ID="survivor")
    # A long session keeps the group rebalancing for a while once it is killed.
    doomed = world.start(
        PROCESSOR_INSTANCE_ID="doomed",
        KAFKA_SESSION_TIMEOUT_MS=str(DOOMED_SESSION_S * 1000),
    )
    finish(world, 400)
    assert wait_until(lambda: both_assigned(world, "survivor", "doomed"), 30)
    kept = assignments(world)["survivor"]

    doomed.kill()
    newcomer = world.start(PROCESSOR_INSTANCE_ID="newcomer")
    # The newcomer's join opens a rebalance that waits for the killed member.
    assert wait_until(lambda: rebalancing(world), DOOMED_SESSION_S)
    world.produce(((f"late{i}".encode(), request(i)) for i in range(400, 500)), kept[0])
    finish(world, 500)
    exits = stop_all([survivor, newcomer])
    ledger = account(world, request_ids(500))

    assert exits == [0, 0]
    assert ledger.missing == set()


def both_assigned(world: Rig, *instances: str) -> bool:
    held = assignments(world)
    return set(held) == set(instances) and all(held.values())


def assignments(world: Rig) -> dict[str, list[int]]:
    """Each member's partitions of the requests topic, by instance id."""
    described = describe(world)
    return {
        member.client_id.removesuffix("-consumer"): sorted(
            tp.partition for tp in member.assignment.topic_partitions
        )
        for member in described.members
    }


def rebalancing(world: Rig) -> bool:
    state = describe(world).state
    return bool(state == ConsumerGroupState.PREPARING_REBALANCING)


def describe(world: Rig) -> ConsumerGroupDescription:
    admin = AdminClient({"bootstrap.servers": world.bootstrap})
    futures = admin.describe_consumer_groups([world.group])
    described: ConsumerGroupDescription = futures[world.group].result(timeout=30)
    return described
