"""The stand-in's ``runpod_pod`` resource (2.x schema): CRUD on RunPod REST v2 ``/v2/pods``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

from tf.iface import (
    Config,
    CreateContext,
    DeleteContext,
    ImportContext,
    PlanContext,
    ReadContext,
    Resource,
    State,
    UpdateContext,
)
from tf.schema import Schema
from tf.types import Unknown
from tf.utils import Diagnostics

from localcloud.tfprovider.client import ApiError, Pod, RunPodClient
from localcloud.tfprovider.mapping import (
    RESETS_POD,
    UNSUPPORTED,
    create_body,
    desired_state_of,
    fill_unknowns,
    is_set,
    state_from_pod,
    update_body,
)
from localcloud.tfprovider.pod_schema import CLOUDS, DESIRED_STATES, POD_SCHEMA

if TYPE_CHECKING:  # pragma: no cover
    from localcloud.tfprovider.provider import RunPodProvider

_PORT_RE = re.compile(r"^[0-9]{1,5}/(tcp|http|udp)$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CUDA_RE = re.compile(r"^\d+\.\d+$")


def _report(diags: Diagnostics, error: ApiError) -> None:
    """Turn an API failure into a Terraform error diagnostic."""
    diags.add_error(error.summary, error.detail)


def _check_choice(diags: Diagnostics, config: Config, attr: str, choices: tuple[str, ...]) -> None:
    value = config.get(attr)
    if is_set(value) and value not in choices:
        diags.add_error(
            f"Invalid {attr} {value!r}",
            f"runpod_pod.{attr} must be one of {', '.join(choices)}; got {value!r}.",
            path=[attr],
        )


class PodResource(Resource):
    """A RunPod pod. Arguments RunPod cannot PATCH force a replacement."""

    def __init__(self, provider: "RunPodProvider") -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return "pod"

    @classmethod
    def get_schema(cls) -> Schema:
        return POD_SCHEMA

    def _client(self) -> RunPodClient:
        return self.provider.client()

    # ----------------------------------------------------------------- validate
    def validate(self, diags: Diagnostics, type_name: str, config: Config) -> None:
        """Check what can be checked before any API call (unknown values are skipped)."""
        super().validate(diags, type_name, config)
        if diags.has_errors():
            return
        self._exactly_one(diags, config, "image", "template_id", both_ok=True)
        self._exactly_one(diags, config, "gpu_type_id", "cpu_type_id")
        _check_choice(diags, config, "cloud", CLOUDS)
        _check_choice(diags, config, "desired_state", DESIRED_STATES)
        for attr in UNSUPPORTED:
            if is_set(config.get(attr)):
                diags.add_error(
                    f"{attr} is not supported by the stand-in provider",
                    f"runpod_pod.{attr} has no field in RunPod's REST v2 OpenAPI that the local cloud "
                    "implements; remove it for the local cloud.",
                    path=[attr],
                )
        count = config.get("gpu_count")
        if is_set(count) and (count < 1 or int(count) != count):
            diags.add_error("Invalid gpu_count", f"gpu_count must be a whole number >= 1; got {count}.", ["gpu_count"])
        disk = config.get("disk")
        if is_set(disk) and (disk < 1 or int(disk) != disk):
            diags.add_error("Invalid disk", f"disk is the container disk in GB, a whole number >= 1; got {disk}.", ["disk"])
        if is_set(config.get("cpu_type_id")) and not is_set(config.get("vcpu_count")):
            diags.add_error("Missing vcpu_count", "A CPU pod (cpu_type_id) needs vcpu_count.", ["vcpu_count"])
        if is_set(config.get("min_cuda_version")) and config.get("allowed_cuda_versions"):
            diags.add_error(
                "Conflicting CUDA constraints",
                "Set min_cuda_version or a non-empty allowed_cuda_versions, not both.",
                ["min_cuda_version"],
            )
        for attr in ("min_cuda_version",):
            value = config.get(attr)
            if is_set(value) and not _CUDA_RE.match(value):
                diags.add_error(f"Invalid {attr}", f"{attr} is MAJOR.MINOR, e.g. '12.4'; got {value!r}.", [attr])
        self._validate_ports(diags, config.get("ports"))
        self._validate_env(diags, config.get("env"))
        self._validate_mounts(diags, config)

    @staticmethod
    def _exactly_one(diags: Diagnostics, config: Config, a: str, b: str, both_ok: bool = False) -> None:
        va, vb = config.get(a), config.get(b)
        if va is None and vb is None:
            diags.add_error(f"Missing {a} or {b}", f"Set {a} or {b} on runpod_pod.", path=[a])
        elif is_set(va) and is_set(vb) and not both_ok:
            diags.add_error(f"Conflicting {a} and {b}", f"Set exactly one of {a} and {b} on runpod_pod.", path=[b])

    @staticmethod
    def _validate_ports(diags: Diagnostics, ports: Any) -> None:
        if not is_set(ports):
            return
        bad = [p for p in ports if is_set(p) and not _PORT_RE.match(p)]
        if bad:
            diags.add_error(
                "Invalid ports",
                f'ports is a list of PORT/PROTOCOL, e.g. ["22/tcp", "8888/http"]; bad: {bad}.',
                path=["ports"],
            )

    @staticmethod
    def _validate_env(diags: Diagnostics, env: Any) -> None:
        if not is_set(env):
            return
        bad = [k for k in env if not _ENV_KEY_RE.match(k)]
        if bad:
            diags.add_error("Invalid env", f"env keys must be variable names; these are not: {bad}.", path=["env"])

    @staticmethod
    def _validate_mounts(diags: Diagnostics, config: Config) -> None:
        persistent, network = config.get("persistent_volume"), config.get("network_volumes")
        if is_set(persistent) and is_set(network) and network:
            diags.add_error(
                "Conflicting volumes",
                "persistent_volume and network_volumes are mutually exclusive on RunPod: set one.",
                path=["network_volumes"],
            )
        if is_set(persistent):
            size = persistent.get("size")
            if is_set(size) and size < 10:
                diags.add_error(
                    "Invalid persistent_volume.size",
                    f"persistent_volume.size is at least 10 (GB) on RunPod; got {size}. "
                    "For no volume, leave persistent_volume out (null).",
                    path=["persistent_volume"],
                )
            path = persistent.get("path")
            if is_set(path) and not str(path).startswith("/"):
                diags.add_error(
                    "Invalid persistent_volume.path",
                    f"persistent_volume.path must be absolute, e.g. /workspace; got {path!r}.",
                    path=["persistent_volume"],
                )
        if is_set(network) and len(network) > 1:
            diags.add_error("Too many network_volumes", "RunPod attaches at most one network volume.", ["network_volumes"])

    # --------------------------------------------------------------------- plan
    def plan(self, ctx: PlanContext, current: Optional[State], planned: State) -> Optional[State]:
        """A change that restarts the pod leaves its status and cost unknown until applied."""
        if current is not None and ctx.changed_fields & RESETS_POD:
            planned["status"] = Unknown
            planned["cost"] = Unknown
        return planned

    # --------------------------------------------------------------------- CRUD
    def _reconcile_run_state(self, pod: Pod, desired: Any) -> Pod:
        """Start or stop the pod so that its status matches ``desired_state``."""
        if not is_set(desired) or desired_state_of(pod.get("status")) == desired:
            return pod
        verb = "stop" if desired == "EXITED" else "start"
        after = self._client().pod_action(pod["id"], verb)
        return after if after is not None else pod

    def create(self, ctx: CreateContext, planned: State) -> Optional[State]:
        """``POST /v2/pods``; the API's pod id goes into the state."""
        try:
            pod = self._client().create_pod(create_body(planned))
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return None
        try:
            pod = self._reconcile_run_state(pod, planned.get("desired_state"))
        except ApiError as error:
            _report(ctx.diagnostics, error)
        return fill_unknowns(planned, pod)

    def read(self, ctx: ReadContext, current: State) -> Optional[State]:
        """``GET /v2/pods/{id}``; a pod that is gone (404 or TERMINATED) leaves the state."""
        pod_id = current.get("id")
        if not is_set(pod_id):
            return None
        try:
            pod = self._client().get_pod(pod_id)
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return current
        if pod is None or pod.get("status") == "TERMINATED":
            return None
        return state_from_pod(pod, current)

    def update(self, ctx: UpdateContext, current: State, planned: State) -> Optional[State]:
        """``PATCH /v2/pods/{id}`` with the fields that change, then start/stop for ``desired_state``."""
        client = self._client()
        try:
            body = update_body(current, planned)
            pod = client.update_pod(current["id"], body) if body else client.get_pod(current["id"])
            if pod is None:
                raise ApiError(
                    f"Cannot update pod {current['id']}",
                    "The pod no longer exists; run terraform plan to re-create it.",
                    404,
                )
            pod = self._reconcile_run_state(pod, planned.get("desired_state"))
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return current
        return fill_unknowns(planned, pod, current)

    def delete(self, ctx: DeleteContext, current: State) -> None:
        """``DELETE /v2/pods/{id}`` (204); a pod that is already gone is fine."""
        pod_id = current.get("id")
        if not is_set(pod_id):
            return None
        try:
            self._client().delete_pod(pod_id)
        except ApiError as error:
            _report(ctx.diagnostics, error)
        return None

    def import_(self, ctx: ImportContext, id: str) -> Optional[State]:
        """``terraform import runpod_pod.NAME POD_ID``; create-time arguments and env stay empty, as in 2.x."""
        try:
            pod = self._client().get_pod(id)
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return None
        if pod is None:
            ctx.diagnostics.add_error(f"Cannot import pod {id}", f"The RunPod API has no pod with id {id!r}.")
            return None
        state = state_from_pod(pod)
        state["desired_state"] = None
        return state
