"""Strictness as RunPod's: 422 names each contract violation, 400 a broken rule, 404 a missing reference."""

from __future__ import annotations

from typing import Any

import pytest


def _problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"bogus": 1}, "$: additional properties 'bogus' not allowed"),
        ({"imageName": "x"}, "$: additional properties 'imageName' not allowed"),
        ({"gpu": {"id": "NVIDIA A40", "count": 1, "typo": 2}}, "$.gpu: additional properties 'typo' not allowed"),
        ({"cloud": "ALL"}, "$.cloud: value must be one of 'SECURE', 'COMMUNITY'"),
        ({"gpu": {"id": "NVIDIA A40", "count": 0}}, "$.gpu.count: must be >= 1 but found 0"),
        ({"gpu": {"id": "NVIDIA A40", "count": "2"}}, "$.gpu.count: expected integer, but got string"),
        ({"disk": 0}, "$.disk: must be >= 1 but found 0"),
        ({"mounts": {"persistent": {"size": 5, "path": "/w"}}}, "$.mounts.persistent.size: must be >= 10 but found 5"),
        ({"mounts": {"persistent": {"size": 20}}}, "$.mounts.persistent: missing properties: 'path'"),
        ({"env": {"N": 1}}, "$.env.N: expected string, but got integer"),
        ({"env": ["A=1"]}, "$.env: expected object, but got array"),
        ({"ports": "22/tcp"}, "$.ports: expected array, but got string"),
        ({"globalNetworking": "yes"}, "$.globalNetworking: expected boolean, but got string"),
        ({"name": ""}, "$.name: length must be >= 1, but got 0"),
        ({"image": None}, "$.image: expected string, but got null"),
        ({"gpu": {"id": "NVIDIA A40", "minCudaVersion": "12"}}, "$.gpu.minCudaVersion: '12' does not match pattern"),
    ],
)
def test_contract_violations_are_422_naming_each(
    client: Any, pod_body: dict[str, Any], overrides: dict[str, Any], error: str
) -> None:
    body = _problem(client.post("/v2/pods", json={**pod_body, **overrides}), 422)
    assert body["detail"] == "Request validation failed."
    assert any(e.startswith(error) for e in body["errors"]), body["errors"]
    assert client.get("/v2/pods").json() == {"pods": []}


def test_several_violations_are_all_named(client: Any, pod_body: dict[str, Any]) -> None:
    body = _problem(client.post("/v2/pods", json={**pod_body, "cloud": "X", "disk": 0, "spot": True}), 422)
    assert body["errors"] == [
        "$: additional properties 'spot' not allowed",
        "$.cloud: value must be one of 'SECURE', 'COMMUNITY'",
        "$.disk: must be >= 1 but found 0",
    ]


def test_image_is_required_and_name_too(client: Any) -> None:
    body = _problem(client.post("/v2/pods", json={"gpu": {"id": "NVIDIA A40"}}), 422)
    assert "$: missing properties: 'image'" in body["errors"]
    assert "$: missing properties: 'name'" in body["errors"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"gpu": {"id": "NVIDIA GeForce GTX 9999"}}, "gpu.id: unknown GPU type 'NVIDIA GeForce GTX 9999'"),
        ({"gpu": {"id": "NVIDIA A40", "count": 9}}, "gpu.count: at most 8 x NVIDIA A40 per pod in the SECURE cloud"),
        ({"gpu": {"id": "NVIDIA A40", "count": 5}, "cloud": "COMMUNITY"}, "at most 4"),
        ({"gpu": None}, "exactly one of gpu or cpu"),
        ({"cpu": {"id": "cpu5c", "vcpuCount": 4}}, "exactly one of gpu or cpu must be set, not both"),
        ({"ports": ["22/udp"]}, "ports: invalid entry '22/udp'"),
        ({"ports": ["70000/tcp"]}, "ports: invalid entry '70000/tcp'"),
        ({"ports": ["22/tcp", "22/http"]}, "port 22 is listed more than once"),
        ({"env": {"A=B": "x"}}, "env: invalid variable 'A=B'"),
        ({"args": "sh -c 'unclosed"}, "args: cannot split"),
        ({"mounts": {"persistent": {"size": 20, "path": "workspace"}}}, "not an absolute path"),
        ({"dataCenterIds": ["XX-1"]}, "dataCenterIds: unknown data center 'XX-1'"),
        ({"globalNetworking": True, "dataCenterIds": ["EU-SE-1"]}, "globalNetworking is not offered"),
        ({"globalNetworking": True, "gpu": {"id": "AMD Instinct MI300X OAM"}}, "requires an NVIDIA GPU"),
        ({"gpu": {"id": "AMD Instinct MI300X OAM"}, "dataCenterIds": ["EU-SE-1"]}, "no data center among EU-SE-1"),
        ({"gpu": {"id": "NVIDIA A40", "allowedCudaVersions": ["11.8"]}}, "no machine with a matching CUDA version"),
        (
            {"gpu": {"id": "NVIDIA A40", "allowedCudaVersions": ["12.8"], "minCudaVersion": "12.4"}},
            "mutually exclusive",
        ),
    ],
)
def test_rule_violations_are_400(client: Any, pod_body: dict[str, Any], overrides: dict[str, Any], words: str) -> None:
    body = {k: v for k, v in {**pod_body, **overrides}.items() if v is not None}
    problem = _problem(client.post("/v2/pods", json=body), 400)
    assert words in problem["detail"]
    assert client.get("/v2/pods").json() == {"pods": []}


