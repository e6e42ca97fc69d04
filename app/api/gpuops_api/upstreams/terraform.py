"""The deployment's pods as Terraform's state records them (output `pods`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import UpstreamError


class _PodOutput(BaseModel):
    id: str
    gpu_type_id: str = ""
    gpu_count: int = 0
    cost_per_hr: float = 0.0
    role: str = "compute"
    global_networking: bool = False


@dataclass(frozen=True)
class TfPod:
    name: str
    id: str
    gpu_type_id: str
    gpu_count: int
    cost_per_hr: float
    role: str
    # The pods reach each other (RunPod's global networking); without it a job runs on one node.
    global_networking: bool = False


class TerraformState:
    """Reads outputs.pods.value from the state file again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._pods: dict[str, TfPod] = {}

    def pods(self) -> dict[str, TfPod]:
        """Pods by name; empty when there is no state file (nothing deployed yet)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise self._error(err.strerror or str(err)) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._pods = self._load()
            self._stamp = stamp
        return self._pods

    def _error(self, why: str) -> UpstreamError:
        return UpstreamError("cloud", f"cannot read the deployment's Terraform state {self.path}: {why}")

    def _load(self) -> dict[str, TfPod]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as err:
            raise self._error(err.strerror or str(err)) from None
        except ValueError:
            raise self._error("not JSON") from None
        outputs: Any = state.get("outputs") if isinstance(state, dict) else None
        if not isinstance(outputs, dict):
            raise self._error("no outputs")
        output = outputs.get("pods")
        if output is None:
            return {}
        value = output.get("value") if isinstance(output, dict) else None
        if not isinstance(value, dict):
            raise self._error("output 'pods' is not a map of pod name to pod")
        pods = {}
        for name, raw in value.items():
            try:
                pod = _PodOutput.model_validate(raw)
            except ValidationError as err:
                raise self._error(f"pod {name!r} in output 'pods': {err.errors()[0]['msg']}") from None
            pods[name] = TfPod(name, pod.id, pod.gpu_type_id, pod.gpu_count, pod.cost_per_hr, pod.role,
                               pod.global_networking)
        return pods
