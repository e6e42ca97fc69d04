"""runpod_pod CRUD of the stand-in provider against a fake RunPod REST v2 (checked against the OpenAPI)."""

from __future__ import annotations

import socket

from fake_runpod import FakeRunPod
from tf.iface import PlanContext
from tf.types import Unknown
from tf.utils import Diagnostics
from tfprovider_helpers import (
    TYPE_NAME,
    create_ctx,
    delete_ctx,
    errors,
    import_ctx,
    planned_create,
    read_ctx,
    unknowns,
    update_ctx,
)

from localcloud.tfprovider import client as client_module
from localcloud.tfprovider.client import Settings
from localcloud.tfprovider.pod_schema import BY_NAME
from localcloud.tfprovider.provider import RunPodProvider
from localcloud.tfprovider.resource_pod import PodResource


def _create(resource: PodResource, **overrides: object) -> dict:
    ctx = create_ctx()
    state = resource.create(ctx, planned_create(**overrides))
    assert not errors(ctx.diagnostics), errors(ctx.diagnostics)
    assert state is not None
    return state


def _validate(resource: PodResource, **overrides: object) -> list[str]:
    diags = Diagnostics()
    config = {k: (None if BY_NAME[k].computed and not BY_NAME[k].optional else v) for k, v in planned_create(**overrides).items()}
    resource.validate(diags, TYPE_NAME, config)
    return errors(diags)


