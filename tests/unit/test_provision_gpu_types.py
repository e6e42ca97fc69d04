"""The provision role's GPU type ids: RunPod's (the vendored OpenAPI's GPUTypeId enum and newer ones)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_gpu_type_ids_match_runpods_openapi() -> None:
    spec = json.loads((REPO / "localcloud/reference/runpod-rest-v1-openapi.json").read_text())
    role_vars = yaml.safe_load(
        (REPO / "collections/ansible_collections/gpuops/platform/roles/provision/vars/main.yml").read_text()
    )
    ids = role_vars["_provision_gpu_type_ids"]
    assert len(ids) == len(set(ids))
    assert ids[: len(spec["components"]["schemas"]["GPUTypeId"]["enum"])] == spec["components"]["schemas"]["GPUTypeId"]["enum"]


def test_every_gpu_type_the_local_cloud_knows_passes_the_preflight() -> None:
    from localcloud import catalog

    role_vars = yaml.safe_load(
        (REPO / "collections/ansible_collections/gpuops/platform/roles/provision/vars/main.yml").read_text()
    )
    assert set(catalog.GPU_TYPES) <= set(role_vars["_provision_gpu_type_ids"])
