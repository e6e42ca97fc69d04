"""Translation between ``runpod_pod`` state (snake_case) and RunPod REST v1 pods (camelCase).

Pure functions, no I/O. Where the API reports a value that means the same as
what the state already holds (the same ports or env in another order), the
state's spelling is kept, so a refresh never shows a change that is not one.
"""

from __future__ import annotations

import shlex
from typing import Any, Callable, Iterable, Optional

from msgpack import ExtType
from tf.types import Unknown

from localcloud.tfprovider.client import Pod
from localcloud.tfprovider.pod_schema import ATTRIBUTE_NAMES, OPTIONAL_ONLY

State = dict[str, Any]


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


def split_ports(ports: Optional[str]) -> list[str]:
    """``"22/tcp, 8888/http"`` -> ``["22/tcp", "8888/http"]``."""
    if not ports:
        return []
    return [p.strip() for p in ports.split(",") if p.strip()]


def env_to_dict(env: Optional[Iterable[str]]) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` -> ``{"A": "1", "B": "x=y"}`` (split at the first ``=``)."""
    result: dict[str, str] = {}
    for item in env or []:
        key, _, value = item.partition("=")
        result[key] = value
    return result


def env_to_list(env: Optional[dict[str, Any]]) -> list[str]:
    """``{"B": "2", "A": "1"}`` -> ``["A=1", "B=2"]`` (sorted by key, so stable)."""
    return [f"{k}={'' if v is None else v}" for k, v in sorted((env or {}).items())]


def _number(value: Any) -> Any:
    """Whole floats as ints (``20.0`` -> ``20``); other values as they are."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _to_float(value: Any) -> Optional[float]:
    """A number or numeric string as float; ``None`` when it is neither."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def pod_type(interruptible: Optional[bool]) -> Optional[str]:
    """RunPod's ``interruptible`` flag as the provider's ``type``."""
    if interruptible is None:
        return None
    return "SPOT" if interruptible else "ON_DEMAND"


def _start_cmd(state: State) -> Optional[list[str]]:
    """``docker_start_cmd`` if set, else ``docker_args`` split like a shell would."""
    if is_set(state.get("docker_start_cmd")):
        return list(state["docker_start_cmd"])
    if is_set(state.get("docker_args")) and state["docker_args"].strip():
        return shlex.split(state["docker_args"])
    return None


# Arguments that PATCH /pods/{id} can change: attribute -> (API field, converter).
_UPDATABLE: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "name": ("name", str),
    "image_name": ("imageName", str),
    "container_disk_in_gb": ("containerDiskInGb", _number),
    "volume_in_gb": ("volumeInGb", _number),
    "volume_mount_path": ("volumeMountPath", str),
    "ports": ("ports", split_ports),
    "env": ("env", env_to_dict),
    "docker_entrypoint": ("dockerEntrypoint", list),
}


def create_body(planned: State) -> dict[str, Any]:
    """The ``POST /pods`` body (PodCreateInput) for a planned state; unset arguments are left out."""
    body: dict[str, Any] = {}
    for attr, (field, convert) in _UPDATABLE.items():
        if is_set(planned.get(attr)):
            body[field] = convert(planned[attr])
    if is_set(planned.get("template_id")):
        body["templateId"] = planned["template_id"]
    if is_set(planned.get("gpu_type_id")):
        body["gpuTypeIds"] = [planned["gpu_type_id"]]
    if is_set(planned.get("gpu_count")):
        body["gpuCount"] = _number(planned["gpu_count"])
    # REST v1 knows SECURE and COMMUNITY only; ALL means "let RunPod choose".
    if is_set(planned.get("cloud_type")) and planned["cloud_type"] != "ALL":
        body["cloudType"] = planned["cloud_type"]
    if is_set(planned.get("type")):
        body["interruptible"] = planned["type"] == "SPOT"
    if is_set(planned.get("network_volume_id")):
        body["networkVolumeId"] = planned["network_volume_id"]
    start_cmd = _start_cmd(planned)
    if start_cmd is not None:
        body["dockerStartCmd"] = start_cmd
    return body


def update_body(planned: State) -> dict[str, Any]:
    """The ``PATCH /pods/{id}`` body (PodUpdateInput): every updatable argument that is set.

    RunPod fills fields missing from an update with defaults, so the whole
    updatable set is sent, not only what changed.
    """
    body: dict[str, Any] = {}
    for attr, (field, convert) in _UPDATABLE.items():
        if is_set(planned.get(attr)):
            body[field] = convert(planned[attr])
    start_cmd = _start_cmd(planned)
    if start_cmd is not None:
        body["dockerStartCmd"] = start_cmd
    return body


def _gpu_type_id(pod: Pod) -> Optional[str]:
    gpu = pod.get("gpu") or {}
    machine = pod.get("machine") or {}
    return gpu.get("id") or pod.get("gpuTypeId") or machine.get("gpuTypeId")


def _gpu_count(pod: Pod) -> Optional[int]:
    gpu = pod.get("gpu") or {}
    count = gpu.get("count", pod.get("gpuCount"))
    return _number(count) if count is not None else None


def _cloud_type(pod: Pod) -> Optional[str]:
    if pod.get("cloudType"):
        return str(pod["cloudType"])
    secure = (pod.get("machine") or {}).get("secureCloud")
    if secure is None:
        return None
    return "SECURE" if secure else "COMMUNITY"


def _network_volume_id(pod: Pod) -> Optional[str]:
    volume = pod.get("networkVolume") or {}
    return pod.get("networkVolumeId") or volume.get("id")


def _api_values(pod: Pod) -> State:
    """What the API says, in attribute names; ``None`` where the API says nothing."""
    ports = pod.get("ports")
    if isinstance(ports, str):
        ports = split_ports(ports)
    env = pod.get("env")
    start_cmd = pod.get("dockerStartCmd")
    return {
        "id": pod.get("id"),
        "name": pod.get("name"),
        "image_name": pod.get("image") or pod.get("imageName"),
        "template_id": pod.get("templateId") or None,
        "gpu_type_id": _gpu_type_id(pod),
        "gpu_count": _gpu_count(pod),
        "cloud_type": _cloud_type(pod),
        "type": pod_type(pod.get("interruptible")),
        "container_disk_in_gb": _number(pod.get("containerDiskInGb")),
        "volume_in_gb": _number(pod.get("volumeInGb")),
        "volume_mount_path": pod.get("volumeMountPath"),
        "ports": ",".join(ports) if isinstance(ports, list) else None,
        "env": env_to_list(env) if isinstance(env, dict) else None,
        "docker_args": shlex.join(start_cmd) if start_cmd else None,
        "network_volume_id": _network_volume_id(pod),
        "docker_entrypoint": pod.get("dockerEntrypoint") or None,
        "docker_start_cmd": start_cmd or None,
        "status": pod.get("desiredStatus"),
        "cost_per_hr": _to_float(pod.get("costPerHr")),
        "memory_in_gb": _number(_to_float(pod.get("memoryInGb"))),
        "vcpu_count": _number(_to_float(pod.get("vcpuCount"))),
        "created_at": pod.get("createdAt"),
        "cluster_ip": pod.get("clusterIp") or None,
        "locked": bool(pod.get("locked", False)),
    }


def _same(attr: str, prior: Any, api: Any) -> bool:
    """Whether a prior state value and an API value mean the same thing."""
    if attr == "ports":
        return sorted(split_ports(prior)) == sorted(split_ports(api))
    if attr == "env":
        return env_to_dict(prior) == env_to_dict(api)
    if attr == "docker_args":
        return _start_cmd({"docker_args": prior}) == _start_cmd({"docker_args": api})
    if attr in ("docker_entrypoint", "docker_start_cmd"):
        return list(prior or []) == list(api or [])
    if isinstance(prior, (int, float)) and isinstance(api, (int, float)):
        return float(prior) == float(api)
    return bool(prior == api)


# Once stored, these stay as asked: the API does not echo them (or not in the same form).
_STICKY = frozenset({"cloud_type", "docker_args", "docker_start_cmd", "docker_entrypoint", "created_at"})


def state_from_pod(pod: Pod, prior: Optional[State] = None) -> State:
    """The resource state for a pod from the API.

    :param pod: the pod as the API returned it
    :param prior: the state held so far (``None`` on import). Its values are kept where
        the API agrees with them or says nothing, so refreshes are stable; an argument
        the provider never computes stays null when it was null.
    """
    api = _api_values(pod)
    state: State = {}
    for attr in ATTRIBUTE_NAMES:
        old, new = (prior or {}).get(attr), api.get(attr)
        if prior is not None and attr in OPTIONAL_ONLY and not is_set(old):
            state[attr] = None
        elif not is_set(old):
            state[attr] = new
        elif new is None or attr in _STICKY or _same(attr, old, new):
            state[attr] = old
        else:
            state[attr] = new
    if not state.get("created_at"):
        # REST v1 has no creation time; lastStartedAt at first sight is the closest stable stand-in.
        state["created_at"] = pod.get("lastStartedAt") or ""
    return state


def fill_unknowns(planned: State, pod: Pod, prior: Optional[State] = None) -> State:
    """A planned state with every unknown value taken from the API's answer.

    Known planned values are kept as planned: Terraform requires the applied
    state to match them exactly.

    :param planned: the planned state (create or update)
    :param pod: the API's answer to the create or update
    :param prior: the state before an update (``None`` on create)
    """
    from_api = state_from_pod(pod, prior)
    return {
        attr: (from_api.get(attr) if is_unknown(planned.get(attr)) else planned.get(attr)) for attr in ATTRIBUTE_NAMES
    }
