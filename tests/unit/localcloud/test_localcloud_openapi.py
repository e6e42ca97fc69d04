"""Every Pod the local cloud answers conforms to RunPod's published OpenAPI
schema (localcloud/reference/runpod-rest-v1-openapi.json), in every state a
client can see: initialising (SSH details null), running, stopped."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from localcloud.clock import ManualClock

READY_DELAY = 3.0  # as in conftest.py

SPEC = json.loads(
    (Path(__file__).resolve().parents[3] / "localcloud" / "reference" / "runpod-rest-v1-openapi.json").read_text()
)


def _nullable(schema: Any) -> Any:
    """RunPod documents fields such as publicIp and portMappings as plain
    types, yet answers null for them while a pod initialises: accept null
    wherever a type is given, and resolve $refs into the spec."""
    if isinstance(schema, dict):
        out = {k: _nullable(v) for k, v in schema.items() if k not in ("example", "format")}
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(schema, list):
        return [_nullable(v) for v in schema]
    return schema


def _validator(name: str) -> jsonschema.Draft4Validator:
    schemas = _nullable(copy.deepcopy(SPEC["components"]["schemas"]))
    root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    return jsonschema.Draft4Validator(root)


POD = _validator("Pod")


def _errors(pod: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in POD.iter_errors(pod)]


def test_the_schema_is_strict_enough_to_fail() -> None:
    assert _errors({"id": 5, "desiredStatus": "FLYING"})


def test_pods_conform_in_every_state(client: Any, create_pod: Any, clock: ManualClock) -> None:
    pod = create_pod()
    assert pod["publicIp"] is None and pod["portMappings"] is None
    assert _errors(pod) == []

    clock.advance(READY_DELAY + 1)
    running = client.get(f"/v1/pods/{pod['id']}").json()
    assert running["portMappings"]["22"]
    assert _errors(running) == []

    assert client.post(f"/v1/pods/{pod['id']}/stop").status_code == 200
    stopped = client.get(f"/v1/pods/{pod['id']}").json()
    assert stopped["desiredStatus"] == "EXITED"
    assert _errors(stopped) == []

    listed = client.get("/v1/pods").json()
    assert [p["id"] for p in listed] == [pod["id"]]
    assert all(_errors(p) == [] for p in listed)


@pytest.mark.parametrize("spot", [False, True])
def test_create_input_accepted_by_runpod_is_accepted_here(client: Any, spot: bool) -> None:
    body = {
        "name": "conformance",
        "imageName": "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
        "gpuTypeIds": ["NVIDIA RTX A6000"],
        "gpuCount": 2,
        "cloudType": "SECURE",
        "interruptible": spot,
        "ports": ["22/tcp", "8888/http"],
        "env": {"PUBLIC_KEY": "ssh-ed25519 AAAA test"},
        "containerDiskInGb": 20,
        "volumeInGb": 0,
    }
    assert list(_validator("PodCreateInput").iter_errors(body)) == []
    answer = client.post("/v1/pods", json=body)
    assert answer.status_code == 201, answer.text
    assert _errors(answer.json()) == []
