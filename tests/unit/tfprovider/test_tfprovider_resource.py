"""runpod_pod CRUD of the stand-in provider against a fake RunPod REST v1."""

from __future__ import annotations

import socket

import pytest

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

from localcloud.tfprovider.client import Settings
from localcloud.tfprovider.provider import RunPodProvider
from localcloud.tfprovider.resource_pod import PodResource


def _create(resource: PodResource, **overrides: object) -> dict:
    ctx = create_ctx()
    state = resource.create(ctx, planned_create(**overrides))
    assert not errors(ctx.diagnostics)
    assert state is not None
    return state


def test_create_posts_pod_and_stores_the_api_id(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    assert state["id"] in fake.pods
    assert unknowns(state) == []
    assert state["cost_per_hr"] == 0.69 and state["status"] == "RUNNING"
    request = fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/v1/pods")
    assert request.authorization == f"Bearer {fake.api_key}"
    assert request.body is not None
    assert request.body["gpuTypeIds"] == ["NVIDIA GeForce RTX 4090"]
    assert request.body["env"]["FOO"] == "bar"
    assert request.body["interruptible"] is False


def test_read_is_stable_after_create(resource: PodResource) -> None:
    state = _create(resource)
    ctx = read_ctx()
    assert resource.read(ctx, dict(state)) == state
    assert not errors(ctx.diagnostics)


def test_read_of_a_deleted_or_terminated_pod_removes_it(resource: PodResource, fake: FakeRunPod) -> None:
    first, second = _create(resource), _create(resource, name="gpuops-1")
    del fake.pods[first["id"]]
    fake.pods[second["id"]]["desiredStatus"] = "TERMINATED"
    assert resource.read(read_ctx(), first) is None
    assert resource.read(read_ctx(), second) is None


def test_plan_marks_status_unknown_only_for_changes(resource: PodResource) -> None:
    state = _create(resource)
    unchanged = resource.plan(PlanContext(Diagnostics(), TYPE_NAME, set()), dict(state), dict(state))
    assert unchanged == state
    changed = resource.plan(PlanContext(Diagnostics(), TYPE_NAME, {"env"}), dict(state), dict(state, env=["A=1"]))
    assert changed is not None and changed["status"] is Unknown


def test_update_patches_the_pod(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    planned = dict(state, env=["FOO=baz"], status=Unknown)
    ctx = update_ctx()
    new = resource.update(ctx, state, planned)
    assert not errors(ctx.diagnostics)
    assert new == dict(planned, status="RUNNING")
    request = fake.requests[-1]
    assert (request.method, request.path) == ("PATCH", f"/v1/pods/{state['id']}")
    assert request.body is not None and request.body["env"] == {"FOO": "baz"}
    assert fake.pods[state["id"]]["env"] == {"FOO": "baz"}


def test_delete_expects_204_and_accepts_404(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    ctx = delete_ctx()
    resource.delete(ctx, state)
    assert fake.pods == {}
    resource.delete(ctx, state)  # already gone: fine
    assert not errors(ctx.diagnostics)
    assert [r.method for r in fake.requests[-2:]] == ["DELETE", "DELETE"]


def test_import(resource: PodResource) -> None:
    state = _create(resource)
    ctx = import_ctx()
    imported = resource.import_(ctx, state["id"])
    assert imported is not None and imported["id"] == state["id"] and imported["name"] == "gpuops-0"
    assert resource.import_(ctx, "nope") is None
    assert "no pod with id 'nope'" in errors(ctx.diagnostics)[0]


def test_unknown_gpu_type_fails_with_the_apis_message(resource: PodResource, fake: FakeRunPod) -> None:
    ctx = create_ctx()
    assert resource.create(ctx, planned_create(gpu_type_id="NVIDIA Bogus")) is None
    (error,) = errors(ctx.diagnostics)
    assert "400" in error
    assert "unknown GPU type 'NVIDIA Bogus'" in error
    assert f"POST {fake.base_url}/pods" in error
    assert "gpu_type_id" in error


def test_bad_api_key_fails_with_401_and_never_shows_the_key(fake: FakeRunPod) -> None:
    provider = RunPodProvider()
    provider.settings = Settings(base_url=fake.base_url, api_key="wrong-key-0123456789")
    ctx = create_ctx()
    assert PodResource(provider).create(ctx, planned_create()) is None
    (error,) = errors(ctx.diagnostics)
    assert "401" in error and "RUNPOD_API_KEY" in error
    assert "wrong-key-0123456789" not in error
    assert "wrong-key" not in repr(provider.settings)


def test_missing_api_key_says_what_to_set(fake: FakeRunPod) -> None:
    provider = RunPodProvider()
    provider.settings = Settings(base_url=fake.base_url, api_key="")
    ctx = read_ctx()
    current = {"id": "abc"}
    assert PodResource(provider).read(ctx, current) == current
    (error,) = errors(ctx.diagnostics)
    assert "RUNPOD_API_KEY is not set" in error
    assert fake.requests == []  # nothing was sent without a key


def test_server_error_and_read_failure_keep_the_state(resource: PodResource, fake: FakeRunPod) -> None:
    state = _create(resource)
    fake.fail_next = (503, "backend overloaded")
    ctx = read_ctx()
    assert resource.read(ctx, state) == state
    (error,) = errors(ctx.diagnostics)
    assert "503" in error and "backend overloaded" in error and "later" in error


def test_connection_refused_names_the_url_and_what_to_do() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = RunPodProvider()
    provider.settings = Settings(base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
    ctx = delete_ctx()
    PodResource(provider).delete(ctx, {"id": "abc"})
    (error,) = errors(ctx.diagnostics)
    assert "unreachable" in error
    assert f"http://127.0.0.1:{port}/v1/pods/abc" in error
    assert "RUNPOD_BASE_URL" in error


def test_validate(resource: PodResource) -> None:
    def check(**config: object) -> list[str]:
        diags = Diagnostics()
        full = {k: None for k in planned_create()}
        full.update(image_name="img", gpu_type_id="NVIDIA A40")
        full.update(config)
        resource.validate(diags, TYPE_NAME, full)
        return errors(diags)

    assert check() == []
    assert check(image_name=Unknown) == []
    assert "Conflicting image_name and template_id" in check(template_id="t")[0]
    assert "Missing image_name or template_id" in check(image_name=None)[0]
    assert "must be one of ON_DEMAND, SPOT" in check(type="CHEAP")[0]
    assert "COMMUNITY, SECURE, ALL" in check(cloud_type="BOGUS")[0]
    assert "gpu_count" in check(gpu_count=0)[0]
    assert "KEY=VALUE" in check(env=["NOEQUALS", "OK=1", Unknown])[0]
    assert "bad: ['22']" in check(ports="22,8888/http")[0]


def test_key_file_is_read_when_no_key_is_in_the_environment(tmp_path) -> None:
    key_file = tmp_path / "api_key"
    key_file.write_text("secret-from-file\n")
    settings = Settings.from_env(environ={"RUNPOD_API_KEY_FILE": str(key_file), "RUNPOD_BASE_URL": "http://x/v1"})
    assert settings.api_key == "secret-from-file"
    assert "secret-from-file" not in repr(settings)


def test_unreadable_key_file_is_a_clear_error(tmp_path) -> None:
    from localcloud.tfprovider.client import ApiError

    with pytest.raises(ApiError, match="RUNPOD_API_KEY_FILE=.*missing"):
        Settings.from_env(environ={"RUNPOD_API_KEY_FILE": str(tmp_path / "missing")})
