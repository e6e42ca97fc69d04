"""Schema of the stand-in's ``runpod_pod`` resource: runpod/runpod 2.x.

Names, types, optional/required/computed flags and replacement rules follow
``terraform/runpod/reference/runpod_pod-2.x.schema.json``, which records what
RunPod's docs say about the 2.x provider and what was derived from the REST v2
API where they say nothing. A unit test holds this module to that file.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from tf import types
from tf.schema import Attribute, Schema
from tf.types import Unknown

CLOUDS = ("SECURE", "COMMUNITY")
DESIRED_STATES = ("RUNNING", "EXITED")


class Object(types.TfType):
    """A Terraform object type (``["object", {...}]``) as a Python dict.

    The ``tf`` framework has no object type; the real 2.x provider uses nested
    attributes, which take the same HCL (``persistent_volume = {size = 20, path = "/workspace"}``).
    """

    def __init__(self, attributes: Mapping[str, types.TfType]) -> None:
        self.attributes = dict(attributes)

    def encode(self, value: Any) -> Any:
        if value is None or value is Unknown:
            return value
        return {k: t.encode(value.get(k)) for k, t in self.attributes.items()}

    def decode(self, value: Any) -> Any:
        if value is None or value is Unknown:
            return value
        return {k: t.decode(value.get(k)) for k, t in self.attributes.items()}

    def tf_type(self) -> bytes:
        inner = {k: json.loads(t.tf_type()) for k, t in sorted(self.attributes.items())}
        return json.dumps(["object", inner], separators=(",", ":")).encode()


_STR = types.String()
_NUM = types.Number()
_BOOL = types.Bool()
_STR_LIST = types.List(types.String())
_STR_MAP = types.Map(types.String())
PERSISTENT_VOLUME = Object({"size": _NUM, "path": _STR})
NETWORK_VOLUME = Object({"volume_id": _STR, "path": _STR})


def _arg(name: str, kind: types.TfType, description: str, *, computed: bool = False, replace: bool = False) -> Attribute:
    """An optional argument (computed when the API fills it in when it is left out)."""
    return Attribute(name, kind, description=description, optional=True, computed=computed, requires_replace=replace)


def _out(name: str, kind: types.TfType, description: str) -> Attribute:
    """A read-only attribute filled from the API."""
    return Attribute(name, kind, description=description, computed=True)


POD_ATTRIBUTES: list[Attribute] = [
    _out("id", _STR, "Pod id (assigned by RunPod)."),
    Attribute("name", _STR, description="Pod name.", required=True),
    _arg("image", _STR, "Container image (required unless template_id is set).", computed=True),
    _arg("args", _STR, "Arguments passed to the container entrypoint, one string.", computed=True),
    _arg("disk", _NUM, "Container disk in GB (wiped on restart).", computed=True),
    _arg("ports", _STR_LIST, 'Exposed ports, e.g. ["22/tcp", "8888/http"].', computed=True),
    _arg("env", _STR_MAP, "Environment variables (not read back from the API; put no secrets here)."),
    _arg("registry", _STR, "Container registry credential id for a private image."),
    _arg("gpu_type_id", _STR, "GPU type id, e.g. `NVIDIA GeForce RTX 4090`.", computed=True, replace=True),
    _arg("gpu_count", _NUM, "GPUs per pod.", computed=True, replace=True),
    _arg("cloud", _STR, "SECURE or COMMUNITY.", computed=True, replace=True),
    _arg("cpu_type_id", _STR, "CPU flavour id (a CPU pod instead of a GPU pod).", replace=True),
    _arg("vcpu_count", _NUM, "vCPUs of a CPU pod.", replace=True),
    _arg("template_id", _STR, "Template to create the pod from (create-time only).", replace=True),
    _arg("start_ssh", _BOOL, "Inject the account's SSH keys as PUBLIC_KEY (create-time only).", replace=True),
    _arg("start_jupyter", _BOOL, "Start JupyterLab (create-time only).", replace=True),
    _arg("allowed_cuda_versions", _STR_LIST, "Exact set of acceptable host CUDA versions.", replace=True),
    _arg("min_cuda_version", _STR, "Lowest acceptable host CUDA version.", replace=True),
    _arg("min_ram_per_gpu", _NUM, "Host RAM floor per GPU, in GB.", replace=True),
    _arg("min_vcpu_count_per_gpu", _NUM, "Host vCPU floor per GPU.", replace=True),
    _arg("data_center_ids", _STR_LIST, "Preferred data centres (placement preference).", replace=True),
    _out("data_center_id", _STR, "Data centre the scheduler placed the pod in."),
    _arg("global_networking", _BOOL, "Private IP reachable from the account's other pods.", computed=True),
    _arg("persistent_volume", PERSISTENT_VOLUME, "Host-local persistent volume {size, path}.", replace=True),
    _arg("network_volumes", types.List(NETWORK_VOLUME), "Network volumes [{volume_id, path}].", replace=True),
    _arg("desired_state", _STR, "RUNNING or EXITED, reconciled on every apply."),
    _out("status", _STR, "Pod status (PROVISIONING, STARTING, RUNNING, EXITED, ERROR, TERMINATED)."),
    _out("cost", _NUM, "Cost in USD per hour (0 when stopped)."),
    _out("created_at", _STR, "Creation time."),
    _out("memory_in_gb", _NUM, "Memory in GB (not in the v2 pod: null here)."),
    _out("locked", _BOOL, "Whether the pod is locked."),
    _out("cluster_ip", _STR, "Instant Cluster IP, when the pod is a cluster member."),
]

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in POD_ATTRIBUTES)
BY_NAME: dict[str, Attribute] = {a.name: a for a in POD_ATTRIBUTES}

POD_SCHEMA = Schema(
    version=0,
    attributes=POD_ATTRIBUTES,
    description="A RunPod pod (stand-in for runpod/runpod 2.x, for the gpuops local cloud only).",
)
