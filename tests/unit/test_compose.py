"""docker-compose.yml and the Dockerfile are wired right, read without Docker.

Every service the processor talks to exists and listens where its settings
point; the processor's environment is a valid set of settings; the topics it
checks at start are the ones the init step creates.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from processor import settings as settings_module
from processor.settings import KNOWN_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The settings the contract marks as required.
REQUIRED = ("CXONE_BASE_URL", "CXONE_CLIENT_ID", "CXONE_CLIENT_SECRET")
# Names Compose would read as its own variables: a `$` not doubled.
INTERPOLATED = re.compile(r"(?<!\$)\$(?!\$)[{A-Za-z_]")
# An address in a value: ``host:port``, alone or in a URL.
ADDRESS = re.compile(r"^(?:[a-z]+://)?([A-Za-z0-9][A-Za-z0-9.-]*):\d+")
# What a server in a container listens on to be reached from other containers.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the point of the check


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def processor_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return environment(services["processor"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either of Compose's two forms."""
    given = service.get("environment", {})
    if isinstance(given, list):
        given = dict(item.split("=", 1) for item in given)
    return {name: str(value) for name, value in given.items()}


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port to host port, for each ``HOST:CONTAINER`` entry."""
    ports: dict[int, int] = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        ports[int(container.split("/")[0])] = int(host)
    return ports


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", [])
    return command if isinstance(command, str) else " ".join(command)


def flag(service: dict[str, Any], name: str) -> str:
    words = shlex.split(command_text(service))
    return words[words.index(name) + 1]


def test_the_stack_has_its_five_services_and_their_images(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == {"kafka", "kafka-init", "simulator", "processor", "jaeger"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka-init"]["image"] == services["kafka"]["image"]
    assert re.fullmatch(
        r"jaegertracing/jaeger:2\.\d+\.\d+", services["jaeger"]["image"]
    )
    assert services["processor"]["command"] == ["run"]
    assert services["simulator"]["command"][0] == "simulate"


@pytest.mark.parametrize("name", ["simulator", "processor"])
def test_the_images_built_here_have_a_context_holding_the_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name]["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_FILE.parent / build["context"]).resolve()

    assert context.is_dir()
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()
    assert "image" not in services[name]


def test_the_dockerfile_copies_only_what_exists_and_runs_the_command() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]

    sources = [source for sources in copies for source in sources]
    assert {"pyproject.toml", "processor", "schemas"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
    assert 'ENTRYPOINT ["cxone-processor"]' in lines


def test_published_ports(services: dict[str, dict[str, Any]]) -> None:
    assert published(services["kafka"]) == {9092: 9092}
    assert published(services["simulator"]) == {8080: 8080}
    assert published(services["processor"]) == {9464: 9464}
    assert published(services["jaeger"]) == {16686: 16686, 4317: 4317, 4318: 4318}


def test_the_processor_environment_is_a_complete_valid_set_of_settings(
    services: dict[str, dict[str, Any]], processor_env: dict[str, str]
) -> None:
    for name in REQUIRED:
        assert processor_env.get(name), f"{name} is not set for the processor"
    for name in processor_env:
        known = name in KNOWN_VARIABLES or name.startswith(("KAFKA_", "OTEL_"))
        assert known, f"{name} is not a setting of the processor"

    loaded = settings_module.load(environ=processor_env)

    for name, value in processor_env.items():
        address = ADDRESS.match(value)
        if address is not None and address.group(1) != ALL_INTERFACES:
            host = address.group(1)
            assert host in services, f"{name} names {host}, which is no service"
    assert loaded.http_host == ALL_INTERFACES
    assert loaded.http_port == 9464
    assert processor_env["OTEL_SERVICE_NAME"]


def test_the_processor_reaches_the_simulator_as_the_client_it_accepts(
    services: dict[str, dict[str, Any]], processor_env: dict[str, str]
) -> None:
    simulator = services["simulator"]
    url = urlsplit(processor_env["CXONE_BASE_URL"])
    accepted = environment(simulator)

    assert (url.scheme, url.hostname) == ("http", "simulator")
    assert url.port == int(flag(simulator, "--port"))
    assert flag(simulator, "--host") == ALL_INTERFACES
    assert processor_env["CXONE_CLIENT_ID"] == accepted["CXONE_CLIENT_ID"]
    assert processor_env["CXONE_CLIENT_SECRET"] == accepted["CXONE_CLIENT_SECRET"]


def test_the_processor_reaches_kafka_on_its_internal_listener(
    services: dict[str, dict[str, Any]], processor_env: dict[str, str]
) -> None:
    kafka = environment(services["kafka"])
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")

    assert processor_env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"
    assert "INTERNAL://kafka:29092" in advertised
    assert "INTERNAL://:29092" in kafka["KAFKA_LISTENERS"].split(",")


def test_the_processor_sends_traces_to_jaegers_otlp_http_port(
    services: dict[str, dict[str, Any]], processor_env: dict[str, str]
) -> None:
    url = urlsplit(processor_env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    receivers = command_text(services["jaeger"])

    assert (url.scheme, url.hostname, url.port) == ("http", "jaeger", 4318)
    assert "receivers.otlp.protocols.http.endpoint=0.0.0.0:4318" in receivers


def test_the_processor_starts_after_kafka_its_topics_and_the_simulator(
    services: dict[str, dict[str, Any]],
) -> None:
    depends = services["processor"]["depends_on"]

    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    assert depends["simulator"]["condition"] == "service_healthy"
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == (
        "service_healthy"
    )
    for name in ("kafka", "simulator", "processor"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    for service in services.values():
        assert set(service.get("depends_on", {})) <= set(services)


def test_the_init_step_creates_every_topic_the_processor_uses(
    services: dict[str, dict[str, Any]], processor_env: dict[str, str]
) -> None:
    init = command_text(services["kafka-init"])
    loaded = settings_module.load(environ=processor_env)
    topics = [
        loaded.requests_topic,
        loaded.results_topic,
        loaded.deadletter_topic,
        loaded.audit_topic,
    ]

    listed = re.search(r"for topic in ([^;]+);", init)
    assert listed is not None
    assert listed.group(1).split() == topics
    assert "--bootstrap-server kafka:29092" in init
    assert '--topic "$$topic"' in init
    assert "--if-not-exists" in init


def test_no_value_is_taken_for_a_compose_variable_by_mistake() -> None:
    for number, line in enumerate(COMPOSE_FILE.read_text().splitlines(), 1):
        if not line.lstrip().startswith("#"):
            assert not INTERPOLATED.search(line), f"line {number}: {line.strip()}"


def test_a_stop_leaves_the_processor_its_grace_period(
    services: dict[str, dict[str, Any]], processor_env: dict[str, str]
) -> None:
    given = services["processor"]["stop_grace_period"]
    grace = settings_module.load(environ=processor_env).grace_period_s

    assert given.endswith("s")
    assert float(given[:-1]) > grace