def test_cpu_pods_are_refused_clearly(client: Any) -> None:
    body = {"name": "c", "image": "img", "cpu": {"id": "cpu5c", "vcpuCount": 4}}
    assert "CPU pods are not supported" in _problem(client.post("/v2/pods", json=body), 400)["detail"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"templateId": "30zmvf89kd"}, "template '30zmvf89kd' not found"),
        ({"registry": "reg1"}, "container registry credential 'reg1' not found"),
        ({"mounts": {"network": [{"volumeId": "vol1", "path": "/v"}]}}, "network volume 'vol1' not found"),
    ],
)
def test_missing_references_are_404(
    client: Any, pod_body: dict[str, Any], overrides: dict[str, Any], words: str
) -> None:
    assert words in _problem(client.post("/v2/pods", json={**pod_body, **overrides}), 404)["detail"]


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "request body is required"), (b"{not json", "invalid JSON body"), (b'{"name": NaN}', "NaN is not valid")],
)
def test_unparsable_body_is_400(client: Any, content: bytes, words: str) -> None:
    resp = client.post("/v2/pods", content=content, headers={"Content-Type": "application/json"})
    assert words in _problem(resp, 400)["detail"]


def test_update_is_as_strict(client: Any, create_pod: Any) -> None:
    pod = create_pod()
    url = f"/v2/pods/{pod['id']}"
    assert _problem(client.patch(url, json={"imageName": "x"}), 422)["errors"] == [
        "$: additional properties 'imageName' not allowed"
    ]
    assert _problem(client.patch(url, json={"disk": 0}), 422)["errors"] == ["$.disk: must be >= 1 but found 0"]
    assert "ports:" in _problem(client.patch(url, json={"ports": ["abc"]}), 400)["detail"]
    assert "mount kind is fixed" in _problem(client.patch(url, json={"mounts": {"network": []}}), 400)["detail"]
    mountless = create_pod(mounts={})
    persistent = {"mounts": {"persistent": {"size": 20, "path": "/w"}}}
    assert "mount kind is fixed" in _problem(client.patch(f"/v2/pods/{mountless['id']}", json=persistent), 400)[
        "detail"
    ]
    assert "template" in _problem(client.patch(url, json={"templateId": "t1"}), 404)["detail"]


def test_global_networking_patch_needs_a_data_center_that_offers_it(client: Any, create_pod: Any) -> None:
    pod = create_pod(dataCenterIds=["EU-SE-1"])
    resp = client.patch(f"/v2/pods/{pod['id']}", json={"globalNetworking": True})
    assert "not offered in data center EU-SE-1" in _problem(resp, 400)["detail"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"action": "reset"}, "$.action: value must be one of 'start', 'stop', 'restart', 'terminate'"),
        ({"action": "stop", "force": True}, "$: additional properties 'force' not allowed"),
        ({}, "$: missing properties: 'action'"),
    ],
)
def test_bad_action_body_is_422(client: Any, create_pod: Any, body: dict[str, Any], error: str) -> None:
    pod = create_pod()
    assert _problem(client.post(f"/v2/pods/{pod['id']}/action", json=body), 422)["errors"] == [error]


def test_bad_query_parameter_is_422(client: Any) -> None:
    body = _problem(client.get("/v2/pods", params={"includeClusterPods": "maybe"}), 422)
    assert body["errors"] == ["query.includeClusterPods: expected boolean, but got string"]


def test_unknown_route_and_method(client: Any) -> None:
    missing = _problem(client.get("/v2/no-such-route"), 404)
    assert "/v2/no-such-route" in missing["detail"]
    assert _problem(client.put("/v2/pods"), 405)["title"] == "Method Not Allowed"
    assert _problem(client.get("/nothing-here"), 404)["status"] == 404
