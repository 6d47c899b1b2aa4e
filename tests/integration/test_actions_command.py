"""``cxone-processor actions`` as a subprocess against the real simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processor.simulator import Behaviour, SimulatorThread

BEHAVIOUR = Behaviour()
GOOD_PATCH = {
    "id": "action_123",
    "status": "DEPRECATED",
    "config": {"retryPolicy": "exponential", "maxRetries": 3},
}


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(BEHAVIOUR) as running:
        yield running


def actions(
    sim: SimulatorThread, *arguments: str, **settings: str | None
) -> subprocess.CompletedProcess[str]:
    """The command, with only the CXone settings (None unsets one): no Kafka's."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("KAFKA_", "PROCESSOR_", "CXONE_", "OTEL_"))
    }
    env.update(
        {
            "CXONE_BASE_URL": sim.url,
            "CXONE_CLIENT_ID": BEHAVIOUR.client_id,
            "CXONE_CLIENT_SECRET": BEHAVIOUR.client_secret,
            "PROCESSOR_LOG_LEVEL": "WARNING",
        }
    )
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    done = subprocess.run(
        [sys.executable, "-m", "processor", "actions", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    _assert_no_secret(sim, done)
    return done


def _assert_no_secret(
    sim: SimulatorThread, done: subprocess.CompletedProcess[str]
) -> None:
    printed = done.stdout + done.stderr
    assert BEHAVIOUR.client_secret not in printed
    for token in sim.issued_tokens():
        assert token not in printed


def action_of(sim: SimulatorThread, action_id: str, **settings: str) -> dict[str, Any]:
    done = actions(sim, "get", action_id, **settings)
    assert done.returncode == 0, done.stderr
    action: dict[str, Any] = json.loads(done.stdout)
    return action


def write(tmp_path: Path, body: object) -> str:
    path = tmp_path / "patch.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_get_prints_the_action_as_json(sim: SimulatorThread) -> None:
    action = action_of(sim, "action_draft")

    assert action["id"] == "action_draft"
    assert action["status"] == "DRAFT"
    assert action["config"] == {}
    assert action["updatedTimestamp"].endswith("Z")
    assert sim.stats()["action_reads"] == 1


def test_a_good_patch_is_applied_and_the_updated_action_printed(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    done = actions(sim, "patch", "action_123", "--file", write(tmp_path, GOOD_PATCH))

    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert {k: printed[k] for k in GOOD_PATCH} == GOOD_PATCH
    assert "updatedTimestamp" in printed
    assert sim.stats()["action_patches"] == 1
    assert action_of(sim, "action_123")["status"] == "DEPRECATED"


def test_what_get_printed_can_be_edited_and_sent_back(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    action = action_of(sim, "action_a")
    action["status"] = "DRAFT"

    done = actions(sim, "patch", "action_a", "--file", write(tmp_path, action))

    assert done.returncode == 0, done.stderr
    assert action_of(sim, "action_a")["status"] == "DRAFT"


def test_a_bad_patch_is_refused_field_by_field_and_nothing_is_sent(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    bad = {"id": "action_b", "status": "LIVE", "config": "fast"}

    done = actions(sim, "patch", "action_123", "--file", write(tmp_path, bad))

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert "nothing was sent" in lines[0]
    assert lines[1:] == [
        "  config: 'fast' is not of type 'object'",
        "  id: 'action_b' is not the action named on the command line ('action_123')",
        "  status: 'LIVE' is not one of ['DRAFT', 'PUBLISHED', 'DEPRECATED']",
    ]
    stats = sim.stats()
    assert stats["action_patches"] == 0
    assert stats["token_requests"] == 0
    assert action_of(sim, "action_123")["status"] == "PUBLISHED"


def test_a_token_without_the_write_scope_gets_403_explained(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    read_and_execute = "data-actions:read data-actions:execute"
    sim.configure(allowed_scopes=read_and_execute.split())
    patch_file = write(tmp_path, GOOD_PATCH)

    forbidden = actions(
        sim, "patch", "action_123", "--file", patch_file, CXONE_SCOPE=read_and_execute
    )
    not_granted = actions(sim, "patch", "action_123", "--file", patch_file)

    assert forbidden.returncode == 1
    assert "PATCH action_123 is forbidden (403)" in forbidden.stderr
    assert "add it to CXONE_SCOPE" in forbidden.stderr
    assert sim.stats()["forbidden"] == 1
    # Asking for a scope the client lacks is refused at the token endpoint.
    assert not_granted.returncode == 1
    assert "invalid_scope" in not_granted.stderr
    assert "CXONE_SCOPE" in not_granted.stderr
    unchanged = action_of(sim, "action_123", CXONE_SCOPE=read_and_execute)
    assert unchanged["status"] == "PUBLISHED"


def test_wrong_credentials_get_401_explained(sim: SimulatorThread) -> None:
    done = actions(sim, "get", "action_123", CXONE_CLIENT_SECRET="not-the-secret")

    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "401 invalid_client" in done.stderr
    assert "check CXONE_CLIENT_ID, CXONE_CLIENT_SECRET" in done.stderr
    assert "not-the-secret" not in done.stderr
    assert sim.stats()["token_failures"] == 1


def test_an_unknown_action_gets_404_explained(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    patch_file = write(tmp_path, {**GOOD_PATCH, "id": "action_zzz"})

    got = actions(sim, "get", "action_zzz")
    patched = actions(sim, "patch", "action_zzz", "--file", patch_file)

    assert (got.returncode, patched.returncode) == (1, 1)
    assert "GET action_zzz was answered 404" in got.stderr
    assert "PATCH action_zzz was answered 404" in patched.stderr
    assert sim.stats()["unknown_actions"] == 2


def test_a_missing_setting_is_named_in_one_line(sim: SimulatorThread) -> None:
    done = actions(sim, "get", "action_123", CXONE_CLIENT_ID="")

    assert done.returncode == 2
    assert done.stderr == (
        "cxone-processor actions: invalid setting: CXONE_CLIENT_ID is required\n"
    )
    assert sim.stats()["token_requests"] == 0


def test_the_settings_can_come_from_a_config_file(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    config = tmp_path / "cxone.toml"
    config.write_text(
        f'cxone_base_url = "{sim.url}"\n'
        f'cxone_client_id = "{BEHAVIOUR.client_id}"\n'
        f'cxone_client_secret = "{BEHAVIOUR.client_secret}"\n'
    )

    done = actions(
        sim,
        "get",
        "action_c",
        "--config",
        str(config),
        CXONE_BASE_URL=None,
        CXONE_CLIENT_ID=None,
        CXONE_CLIENT_SECRET=None,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "action_c"
