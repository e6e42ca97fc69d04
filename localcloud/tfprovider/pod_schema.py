"""Schema of the stand-in's ``runpod_pod`` resource.

Names, types and optional/computed flags follow the official
``runpod/runpod`` provider's generated schema (1.0.x) for every attribute
gpuops uses, so a module validated here loads with the real provider.
``requires_replace`` marks what RunPod's ``PATCH /pods/{id}`` cannot change.
"""

from __future__ import annotations

from tf import types
from tf.schema import Attribute, Schema

POD_TYPES = ("ON_DEMAND", "SPOT")
CLOUD_TYPES = ("COMMUNITY", "SECURE", "ALL")
POD_STATUSES = ("RUNNING", "EXITED", "TERMINATED")

_STR = types.String()
_NUM = types.Number()
_BOOL = types.Bool()
_STR_LIST = types.List(types.String())


def _opt(name: str, kind: types.TfType, description: str, replace: bool = False, **extra: object) -> Attribute:
    """An optional, computed argument (the official provider's usual kind)."""
    return Attribute(
        name, kind, description=description, optional=True, computed=True, requires_replace=replace, **extra
    )


def _only_opt(name: str, kind: types.TfType, description: str, replace: bool = False) -> Attribute:
    """An optional argument that the provider never computes."""
    return Attribute(name, kind, description=description, optional=True, requires_replace=replace)


def _out(name: str, kind: types.TfType, description: str) -> Attribute:
    """A read-only attribute filled from the API."""
    return Attribute(name, kind, description=description, computed=True)


POD_ATTRIBUTES: list[Attribute] = [
    _out("id", _STR, "Pod ID (assigned by RunPod on creation)."),
    _opt("name", _STR, "Pod name."),
    _opt("image_name", _STR, "Docker image (exactly one of image_name and template_id)."),
    _opt("template_id", _STR, "Pod template ID (exactly one of image_name and template_id).", replace=True),
    _opt("gpu_type_id", _STR, "RunPod GPU type ID, e.g. `NVIDIA GeForce RTX 4090`.", replace=True),
    _opt("gpu_count", _NUM, "Number of GPUs (default 1).", replace=True, default=1),
    _opt("cloud_type", _STR, "COMMUNITY, SECURE or ALL.", replace=True),
    _opt("type", _STR, "ON_DEMAND or SPOT (interruptible).", replace=True),
    _opt("container_disk_in_gb", _NUM, "Container disk size in GB."),
    _opt("volume_in_gb", _NUM, "Pod volume size in GB."),
    _opt("volume_mount_path", _STR, "Where the pod volume is mounted."),
    _opt("ports", _STR, "Exposed ports as one comma-separated string, e.g. `22/tcp,8888/http`."),
    _opt("env", _STR_LIST, "Environment variables as a list of `KEY=VALUE` strings."),
    _opt("docker_args", _STR, "Container start command as one string (sent as dockerStartCmd)."),
    _only_opt("network_volume_id", _STR, "Network volume to attach.", replace=True),
    _only_opt("docker_entrypoint", _STR_LIST, "Overrides the image's ENTRYPOINT."),
    _only_opt("docker_start_cmd", _STR_LIST, "Overrides the image's CMD."),
    _out("status", _STR, "Desired status reported by RunPod (RUNNING, EXITED or TERMINATED)."),
    _out("cost_per_hr", _NUM, "Cost per hour in RunPod credits."),
    _out("memory_in_gb", _NUM, "Memory in GB."),
    _out("vcpu_count", _NUM, "Virtual CPU count."),
    _out("created_at", _STR, "Creation timestamp as reported by RunPod."),
    _out("cluster_ip", _STR, "Cluster IP address, when RunPod reports one."),
    _out("locked", _BOOL, "Whether the pod is locked."),
]

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in POD_ATTRIBUTES)
COMPUTED_ONLY: frozenset[str] = frozenset(a.name for a in POD_ATTRIBUTES if a.computed and not a.optional)

POD_SCHEMA = Schema(
    version=0,
    attributes=POD_ATTRIBUTES,
    description="A RunPod pod (stand-in for the official runpod/runpod provider, local cloud only).",
)
OPTIONAL_ONLY: frozenset[str] = frozenset(a.name for a in POD_ATTRIBUTES if a.optional and not a.computed)
