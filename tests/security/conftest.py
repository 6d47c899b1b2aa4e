"""Everything under this folder runs real servers and is marked ``integration``.

The ``rig`` fixture is the integration tier's own: topics on the session's
broker, a simulator, and processors started as subprocesses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import rig
from tests.security.certificates import Certificates, make_certificates

__all__ = ["certificates", "pytest_collection_modifyitems", "rig"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/security/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and a loopback server certificate, made once per session."""
    return make_certificates(Path(tmp_path_factory.mktemp("tls")))
