"""State survives a server restart; recovery reconciles records with what the backend has."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from localcloud.api import create_app
from localcloud.backends.base import Observed
from localcloud.backends.memory import MemoryBackend
from localcloud.clock import ManualClock
from localcloud.config import Settings
from localcloud.records import PodRecord
from localcloud.store import StateError, StateStore


def test_restart_loses_no_pod(make_client: Any, create_pod: Any, client: Any, clock: ManualClock) -> None:
    running, stopped = create_pod(name="running"), create_pod(name="stopped")
    client.post(f"/v2/pods/{stopped['id']}/action", json={"action": "stop"})
    client.patch(f"/v2/pods/{running['id']}", json={"name": "renamed"})
    clock.advance(3)
    before = client.get("/v2/pods").json()["pods"]

    after = make_client().get("/v2/pods").json()["pods"]
    assert after == before
    assert {p["name"]: p["status"] for p in after} == {"renamed": "RUNNING", "stopped": "EXITED"}


def test_deleted_pod_stays_deleted_after_restart(make_client: Any, create_pod: Any, client: Any) -> None:
    keep, gone = create_pod(), create_pod()
    client.delete(f"/v2/pods/{gone['id']}")
    assert [p["id"] for p in make_client().get("/v2/pods").json()["pods"]] == [keep["id"]]


def test_recovered_ports_are_not_handed_out_again(make_client: Any, create_pod: Any, clock: ManualClock) -> None:
    for _ in range(5):
        create_pod()
    fresh = make_client()
    body = {"name": "p", "image": "i", "gpu": {"id": "NVIDIA A40"}, "ports": ["22/tcp"]}
    for _ in range(5):
        assert fresh.post("/v2/pods", json=body).status_code == 201
    clock.advance(3)
    ports = [p["ssh"]["direct"]["port"] for p in fresh.get("/v2/pods").json()["pods"]]
    assert len(set(ports)) == 10


def test_state_file_is_private_json_written_atomically(client: Any, create_pod: Any, state_dir: Path) -> None:
    pod = create_pod()
    state_file = state_dir / "state.json"
    data = json.loads(state_file.read_text())
    assert data["version"] == 2
    assert data["backend"] == "memory"
    assert data["pods"][pod["id"]]["name"] == "trainer-0"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert [p.name for p in state_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_corrupt_state_file_is_a_clear_error(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text("{not json")
    with pytest.raises(StateError, match="not a valid localcloud state file"):
        StateStore(state_dir / "state.json", "memory").load()


def test_state_of_the_v1_localcloud_is_refused_with_what_to_do(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text('{"version": 1, "backend": "memory", "pods": {}}')
    with pytest.raises(StateError, match=r"older localcloud \(state version 1.*stop --purge"):
        StateStore(state_dir / "state.json", "memory").load()


def test_ssh_keys_survive_a_restart(make_client: Any, client: Any) -> None:
    keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA me"]
    client.put("/v2/account/ssh-keys", json={"keys": keys})
    assert make_client().get("/v2/account/ssh-keys").json() == {"keys": keys}


def test_state_of_another_backend_is_refused(client: Any, create_pod: Any, state_dir: Path) -> None:
    create_pod()
    with pytest.raises(StateError, match="holds pods of the 'memory' backend, not 'docker'"):
        StateStore(state_dir / "state.json", "docker").load()


class ObservingBackend(MemoryBackend):
    """A memory backend that pretends some containers exist (for recovery tests)."""

    name = "memory"

    def __init__(self, observed: dict[str, Observed]) -> None:
        super().__init__()
        self.observed = observed

    def observe(self, pod_id: str | None = None) -> dict[str, Observed]:
        return {k: v for k, v in self.observed.items() if pod_id in (None, k)}


def _settings(state_dir: Path) -> Settings:
    return Settings(state_dir=state_dir, backend="memory", ssh_ready_delay=0)


def _records(state_dir: Path) -> dict[str, PodRecord]:
    return StateStore(state_dir / "state.json", "memory").load()


def test_recovery_marks_vanished_or_stopped_containers_exited(
    make_client: Any, create_pod: Any, state_dir: Path, clock: ManualClock
) -> None:
    vanished, stopped, alive = create_pod(), create_pod(), create_pod()
    records = _records(state_dir)
    backend = ObservingBackend(
        {
            stopped["id"]: Observed(stopped["id"], False, records[stopped["id"]]),
            alive["id"]: Observed(alive["id"], True, records[alive["id"]]),
        }
    )
    create_app(_settings(state_dir), backend=backend, clock=clock)
    recovered = _records(state_dir)
    assert recovered[vanished["id"]].state == "EXITED"
    assert "vanished" in recovered[vanished["id"]].events[-1].line
    assert recovered[stopped["id"]].state == "EXITED"
    assert recovered[alive["id"]].state == "RUNNING"


def test_recovery_adopts_labelled_containers_without_record(
    make_client: Any, create_pod: Any, state_dir: Path, clock: ManualClock
) -> None:
    pod = create_pod()
    label_record = _records(state_dir)[pod["id"]]
    (state_dir / "state.json").unlink()
    backend = ObservingBackend({pod["id"]: Observed(pod["id"], True, label_record)})
    client = make_client(backend=backend)
    adopted = client.get(f"/v2/pods/{pod['id']}").json()
    assert adopted["status"] == "PROVISIONING"
    assert adopted["name"] == pod["name"]
    assert pod["id"] in _records(state_dir)


def test_container_stopped_behind_our_back_shows_exited(
    make_client: Any, create_pod: Any, state_dir: Path, clock: ManualClock
) -> None:
    pod = create_pod()
    record = _records(state_dir)[pod["id"]]
    backend = ObservingBackend({pod["id"]: Observed(pod["id"], True, record)})
    client = make_client(backend=backend)
    assert client.get(f"/v2/pods/{pod['id']}").json()["status"] == "PROVISIONING"
    backend.observed[pod["id"]] = Observed(pod["id"], False, record)
    assert client.get(f"/v2/pods/{pod['id']}").json()["status"] == "EXITED"
    assert [p["status"] for p in client.get("/v2/pods").json()["pods"]] == ["EXITED"]
