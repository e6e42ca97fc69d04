"""Translation between ``runpod_pod`` state (snake_case, 2.x names) and RunPod REST v2 pods (camelCase).

Pure functions, no I/O. Where the API reports a value that means the same as
what the state already holds (the same ports in another order), the state's
spelling is kept, so a refresh never shows a change that is not one.
"""

from __future__ import annotations

from typing import Any, Optional

from msgpack import ExtType
from tf.types import Unknown

from localcloud.tfprovider.client import Pod
from localcloud.tfprovider.pod_schema import ATTRIBUTE_NAMES, BY_NAME

State = dict[str, Any]

# Create-time arguments the v2 read does not return (the docs name these eight,
# plus env and vcpu_count): the state keeps what was configured.
NOT_READ = frozenset(
    {
        "env",
        "vcpu_count",
        "template_id",
        "start_ssh",
        "start_jupyter",
        "allowed_cuda_versions",
        "min_cuda_version",
        "min_ram_per_gpu",
        "min_vcpu_count_per_gpu",
        "data_center_ids",
    }
)

# Arguments PATCH /v2/pods/{id} changes (UpdatePodRequest): attribute -> API field.
PATCHABLE = {
    "name": "name",
    "image": "image",
    "args": "args",
    "disk": "disk",
    "ports": "ports",
    "env": "env",
    "registry": "registry",
    "global_networking": "globalNetworking",
}

# A change to any of these restarts the pod on RunPod: its status and cost are unknown until applied.
RESETS_POD = frozenset({"image", "args", "disk", "ports", "env", "registry", "global_networking", "desired_state"})

UNSUPPORTED = ("min_ram_per_gpu", "min_vcpu_count_per_gpu")
"""2.x arguments with no field in the vendored v2 OpenAPI: the stand-in refuses them."""


def is_unknown(value: Any) -> bool:
    """True for a value Terraform does not know yet.

    Besides the framework's ``Unknown``, Terraform sends unknowns with
    refinements (e.g. "not null") as a msgpack extension the framework
    passes through as ``ExtType``.
    """
    return value is Unknown or isinstance(value, ExtType)


def is_set(value: Any) -> bool:
    """True for a known, non-null value."""
    return value is not None and not is_unknown(value)


