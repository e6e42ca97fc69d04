"""Invalid input answers 400 with a RunPod-style body naming the field."""

from __future__ import annotations

from typing import Any

import pytest


def _error(resp: Any) -> str:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["status"] == 400
    assert body["message"] == body["error"]
    return body["error"]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"gpuTypeIds": ["NVIDIA GeForce GTX 9999"]}, "gpuTypeIds", "unknown GPU type 'NVIDIA GeForce GTX 9999'"),
        ({"gpuTypeIds": ["NVIDIA A40", "nope"]}, "gpuTypeIds", "'nope'"),
        ({"gpuTypeIds": []}, "gpuTypeIds", "required"),
        ({"gpuCount": 0}, "gpuCount", "greater than or equal to 1"),
        ({"gpuCount": 9}, "gpuCount", "at most 8"),
        ({"gpuCount": "2"}, "gpuCount", "valid integer"),
        ({"cloudType": "PRIVATE"}, "cloudType", "'SECURE', 'COMMUNITY' or 'ALL'"),
        ({"imageName": None}, "imageName", "required"),
        ({"imageName": ""}, "imageName", "required"),
        ({"ports": ["22/udp"]}, "ports", "invalid port '22/udp'"),
        ({"ports": ["70000/tcp"]}, "ports", "between 1 and 65535"),
        ({"ports": "22/tcp,22/http"}, "ports", "more than once"),
        ({"env": {"1BAD": "x"}}, "env", "invalid variable name '1BAD'"),
        ({"env": {"N": 1}}, "env.N", "valid string"),
        ({"env": ["A=1"]}, "env", "should be an object"),
        ({"interruptible": "yes"}, "interruptible", "valid boolean"),
        ({"containerDiskInGb": 0}, "containerDiskInGb", "greater than or equal to 1"),
        ({"volumeInGb": -1}, "volumeInGb", "greater than or equal to 0"),
        ({"volumeMountPath": "workspace"}, "volumeMountPath", "not an absolute path"),
        ({"name": "x" * 192}, "name", "at most 191"),
        ({"computeType": "CPU"}, "computeType", "only GPU"),
        ({"networkVolumeId": "agv6w2qcg7"}, "networkVolumeId", "not supported"),
    ],
)
def test_create_rejects_bad_field(
    client: Any, pod_body: dict[str, Any], overrides: dict[str, Any], field: str, words: str
) -> None:
    message = _error(client.post("/v1/pods", json={**pod_body, **overrides}))
    assert message.startswith(f"{field}:") or f"; {field}:" in message, message
    assert words in message
    assert client.get("/v1/pods").json() == []


def test_missing_image_name_is_400(client: Any, pod_body: dict[str, Any]) -> None:
    body = {k: v for k, v in pod_body.items() if k != "imageName"}
    assert _error(client.post("/v1/pods", json=body)).startswith("imageName: required")


def test_template_without_image_is_explained(client: Any, pod_body: dict[str, Any]) -> None:
    body = {k: v for k, v in pod_body.items() if k != "imageName"} | {"templateId": "30zmvf89kd"}
    assert "templates (templateId) are not supported" in _error(client.post("/v1/pods", json=body))


def test_several_errors_are_all_named(client: Any, pod_body: dict[str, Any]) -> None:
    message = _error(client.post("/v1/pods", json={**pod_body, "gpuCount": 0, "cloudType": "X"}))
    assert "gpuCount:" in message
    assert "cloudType:" in message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "request body is required"),
        (b"{not json", "invalid JSON body"),
        (b"[1, 2]", "request body: Input should be an object"),
    ],
)
def test_unparsable_body_is_400(client: Any, content: bytes, words: str) -> None:
    resp = client.post("/v1/pods", content=content, headers={"Content-Type": "application/json"})
    assert words in _error(resp)


def test_snake_case_names_are_not_runpod_fields(client: Any, pod_body: dict[str, Any]) -> None:
    body = {k: v for k, v in pod_body.items() if k != "imageName"} | {"image_name": "x"}
    assert _error(client.post("/v1/pods", json=body)).startswith("imageName: required")


def test_unknown_fields_are_ignored(client: Any, pod_body: dict[str, Any]) -> None:
    resp = client.post("/v1/pods", json={**pod_body, "minRAMPerGPU": 8, "dockerArgs": "", "someFutureField": 1})
    assert resp.status_code == 201, resp.text


def test_update_rejects_bad_field(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    assert _error(client.patch(f"/v1/pods/{pod['id']}", json={"ports": ["abc"]})).startswith("ports:")
    assert _error(client.patch(f"/v1/pods/{pod['id']}", json={"containerDiskInGb": 0})).startswith("containerDiskInGb:")
    assert _error(client.patch(f"/v1/pods/{pod['id']}", json={"env": {"A": 1}})).startswith("env.A:")
    assert _error(client.patch(f"/v1/pods/{pod['id']}", json={"imageName": ""})).startswith("imageName:")


def test_bad_list_filter_is_400(client: Any) -> None:
    assert _error(client.get("/v1/pods", params={"desiredStatus": "SLEEPING"})).startswith("desiredStatus:")
