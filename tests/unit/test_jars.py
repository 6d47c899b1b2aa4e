"""Resolving the broker's jars: cached once, and a clear line when Maven fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from processor.errors import BrokerJarsError
from processor.localkafka import jars


def fake_mvn(folder: Path, script: str) -> None:
    mvn = folder / "mvn"
    mvn.write_text("#!/bin/sh\n" + script)
    mvn.chmod(mvn.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    return bin_dir


def test_an_unreachable_maven_central_is_said_in_one_line(isolated: Path) -> None:
    fake_mvn(
        isolated,
        'echo "[ERROR] Failed to execute goal on project local-kafka-broker: '
        "Could not transfer artifact org.apache.kafka:kafka_2.13:pom:4.4.0 from/to "
        'central: Name or service not known: UnknownHostException"\n'
        "exit 1\n",
    )

    with pytest.raises(BrokerJarsError) as failure:
        jars.classpath()

    message = str(failure.value)
    assert message.startswith("Maven Central cannot be reached")
    assert "\n" not in message


def test_a_missing_maven_is_named(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(isolated))

    with pytest.raises(BrokerJarsError, match="Maven \\(mvn\\) is not on PATH"):
        jars.classpath()


def test_the_classpath_is_resolved_once_then_read_from_the_cache(
    isolated: Path, tmp_path: Path
) -> None:
    jar = tmp_path / "kafka.jar"
    jar.write_text("")
    calls = tmp_path / "calls"
    fake_mvn(
        isolated,
        f'echo run >> "{calls}"\n'
        'for arg in "$@"; do case "$arg" in -Dmdep.outputFile=*) '
        f'printf "%s" "{jar}" > "${{arg#-Dmdep.outputFile=}}";; esac; done\n',
    )

    first = jars.classpath()
    second = jars.classpath()

    assert first == second == str(jar)
    assert calls.read_text().count("run") == 1
    assert str(jars.cache_dir()).startswith(str(tmp_path / "cache"))
