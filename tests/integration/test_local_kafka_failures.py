"""A broker that cannot start says why instead of hanging."""

from __future__ import annotations

import socket

import pytest

from processor.errors import BrokerStartError
from processor.localkafka import LocalKafka, cluster


def test_an_invalid_broker_setting_fails_with_the_brokers_own_words() -> None:
    with pytest.raises(BrokerStartError) as failure:
        LocalKafka(1, extra_config={"num.io.threads": "many"}).start()

    assert "num.io.threads" in str(failure.value)


def test_a_node_that_exits_reports_its_log_tail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Hold the broker's port so its listener cannot bind.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    free = cluster._free_ports(1)[0]
    monkeypatch.setattr(cluster, "_free_ports", lambda count: [taken, free])

    try:
        with pytest.raises(BrokerStartError) as failure:
            LocalKafka(1).start(timeout=60)
    finally:
        holder.close()

    message = str(failure.value)
    assert "exited with code" in message
    assert "Address already in use" in message
