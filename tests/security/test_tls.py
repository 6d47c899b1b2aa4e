"""TLS to the CXone API: the simulator over HTTPS with a CA made for the test.

The simulate command serves HTTPS with ``--tls-cert``/``--tls-key``. The
processor refuses a certificate it cannot verify (no token is asked for, no
job is sent or dead-lettered, and its log names the certificate problem),
and accepts it once ``CXONE_CA_BUNDLE`` names the CA.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from processor.simulator import SimulatorThread
from tests.integration.conftest import Rig, RigFactory
from tests.pipeline_support import by_request_id, request, wait_until
from tests.security.certificates import Certificates
from tests.support import simulator_process

JOBS = 5


def trusting(certificates: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca))


def serve_over_tls(world: Rig, certificates: Certificates) -> None:
    """Swap the rig's simulator for one that serves HTTPS with the test's cert."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert, certificates.key)
    world.simulator.stop()
    world.simulator = SimulatorThread(world.behaviour, ssl_context=context).start()


def test_the_simulate_command_serves_https_with_the_given_certificate(
    certificates: Certificates,
) -> None:
    flags = ("--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key))
    with simulator_process(*flags) as (url, _process):
        trusted = httpx.get(f"{url}/_simulator/stats", verify=trusting(certificates))
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/_simulator/stats")
        with pytest.raises(httpx.TransportError):
            httpx.get(url.replace("https://", "http://") + "/_simulator/stats")

    assert url.startswith("https://127.0.0.1:")
    assert trusted.status_code == 200
    assert trusted.json()["submissions"] == 0


def test_the_processor_refuses_a_certificate_it_cannot_verify(
    rig: RigFactory, certificates: Certificates
) -> None:
    world = rig(partitions=1)
    serve_over_tls(world, certificates)
    world.produce((f"k{i}".encode(), request(i)) for i in range(JOBS))
    process = world.start(PROCESSOR_GRACE_PERIOD_S="2")

    wait_until(
        lambda: "certificate" in process.log().lower() or not process.running,
        timeout=20,
    )
    results = world.read("results", 0, timeout=0, settle=1.0)
    dead = world.read("deadletter", 0, timeout=0, settle=1.0)
    process.stop()
    stats = world.simulator.stats()
    log = process.log()

    # The handshake failed, so not one HTTP request reached the API ...
    assert stats["token_requests"] == 0
    assert stats["submissions"] == 0
    # ... no job was given up on, and the operator is told why.
    assert results == []
    assert dead == []
    assert "certificate" in log.lower(), log[-3000:]


def test_the_processor_trusts_the_ca_named_by_cxone_ca_bundle(
    rig: RigFactory, certificates: Certificates
) -> None:
    world = rig(partitions=1)
    serve_over_tls(world, certificates)
    world.produce((f"k{i}".encode(), request(i)) for i in range(JOBS))
    process = world.start(CXONE_CA_BUNDLE=str(certificates.ca))

    results = dict(by_request_id(world.read("results", JOBS), "results"))
    code = process.stop()

    assert world.simulator.url.startswith("https://")
    assert code == 0
    assert sorted(results) == [f"r-{i:06d}" for i in range(JOBS)]
    assert world.simulator.stats()["accepted"] == JOBS
