"""A real Apache Kafka running locally in KRaft mode, one JVM per node.

Each node is both broker and controller, so a single node is a whole cluster
and three nodes keep a controller quorum with one of them down. Everything
listens on free loopback ports and lives in a temporary folder that
``stop()`` removes.

With ``sasl_users``, each node also has a ``SASL_PLAINTEXT`` listener that
takes SCRAM-SHA-256 logins of those users (``sasl_bootstrap_servers``); the
plain listener stays, for the tools and tests that set the cluster up.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType

from confluent_kafka.admin import AdminClient

from processor.errors import BrokerStartError
from processor.localkafka import jars

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0
_LOG_TAIL_LINES = 25

SCRAM_MECHANISM = "SCRAM-SHA-256"
_SASL_LISTENER = "SASL"
# kafka-storage reads a credential as "MECHANISM=[name=N,password=P]"; these
# characters would end a field early, so names and passwords may not use them.
_SCRAM_UNSAFE = re.compile(r'[\s,=\[\]"]')


@dataclass
class Node:
    """One broker-and-controller JVM of the local cluster."""

    node_id: int
    port: int
    controller_port: int
    folder: Path
    sasl_port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_address(self) -> str | None:
        return None if self.sasl_port is None else f"127.0.0.1:{self.sasl_port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "broker.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no log written)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class LocalKafka:
    """A local Kafka cluster of ``nodes`` KRaft nodes on loopback ports.

    With three nodes, topics default to replication factor 3 and
    ``min.insync.replicas=2``, so ``acks=all`` producers go on with one node
    stopped. ``sasl_users`` (name to password) adds a SCRAM-SHA-256 listener.
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        extra_config: dict[str, str] | None = None,
        java: str | None = None,
        sasl_users: Mapping[str, str] | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self._size = nodes
        self._extra_config = dict(extra_config or {})
        self._scram_arguments = scram_arguments(sasl_users or {})
        self._sasl = bool(sasl_users)
        self._java = java or _find_java()
        self._root: Path | None = None
        self._classpath = ""
        self._cluster_id = ""
        self.nodes: list[Node] = []

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def sasl_bootstrap_servers(self) -> str:
        """The SCRAM listeners' addresses (empty without ``sasl_users``)."""
        return ",".join(filter(None, (node.sasl_address for node in self.nodes)))

    def start(self, timeout: float = _START_TIMEOUT_S) -> LocalKafka:
        """Format every node's storage, start them, wait until all answer."""
        self._classpath = jars.classpath()
        root = self._root = Path(tempfile.mkdtemp(prefix="cxone-kafka-"))
        self._cluster_id = _new_cluster_id()
        per_node = 3 if self._sasl else 2
        ports = _free_ports(per_node * self._size)
        self.nodes = [
            _plan_node(root, i + 1, *ports[per_node * i : per_node * (i + 1)])
            for i in range(self._size)
        ]

        try:
            with ThreadPoolExecutor(max_workers=self._size) as pool:
                list(pool.map(self._format, self.nodes))
            for node in self.nodes:
                self._launch(node)
            self._wait_until_ready(self.nodes, timeout)
        except BaseException:
            self.stop()
            raise

        log.info("local Kafka up: %s", self.bootstrap_servers)
        return self

    def stop_node(self, index: int, *, kill: bool = False) -> None:
        """Stop one node (SIGTERM, or SIGKILL with ``kill``); its data stays."""
        _terminate(self.nodes[index], kill=kill)

    def start_node(self, index: int, timeout: float = _START_TIMEOUT_S) -> None:
        """Start a stopped node again on the same ports and data."""
        node = self.nodes[index]
        if node.running:
            return
        self._launch(node)
        self._wait_until_ready([node], timeout)

    def stop(self) -> None:
        """Stop every node at once and remove all their data."""
        # SIGKILL: the data is deleted next, and a controlled shutdown of the
        # last nodes of a quorum waits seconds for peers that are gone.
        for node in self.nodes:
            _terminate(node, kill=True)

        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _format(self, node: Node) -> None:
        self._write_config(node)
        command = [
            *self._java_command(node),
            "kafka.tools.StorageTool",
            "format",
            # One argument: a random id may start with "-", like an option.
            f"--cluster-id={self._cluster_id}",
            "--config",
            str(node.folder / "server.properties"),
            "--ignore-formatted",
            *self._scram_arguments,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join(
                (done.stdout + done.stderr).splitlines()[-_LOG_TAIL_LINES:]
            )
            raise BrokerStartError(f"formatting node {node.node_id} failed:\n{tail}")

    def _launch(self, node: Node) -> None:
        command = [*self._java_command(node), "kafka.Kafka"]
        command.append(str(node.folder / "server.properties"))
        with node.log_path.open("ab") as out:
            node.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait_until_ready(self, nodes: list[Node], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {node.node_id: node for node in nodes}

        while pending:
            for node in list(pending.values()):
                if not node.running:
                    raise BrokerStartError(_exit_message(node))
                if _answers_metadata(node):
                    del pending[node.node_id]
            if time.monotonic() > deadline:
                node = next(iter(pending.values()))
                raise BrokerStartError(
                    f"Kafka node {node.node_id} did not answer metadata requests "
                    f"within {timeout:.0f} s; its log ends:\n{node.log_tail()}"
                )
            if pending:
                time.sleep(0.2)

    def _java_command(self, node: Node) -> list[str]:
        return [
            self._java,
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_log_config()}",
            f"-Dkafka.logs.dir={node.folder}",
            "-cp",
            self._classpath,
        ]

    def _write_config(self, node: Node) -> None:
        settings = _node_settings(node, self.nodes)
        settings.update(self._extra_config)
        lines = (f"{key}={value}" for key, value in sorted(settings.items()))
        (node.folder / "server.properties").write_text("\n".join(lines) + "\n")


def _plan_node(
    root: Path,
    node_id: int,
    port: int,
    controller_port: int,
    sasl_port: int | None = None,
) -> Node:
    folder = root / f"node-{node_id}"
    (folder / "data").mkdir(parents=True)
    return Node(node_id, port, controller_port, folder, sasl_port)


def scram_arguments(users: Mapping[str, str]) -> list[str]:
    """``kafka-storage format`` arguments that create the users' SCRAM logins."""
    # Known limitation: the passwords go on the storage tool's command line,
    # where other users of the machine can read them while it runs; this
    # broker is for development and tests, with throwaway credentials.
    arguments: list[str] = []
    for name, password in users.items():
        _check_scram_text(f"SASL user name {name!r}", name)
        _check_scram_text(f"SASL password of {name!r}", password)
        credential = f"{SCRAM_MECHANISM}=[name={name},password={password}]"
        arguments.append(f"--add-scram={credential}")
    return arguments


def _check_scram_text(what: str, text: str) -> None:
    if not text or _SCRAM_UNSAFE.search(text):
        raise ValueError(
            f'{what} must be non-empty, without spaces, commas, "=", "[", "]" '
            "or double quotes"
        )


def _node_settings(node: Node, nodes: list[Node]) -> dict[str, str]:
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    replicas = str(min(len(nodes), 3))
    min_isr = "2" if len(nodes) >= 3 else "1"
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        **_listener_settings(node),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(node.folder / "data"),
        "num.partitions": "1",
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        # Tests form groups constantly; the default 3 s wait only slows them.
        "group.initial.rebalance.delay.ms": "0",
        # A restarted node is fenced until its old session expires; shorter
        # heartbeats bring it back in seconds instead of the default nine.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
        "delete.topic.enable": "true",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }


