"""The local broker's configuration: the plain cluster, and its SCRAM listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.localkafka import LocalKafka, Node
from processor.localkafka.cluster import _node_settings, scram_arguments

FOLDER = Path("/nonexistent/node-1")


def test_a_node_without_sasl_keeps_its_plain_and_controller_listeners_only() -> None:
    node = Node(1, 9092, 9093, FOLDER)

    settings = _node_settings(node, [node])

    assert settings["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    )
    assert settings["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert settings["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert settings["inter.broker.listener.name"] == "PLAINTEXT"
    assert not [key for key in settings if "sasl" in key]


def test_a_node_with_a_sasl_port_adds_a_scram_listener_beside_the_plain_one() -> None:
    node = Node(1, 9092, 9093, FOLDER, sasl_port=9094)

    settings = _node_settings(node, [node])

    assert settings["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,SASL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093"
    )
    assert settings["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,SASL://127.0.0.1:9094"
    )
    assert settings["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT"
    )
    assert settings["listener.name.sasl.sasl.enabled.mechanisms"] == "SCRAM-SHA-256"
    assert settings["listener.name.sasl.scram-sha-256.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )
    # Brokers still talk to each other on the plain listener.
    assert settings["inter.broker.listener.name"] == "PLAINTEXT"
    assert node.sasl_address == "127.0.0.1:9094"


def test_each_user_becomes_one_scram_credential_for_the_storage_tool() -> None:
    arguments = scram_arguments({"alice": "alice-pw", "bob": "b0b.pw"})

    assert arguments == [
        "--add-scram=SCRAM-SHA-256=[name=alice,password=alice-pw]",
        "--add-scram=SCRAM-SHA-256=[name=bob,password=b0b.pw]",
    ]
    assert scram_arguments({}) == []


@pytest.mark.parametrize(
    ("name", "password", "named"),
    [
        ("alice", "a,b", "password of 'alice'"),
        ("alice", "a]b", "password of 'alice'"),
        ("alice", 'a"b', "password of 'alice'"),
        ("alice", "a b", "password of 'alice'"),
        ("alice", "", "password of 'alice'"),
        ("al=ice", "pw", "user name 'al=ice'"),
        ("", "pw", "user name ''"),
    ],
)
def test_a_name_or_password_the_storage_tool_would_misread_is_refused(
    name: str, password: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        scram_arguments({name: password})


def test_a_cluster_without_sasl_users_has_no_sasl_addresses() -> None:
    cluster = LocalKafka(1, java="java")

    assert cluster.sasl_bootstrap_servers == ""


def test_bad_sasl_users_are_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="password of 'svc'"):
        LocalKafka(1, java="java", sasl_users={"svc": "pass,word"})
