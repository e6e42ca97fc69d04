"""Shared helpers for the stand-in provider's unit tests."""

from __future__ import annotations

from typing import Any

from tf.iface import CreateContext, DeleteContext, ImportContext, ReadContext, UpdateContext
from tf.types import Unknown
from tf.utils import Diagnostics

from localcloud.tfprovider.pod_schema import POD_ATTRIBUTES

TYPE_NAME = "runpod_pod"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBR4kyzN/AzahlZITHzY8paMAVUGSzItBiNNKBM8pVgp test@gpuops"


def planned_create(**overrides: Any) -> dict[str, Any]:
    """A planned state as Terraform would send it for a new pod of the gpuops module."""
    state: dict[str, Any] = {}
    for attr in POD_ATTRIBUTES:
        if attr.computed:
            state[attr.name] = attr.default
        else:
            state[attr.name] = None
    state.update(
        name="gpuops-0",
        image="gpuops/pod:bookworm",
        gpu_type_id="NVIDIA GeForce RTX 4090",
        gpu_count=1,
        cloud="SECURE",
        disk=20,
        ports=["22/tcp", "8888/http"],
        env={"PUBLIC_KEY": PUBLIC_KEY, "FOO": "bar"},
        global_networking=False,
    )
    state.update(overrides)
    return state


def unknowns(state: dict[str, Any]) -> list[str]:
    """Attributes still unknown in a state."""
    return sorted(k for k, v in state.items() if v is Unknown)


def create_ctx() -> CreateContext:
    return CreateContext(Diagnostics(), TYPE_NAME)


def read_ctx() -> ReadContext:
    return ReadContext(Diagnostics(), TYPE_NAME)


def update_ctx() -> UpdateContext:
    return UpdateContext(Diagnostics(), TYPE_NAME)


def delete_ctx() -> DeleteContext:
    return DeleteContext(Diagnostics(), TYPE_NAME)


def import_ctx() -> ImportContext:
    return ImportContext(Diagnostics(), TYPE_NAME)


def errors(diags: Diagnostics) -> list[str]:
    """Each error diagnostic as 'summary :: detail'."""
    return [f"{d.summary} :: {d.detail}" for d in diags.diagnostics if d.severity == "error"]