def _listener_settings(node: Node) -> dict[str, str]:
    plain = f"PLAINTEXT://127.0.0.1:{node.port}"
    controller = f"CONTROLLER://127.0.0.1:{node.controller_port}"
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if node.sasl_port is None:
        return {
            "listeners": f"{plain},{controller}",
            "advertised.listeners": plain,
            "listener.security.protocol.map": protocols,
        }

    sasl = f"{_SASL_LISTENER}://127.0.0.1:{node.sasl_port}"
    prefix = f"listener.name.{_SASL_LISTENER.lower()}"
    return {
        "listeners": f"{plain},{sasl},{controller}",
        "advertised.listeners": f"{plain},{sasl}",
        "listener.security.protocol.map": (
            f"{protocols},{_SASL_LISTENER}:SASL_PLAINTEXT"
        ),
        f"{prefix}.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        # The logins themselves live in the cluster metadata (added at format
        # time); the login module only needs naming.
        f"{prefix}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
    }


def _answers_metadata(node: Node) -> bool:
    # A plain connect first: an admin client on a closed port only logs
    # "connection refused" lines until the JVM has bound its listener.
    try:
        socket.create_connection(("127.0.0.1", node.port), timeout=0.5).close()
    except OSError:
        return False

    admin = AdminClient(
        {"bootstrap.servers": node.address, "socket.timeout.ms": 1000, "log_level": 0}
    )
    try:
        metadata = admin.list_topics(timeout=1.0)
    except Exception:
        return False
    return node.node_id in metadata.brokers


def _terminate(node: Node, *, kill: bool) -> None:
    process = node.process
    if process is None or process.poll() is not None:
        return

    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("Kafka node %d ignored SIGTERM; killing it", node.node_id)
        process.kill()
        process.wait()


def _exit_message(node: Node) -> str:
    code = node.process.returncode if node.process is not None else None
    return (
        f"Kafka node {node.node_id} exited with code {code}; "
        f"its log ends:\n{node.log_tail()}"
    )


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _find_java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerStartError("Java is not on PATH: install Java 17 or newer")
    return found


def _log_config() -> Path:
    return Path(
        str(resources.files("processor.localkafka").joinpath("log4j2.properties"))
    )
