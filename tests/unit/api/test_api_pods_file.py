"""The pods file (gpuops_api/podsfile.py) as the app role renders it from the recorded deployment's inventory."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from gpuops_api.errors import UpstreamError
from gpuops_api.podsfile import PodsFile

from .fakes import FIXTURES, INDEX, load

RENDERED = FIXTURES / "inventory" / "pods.json"


@pytest.fixture
def pods_file(tmp_path: Path) -> PodsFile:
    shutil.copy(RENDERED, tmp_path / "pods.json")
    return PodsFile(tmp_path / "pods.json")


def test_the_rendered_file_gives_the_recorded_pods_and_their_ssh_endpoints(pods_file: PodsFile) -> None:
    pods = pods_file.pods()
    assert {name: pod.id for name, pod in pods.items()} == INDEX["pods"]
    for number, name in enumerate(sorted(pods)):
        recorded = load(f"cloud/pod_{number}.json")["body"]
        pod = pods[name]
        assert (pod.ssh_host, pod.ssh_port) == (recorded["ssh"]["direct"]["host"], recorded["ssh"]["direct"]["port"])
        assert pod.host_key_alias is not None and pod.host_key_alias.startswith(f"runpod-{recorded['id']}-")
        assert (pod.gpu_type_id, pod.gpu_count) == (recorded["gpu"]["id"], recorded["gpu"]["count"])
        assert pod.global_networking is recorded["globalNetworking"]["enabled"]
        assert pod.node == name  # no slurm_node_name in the recording: the inventory name


def test_a_pod_is_found_by_node_name_then_id_then_inventory_name(pods_file: PodsFile) -> None:
    pod_id = INDEX["pods"]["gpuopsapirec-1"]
    assert pods_file.by_node("gpuopsapirec-1").id == pod_id
    assert pods_file.by_node(pod_id).name == "gpuopsapirec-1"
    assert pods_file.by_node("elsewhere") is None


def test_the_file_is_parsed_again_only_when_it_changes(pods_file: PodsFile, monkeypatch: pytest.MonkeyPatch) -> None:
    first = pods_file.pods()
    loads = []
    original = json.loads
    monkeypatch.setattr(json, "loads", lambda *a, **k: loads.append(1) or original(*a, **k))
    assert pods_file.pods() is first and not loads
    data = original(pods_file.path.read_text())
    data["pods"].pop()
    tmp = pods_file.path.with_name("new.json")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, pods_file.path)  # what the template module does
    assert list(pods_file.pods()) == ["gpuopsapirec-0"] and loads


def test_no_file_is_no_pods_and_an_unreadable_one_is_named(pods_file: PodsFile) -> None:
    pods_file.path.unlink()
    assert pods_file.pods() == {}
    pods_file.path.mkdir()
    with pytest.raises(UpstreamError) as err:
        pods_file.pods()
    assert err.value.upstream == "inventory" and str(pods_file.path) in err.value.detail
