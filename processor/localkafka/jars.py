"""The local broker's classpath, resolved by Maven from the committed pom.

Maven keeps the jars in its own repository (``~/.m2``) and writes the
classpath to a file in the user's cache folder, so nothing lands in the
checkout and a second resolution costs one file read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from processor.errors import BrokerJarsError

# Phrases Maven prints when the repository could not be reached at all, as
# opposed to an artifact that is missing from it.
_UNREACHABLE_MARKERS = (
    "UnknownHostException",
    "Connection refused",
    "Connect to",
    "connect timed out",
    "Read timed out",
    "Network is unreachable",
    "No route to host",
    "Could not transfer artifact",
)

_RESOLVE_TIMEOUT_S = 600.0


def pom_path() -> Path:
    """The committed pom that names the broker's version and jars."""
    return Path(str(resources.files("processor.localkafka").joinpath("pom.xml")))


def cache_dir() -> Path:
    """Where resolved classpaths are kept, outside the checkout."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cxone-processor"


def classpath() -> str:
    """The broker's classpath, resolving it with Maven on first use."""
    pom = pom_path()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"kafka-classpath-{digest}.txt"

    if cached.exists():
        entries = cached.read_text().strip()
        if entries and all(Path(jar).exists() for jar in entries.split(os.pathsep)):
            return entries

    cached.parent.mkdir(parents=True, exist_ok=True)
    _resolve(pom, cached)
    return cached.read_text().strip()


def _resolve(pom: Path, output: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerJarsError(
            "Maven (mvn) is not on PATH: install Maven to fetch the Kafka broker"
        )

    partial = output.with_suffix(".partial")
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        "--file",
        str(pom),
        "dependency:build-classpath",
        f"-Dmdep.outputFile={partial}",
    ]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_RESOLVE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerJarsError(
            "Maven Central cannot be reached: resolving the Kafka broker's jars "
            f"took longer than {_RESOLVE_TIMEOUT_S:.0f} s"
        ) from exc

    if done.returncode != 0 or not partial.exists():
        raise BrokerJarsError(_explain_failure(done.stdout + done.stderr))
    partial.replace(output)


def _explain_failure(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "ERROR" in line]
    first = lines[0] if lines else output.strip()[-300:]
    if any(marker in output for marker in _UNREACHABLE_MARKERS):
        return (
            "Maven Central cannot be reached, so the Kafka broker's jars "
            f"cannot be fetched ({first[:300]})"
        )
    return f"Maven could not resolve the Kafka broker's jars: {first[:300]}"
