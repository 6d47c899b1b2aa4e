"""The simulate command's TLS flags: both or neither, and files that load."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from processor import cli
from processor.simulator.behaviour import BehaviourError
from processor.simulator.cli import tls_context
from tests.security.certificates import Certificates, make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(Path(tmp_path_factory.mktemp("tls")))


def test_without_tls_flags_the_simulator_serves_plain_http() -> None:
    assert tls_context(None, None) is None


def test_a_certificate_and_its_key_make_a_server_context(
    certificates: Certificates,
) -> None:
    context = tls_context(str(certificates.cert), str(certificates.key))

    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("given", ["cert", "key"])
def test_one_tls_flag_alone_names_the_missing_one(
    certificates: Certificates, given: str
) -> None:
    cert = str(certificates.cert) if given == "cert" else None
    key = str(certificates.key) if given == "key" else None
    missing = "--tls-key" if given == "cert" else "--tls-cert"

    with pytest.raises(BehaviourError, match=f"^{missing} is required"):
        tls_context(cert, key)


def test_files_that_are_not_a_certificate_and_key_are_named(
    certificates: Certificates, tmp_path: Path
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")

    with pytest.raises(BehaviourError, match=r"--tls-cert .* cannot be used"):
        tls_context(str(not_pem), str(certificates.key))
    with pytest.raises(BehaviourError, match="cannot be used"):
        tls_context(str(certificates.cert), str(tmp_path / "missing.key"))
    # A key that does not belong to the certificate is refused too.
    with pytest.raises(BehaviourError, match="cannot be used"):
        tls_context(str(certificates.ca), str(certificates.key))


def test_the_command_stops_with_one_line_and_exit_2(
    certificates: Certificates, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["simulate", "--port", "0", "--tls-cert", str(certificates.cert)])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "cxone-processor simulate: --tls-key is required with the other TLS flag"
    ]