def test_create_posts_a_v2_pod_and_stores_the_api_id(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    assert state["id"] in fake.pods
    assert unknowns(state) == []
    (post,) = [r for r in fake.requests if r.method == "POST"]
    assert post.path == "/v2/pods"
    assert post.authorization == f"Bearer {fake.api_key}"
    assert post.body["gpu"] == {"id": "NVIDIA GeForce RTX 4090", "count": 1}
    assert state["cost"] == 0.69 and state["status"] == "PROVISIONING" and state["data_center_id"]


def test_read_is_stable_and_drops_a_deleted_or_terminated_pod(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    assert resource.read(read_ctx(), state) == state
    fake.pods[state["id"]]["status"] = "TERMINATED"
    assert resource.read(read_ctx(), state) is None
    del fake.pods[state["id"]]
    assert resource.read(read_ctx(), state) is None


def test_update_patches_only_what_changed(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    planned = {**state, "name": "gpuops-9", "env": {"A": "1"}}
    ctx = update_ctx()
    new = resource.update(ctx, state, planned)
    assert not errors(ctx.diagnostics)
    (patch,) = [r for r in fake.requests if r.method == "PATCH"]
    assert patch.path == f"/v2/pods/{state['id']}"
    assert patch.body == {"name": "gpuops-9", "env": {"A": "1"}}
    assert new["name"] == "gpuops-9" and fake.pods[state["id"]]["env"] == {"A": "1"}


def test_plan_marks_status_and_cost_unknown_only_for_a_resetting_change(resource: PodResource) -> None:
    state = _create(resource)
    planned = resource.plan(PlanContext(Diagnostics(), TYPE_NAME, changed_fields={"name"}), state, dict(state))
    assert planned["status"] is not Unknown
    planned = resource.plan(PlanContext(Diagnostics(), TYPE_NAME, changed_fields={"image"}), state, dict(state))
    assert planned["status"] is Unknown and planned["cost"] is Unknown


def test_desired_state_stops_and_starts_the_pod(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource, desired_state="EXITED")
    assert fake.pods[state["id"]]["status"] == "EXITED" and state["desired_state"] == "EXITED"
    actions = [r.body for r in fake.requests if r.path.endswith("/action")]
    assert actions == [{"action": "stop"}]
    ctx = update_ctx()
    resource.update(ctx, state, {**state, "desired_state": "RUNNING", "status": Unknown, "cost": Unknown})
    assert not errors(ctx.diagnostics)
    assert fake.pods[state["id"]]["status"] == "RUNNING"
    # Stopped behind Terraform's back: the refresh shows it, so the next plan starts it.
    fake.pods[state["id"]]["status"] = "EXITED"
    assert resource.read(read_ctx(), {**state, "desired_state": "RUNNING"})["desired_state"] == "EXITED"


def test_delete_and_delete_again(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    ctx = delete_ctx()
    resource.delete(ctx, state)
    resource.delete(ctx, state)  # already gone: fine
    assert not errors(ctx.diagnostics) and fake.pods == {}


def test_import_leaves_create_time_arguments_and_env_empty(resource: PodResource) -> None:
    state = _create(resource, start_ssh=True)
    imported = resource.import_(import_ctx(), state["id"])
    assert imported["env"] is None and imported["start_ssh"] is None and imported["desired_state"] is None
    assert imported["image"] == state["image"] and imported["gpu_type_id"] == state["gpu_type_id"]
    ctx = import_ctx()
    assert resource.import_(ctx, "nope") is None and errors(ctx.diagnostics)


def test_api_problem_is_reported_with_title_detail_errors_and_request(resource: PodResource, fake: FakeRunPod) -> None:
    ctx = create_ctx()
    assert resource.create(ctx, planned_create(gpu_type_id="NVIDIA Bogus 9000")) is None
    (message,) = errors(ctx.diagnostics)
    assert "RunPod API answered 400" in message
    assert "NVIDIA Bogus 9000" in message
    assert f"POST {fake.host_url}/v2/pods" in message
    assert fake.api_key not in message


def test_unknown_field_is_rejected_by_name_like_runpod(fake: FakeRunPod, provider: RunPodProvider) -> None:
    client = provider.client()
    try:
        client.create_pod({"name": "x", "image": "i", "gpu": {"id": "NVIDIA A40"}, "interruptible": True})
    except client_module.ApiError as error:
        assert error.status == 400 and "interruptible" in error.detail
    else:  # pragma: no cover
        raise AssertionError("the fake accepted an unknown field")


def test_429_is_retried_after_retry_after(fake: FakeRunPod, provider: RunPodProvider) -> None:
    waits: list[float] = []
    client = client_module.RunPodClient(provider.settings, sleep=waits.append)
    fake.fail_next = [(429, "slow down", {"Retry-After": "2"})]
    assert client.get_pod("missing") is None
    assert waits == [2.0]


def test_bad_key_gives_401_without_the_key(fake: FakeRunPod) -> None:
    prov = RunPodProvider()
    prov.settings = Settings(base_url=fake.host_url, api_key="wrong-key-123")
    ctx = create_ctx()
    assert PodResource(prov).create(ctx, planned_create()) is None
    (message,) = errors(ctx.diagnostics)
    assert "401" in message and "RUNPOD_API_KEY" in message and "wrong-key-123" not in message


def test_unreachable_api_names_the_url_and_what_to_do() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    prov = RunPodProvider()
    prov.settings = Settings(base_url=f"http://127.0.0.1:{port}", api_key="k")
    ctx = create_ctx()
    assert PodResource(prov).create(ctx, planned_create()) is None
    (message,) = errors(ctx.diagnostics)
    assert f"127.0.0.1:{port}/v2/pods" in message and "RUNPOD_API_BASE_URL" in message


def test_validate_refuses_what_runpod_refuses(resource: PodResource) -> None:
    assert _validate(resource) == []
    assert any("cloud" in e for e in _validate(resource, cloud="ALL"))
    assert any("ports" in e for e in _validate(resource, ports=["22"]))
    assert any("persistent_volume.size" in e for e in _validate(resource, persistent_volume={"size": 0, "path": "/w"}))
    assert any("mutually exclusive" in e for e in _validate(
        resource, persistent_volume={"size": 20, "path": "/w"}, network_volumes=[{"volume_id": "v", "path": "/n"}]))
    assert any("gpu_type_id or cpu_type_id" in e for e in _validate(resource, gpu_type_id=None))
    assert any("min_ram_per_gpu" in e for e in _validate(resource, min_ram_per_gpu=8))
    assert any("desired_state" in e for e in _validate(resource, desired_state="STOPPED"))
    assert any("CUDA" in e for e in _validate(resource, min_cuda_version="12.1", allowed_cuda_versions=["12.4"]))
