"""The stand-in's ``runpod_pod`` resource: CRUD on RunPod REST v1 ``/pods``."""

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

from localcloud.tfprovider.client import ApiError, RunPodClient
from localcloud.tfprovider.mapping import create_body, fill_unknowns, is_set, split_ports, state_from_pod, update_body
from localcloud.tfprovider.pod_schema import CLOUD_TYPES, POD_SCHEMA, POD_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from localcloud.tfprovider.provider import RunPodProvider

_PORT_RE = re.compile(r"^[0-9]{1,5}/(tcp|http|udp)$")
_ENV_RE = re.compile(r"^[^=]+=", re.DOTALL)


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
        image, template = config.get("image_name"), config.get("template_id")
        if is_set(image) and is_set(template):
            diags.add_error(
                "Conflicting image_name and template_id",
                "Set exactly one of image_name and template_id on runpod_pod, not both.",
                path=["template_id"],
            )
        elif image is None and template is None:
            diags.add_error(
                "Missing image_name or template_id",
                "Set exactly one of image_name and template_id on runpod_pod.",
                path=["image_name"],
            )
        _check_choice(diags, config, "type", POD_TYPES)
        _check_choice(diags, config, "cloud_type", CLOUD_TYPES)
        count = config.get("gpu_count")
        if is_set(count) and (count < 1 or int(count) != count):
            diags.add_error("Invalid gpu_count", f"gpu_count must be a whole number >= 1; got {count}.", ["gpu_count"])
        self._validate_env(diags, config.get("env"))
        ports = config.get("ports")
        if is_set(ports):
            bad = [p for p in split_ports(ports) if not _PORT_RE.match(p)]
            if bad:
                diags.add_error(
                    "Invalid ports",
                    f"ports is one comma-separated string of PORT/PROTOCOL, e.g. '22/tcp,8888/http'; bad: {bad}.",
                    path=["ports"],
                )

    @staticmethod
    def _validate_env(diags: Diagnostics, env: Any) -> None:
        if not is_set(env):
            return
        bad = [str(item) for item in env if is_set(item) and not _ENV_RE.match(str(item))]
        if bad:
            diags.add_error(
                "Invalid env",
                f"env is a list of 'KEY=VALUE' strings; these are not: {bad}.",
                path=["env"],
            )

    # --------------------------------------------------------------------- plan
    def plan(self, ctx: PlanContext, current: Optional[State], planned: State) -> Optional[State]:
        """An in-place update resets the pod on RunPod, so its status is unknown until applied."""
        if current is not None and ctx.changed_fields:
            planned["status"] = Unknown
        return planned

    # --------------------------------------------------------------------- CRUD
    def create(self, ctx: CreateContext, planned: State) -> Optional[State]:
        """``POST /pods``; the API's pod id goes into the state."""
        try:
            pod = self._client().create_pod(create_body(planned))
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return None
        return fill_unknowns(planned, pod)

    def read(self, ctx: ReadContext, current: State) -> Optional[State]:
        """``GET /pods/{id}``; a pod that is gone (404 or TERMINATED) leaves the state."""
        pod_id = current.get("id")
        if not is_set(pod_id):
            return None
        try:
            pod = self._client().get_pod(pod_id)
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return current
        if pod is None or pod.get("desiredStatus") == "TERMINATED":
            return None
        return state_from_pod(pod, current)

    def update(self, ctx: UpdateContext, current: State, planned: State) -> Optional[State]:
        """``PATCH /pods/{id}`` with every updatable argument (RunPod resets the pod)."""
        try:
            pod = self._client().update_pod(current["id"], update_body(planned))
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return current
        return fill_unknowns(planned, pod, current)

    def delete(self, ctx: DeleteContext, current: State) -> None:
        """``DELETE /pods/{id}`` (204); a pod that is already gone is fine."""
        pod_id = current.get("id")
        if not is_set(pod_id):
            return None
        try:
            self._client().delete_pod(pod_id)
        except ApiError as error:
            _report(ctx.diagnostics, error)
        return None

    def import_(self, ctx: ImportContext, id: str) -> Optional[State]:
        """``terraform import runpod_pod.NAME POD_ID``."""
        try:
            pod = self._client().get_pod(id)
        except ApiError as error:
            _report(ctx.diagnostics, error)
            return None
        if pod is None:
            ctx.diagnostics.add_error(f"Cannot import pod {id}", f"The RunPod API has no pod with id {id!r}.")
            return None
        return state_from_pod(pod)
