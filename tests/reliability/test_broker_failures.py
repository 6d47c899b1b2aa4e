"""Kafka brokers going away mid-run: the processor waits or fails over, loses nothing.

Each test starts a cluster of its own, so taking a broker down disturbs no
other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from processor.localkafka import LocalKafka
from processor.simulator import Behaviour, Latency
from tests.integration.conftest import Rig
from tests.pipeline_support import wait_until
from tests.reliability.conftest import RigOn
from tests.reliability.support import (
    accepted,
    account,
    finish,
    publish,
    scaled,
    stop_all,
    wait_for_jobs,
)

REQUESTS = scaled(10_000, 100_000)
BROKER_DOWN_S = scaled(5.0, 30.0)
FAST = Latency(2.5, 2.5, "uniform")
PAUSED_REQUESTS = scaled(3000, 30_000)
# Longer than the group session (6 s) plus the broker's stop, so the
# partitions are lost before the API is back.
API_DOWN_S = 12.0


@pytest.fixture(scope="module")
def single_broker() -> Iterator[LocalKafka]:
    """One node for this module alone; its tests leave it running."""
    with LocalKafka(1) as cluster:
        yield cluster


@pytest.fixture
def three_brokers() -> Iterator[LocalKafka]:
    with LocalKafka(3) as cluster:
        yield cluster


def test_the_only_broker_stopped_and_started_mid_run_loses_nothing(
    single_broker: LocalKafka, rig_on: RigOn
) -> None:
    world = rig_on(single_broker, Behaviour(latency=FAST), 4)
    expected = set(publish(world, REQUESTS))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="64")
    wait_for_jobs(world, REQUESTS // 5)
    single_broker.stop_node(0)
    down_at = accepted(world.simulator)
    # The scenario is the broker's absence: the processor is left without it.
    time.sleep(BROKER_DOWN_S)
    single_broker.start_node(0)
    finish(world, REQUESTS)
    exits = stop_all([processor])
    stats = world.simulator.stats()
    ledger = account(world, expected)

    print(
        f"only broker down for {BROKER_DOWN_S:.0f} s from {down_at} jobs: "
        f"{ledger.summary()}; {stats['duplicates']} repeated submissions"
    )
    assert down_at < REQUESTS, "the broker went down before the run was over"
    assert exits == [0]
    assert ledger.missing == set()
    assert dict(ledger.dead_letters) == {}
    assert stats["accepted"] == REQUESTS
    assert ledger.requests_with_two_jobs == set()


def test_three_brokers_with_the_group_coordinator_killed_mid_run_lose_nothing(
    three_brokers: LocalKafka, rig_on: RigOn
) -> None:
    world = rig_on(three_brokers, Behaviour(latency=FAST), 6)
    replicas = replica_counts(three_brokers, world.topics.requests)
    expected = set(publish(world, REQUESTS))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="64")
    wait_for_jobs(world, REQUESTS // 4)
    victim = coordinator_index(three_brokers, world.group)
    three_brokers.stop_node(victim, kill=True)
    killed_at = accepted(world.simulator)
    finish(world, REQUESTS)
    still_down = not three_brokers.nodes[victim].running
    exits = stop_all([processor])
    stats = world.simulator.stats()
    ledger = account(world, expected)

    print(
        f"group coordinator (node {victim + 1} of 3) killed at {killed_at} jobs: "
        f"{ledger.summary()}; {stats['duplicates']} repeated submissions"
    )
    assert replicas == {3}
    assert killed_at < REQUESTS
    assert still_down, "the run ended on two brokers"
    assert exits == [0]
    assert ledger.missing == set()
    assert dict(ledger.dead_letters) == {}
    assert stats["accepted"] == REQUESTS
    assert ledger.requests_with_two_jobs == set()


def replica_counts(cluster: LocalKafka, topic: str) -> set[int]:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    return {len(partition.replicas) for partition in partitions.values()}


def coordinator_index(cluster: LocalKafka, group: str) -> int:
    """Which of the cluster's nodes coordinates ``group`` now."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    described = admin.describe_consumer_groups([group])[group].result(timeout=30)
    node_id = described.coordinator.id
    return next(i for i, node in enumerate(cluster.nodes) if node.node_id == node_id)


def test_partitions_lost_while_paused_are_consumed_once_assigned_again(
    single_broker: LocalKafka, rig_on: RigOn
) -> None:
    """A pause that ends while the partitions are away does not outlive them.

    The API goes down, so the breaker pauses consumption; the broker goes
    away past the group session, so the partitions are lost while paused;
    the API recovers, so the pause ends with no partition to resume; then
    the broker returns and the partitions are assigned again. librdkafka
    keeps a partition's pause across losing and regaining it, so they must
    be resumed when they come back, or nothing is ever consumed again.
    """
    world = rig_on(single_broker, Behaviour(latency=FAST), 4)
    expected = set(publish(world, PAUSED_REQUESTS))

    processor = world.start(PROCESSOR_MAX_IN_FLIGHT="16")
    wait_for_jobs(world, PAUSED_REQUESTS // 10)
    world.simulator.start_outage(API_DOWN_S)
    assert wait_until(lambda: outage_rejections(world) >= 10, 30)
    before_recovery = accepted(world.simulator)
    single_broker.stop_node(0)
    # Only a probe after the outage is accepted: the breaker closes then,
    # well after the session (6 s) lapsed and the partitions were lost.
    assert wait_until(lambda: accepted(world.simulator) > before_recovery, 60)
    single_broker.start_node(0)
    finish(world, PAUSED_REQUESTS)
    exits = stop_all([processor])
    ledger = account(world, expected)

    assert exits == [0]
    assert ledger.missing == set()
    assert dict(ledger.dead_letters) == {}


def outage_rejections(world: Rig) -> int:
    return int(world.simulator.stats()["outage_rejections"])