def number(value: Any) -> Any:
    """Whole floats as ints (``20.0`` -> ``20``); other values as they are."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _float(value: Any) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def mounts_body(state: State) -> Optional[dict[str, Any]]:
    """``mounts`` of a create body: a persistent volume or network volumes, else ``None``."""
    persistent = state.get("persistent_volume")
    if is_set(persistent):
        return {"persistent": {"size": number(persistent["size"]), "path": persistent["path"]}}
    network = state.get("network_volumes")
    if is_set(network) and network:
        return {"network": [{"volumeId": v["volume_id"], "path": v["path"]} for v in network]}
    return None


def create_body(planned: State) -> dict[str, Any]:
    """The ``POST /v2/pods`` body (CreatePodRequest) for a planned state; unset arguments are left out."""
    body: dict[str, Any] = {}
    for attr, field in PATCHABLE.items():
        value = planned.get(attr)
        if is_set(value):
            body[field] = number(value) if attr == "disk" else value
    simple = {
        "template_id": "templateId",
        "cloud": "cloud",
        "data_center_ids": "dataCenterIds",
        "start_ssh": "startSsh",
        "start_jupyter": "startJupyter",
    }
    for attr, field in simple.items():
        if is_set(planned.get(attr)):
            body[field] = planned[attr]
    if is_set(planned.get("gpu_type_id")):
        gpu: dict[str, Any] = {"id": planned["gpu_type_id"]}
        if is_set(planned.get("gpu_count")):
            gpu["count"] = number(planned["gpu_count"])
        if is_set(planned.get("allowed_cuda_versions")):
            gpu["allowedCudaVersions"] = list(planned["allowed_cuda_versions"])
        if is_set(planned.get("min_cuda_version")):
            gpu["minCudaVersion"] = planned["min_cuda_version"]
        body["gpu"] = gpu
    if is_set(planned.get("cpu_type_id")):
        body["cpu"] = {"id": planned["cpu_type_id"], "vcpuCount": number(planned.get("vcpu_count"))}
    mounts = mounts_body(planned)
    if mounts is not None:
        body["mounts"] = mounts
    return body


def update_body(prior: State, planned: State) -> dict[str, Any]:
    """The ``PATCH /v2/pods/{id}`` body: the mutable fields whose planned value differs from the prior one.

    PATCH leaves omitted fields as they are; a field the configuration no
    longer sets is cleared (``registry: null``, ``env: {}``).
    """
    body: dict[str, Any] = {}
    for attr, field in PATCHABLE.items():
        new, old = planned.get(attr), prior.get(attr)
        if is_unknown(new) or same(attr, old, new):
            continue
        if new is None:
            if attr == "registry":
                body[field] = None
            elif attr == "env":
                body[field] = {}
            continue
        body[field] = number(new) if attr == "disk" else new
    return body


def desired_state_of(status: Optional[str]) -> Optional[str]:
    """A pod status as ``desired_state``: RUNNING for a pod on its way up, EXITED when stopped."""
    if status in ("PROVISIONING", "STARTING", "RUNNING"):
        return "RUNNING"
    return status


def _api_values(pod: Pod) -> State:
    """What the API says, in attribute names; ``None`` where the API says nothing."""
    gpu = pod.get("gpu") or {}
    cpu = pod.get("cpu") or {}
    mounts = pod.get("mounts") or {}
    persistent = mounts.get("persistent")
    network = mounts.get("network")
    networking = pod.get("globalNetworking") or {}
    cluster = pod.get("cluster") or {}
    return {
        "id": pod.get("id"),
        "name": pod.get("name"),
        "image": pod.get("image"),
        "args": pod.get("args"),
        "disk": number(pod.get("disk")),
        "ports": list(pod["ports"]) if isinstance(pod.get("ports"), list) else None,
        "registry": pod.get("registry"),
        "gpu_type_id": gpu.get("id"),
        "gpu_count": number(gpu.get("count")) if gpu else None,
        "cloud": pod.get("cloud"),
        "cpu_type_id": cpu.get("id"),
        "data_center_id": pod.get("dataCenterId"),
        "global_networking": bool(networking.get("enabled", False)),
        "persistent_volume": (
            {"size": number(persistent.get("size")), "path": persistent.get("path")}
            if isinstance(persistent, dict)
            else None
        ),
        "network_volumes": (
            [{"volume_id": v.get("volumeId"), "path": v.get("path")} for v in network]
            if isinstance(network, list) and network
            else None
        ),
        "desired_state": desired_state_of(pod.get("status")),
        "status": pod.get("status"),
        "cost": _float(pod.get("cost")),
        "created_at": pod.get("createdAt"),
        "memory_in_gb": None,
        "locked": bool(pod.get("locked", False)),
        "cluster_ip": cluster.get("ip"),
    }


def same(attr: str, prior: Any, api: Any) -> bool:
    """Whether a prior state value and an API value mean the same thing."""
    if attr == "ports" and isinstance(prior, list) and isinstance(api, list):
        return sorted(prior) == sorted(api)
    if isinstance(prior, (int, float)) and isinstance(api, (int, float)) and not isinstance(prior, bool):
        return float(prior) == float(api)
    if isinstance(prior, dict) and isinstance(api, dict):
        return set(prior) == set(api) and all(same(k, prior[k], api[k]) for k in prior)
    return bool(prior == api)


# Kept as configured once stored: global networking takes effect at the next
# start, so the API reports it enabled only once an address is assigned.
_STICKY = frozenset({"global_networking"})


def state_from_pod(pod: Pod, prior: Optional[State] = None) -> State:
    """The resource state for a pod from the API.

    :param pod: the pod as the API returned it
    :param prior: the state held so far (``None`` on import). Its values are kept where
        the API agrees with them, says nothing, or never reports them (create-time
        arguments); an optional, non-computed argument that was null stays null.
    """
    api = _api_values(pod)
    state: State = {}
    for attr in ATTRIBUTE_NAMES:
        old, new = (prior or {}).get(attr), api.get(attr)
        schema = BY_NAME[attr]
        if attr in NOT_READ:
            state[attr] = old if prior is not None else None
        elif prior is not None and schema.optional and not schema.computed and not is_set(old):
            state[attr] = None
        elif not is_set(old):
            state[attr] = new
        elif new is None and not schema.computed:
            state[attr] = new if attr in ("persistent_volume", "network_volumes", "registry") else old
        elif new is None or attr in _STICKY or same(attr, old, new):
            state[attr] = old
        else:
            state[attr] = new
    return state


def fill_unknowns(planned: State, pod: Pod, prior: Optional[State] = None) -> State:
    """A planned state with every unknown value taken from the API's answer.

    Known planned values are kept as planned: Terraform requires the applied
    state to match them exactly.

    :param planned: the planned state (create or update)
    :param pod: the API's answer to the create or update
    :param prior: the state before an update (``None`` on create)
    """
    from_api = state_from_pod(pod, planned if prior is None else prior)
    return {
        attr: (from_api.get(attr) if is_unknown(planned.get(attr)) else planned.get(attr)) for attr in ATTRIBUTE_NAMES
    }
