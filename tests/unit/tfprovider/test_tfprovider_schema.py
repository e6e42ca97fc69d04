"""The stand-in's schema matches the official runpod/runpod provider (1.0.x) where gpuops uses it."""

from __future__ import annotations

import pytest
from tf.utils import Diagnostics

from localcloud.tfprovider.pod_schema import POD_ATTRIBUTES, POD_SCHEMA
from localcloud.tfprovider.provider import RunPodProvider

S, N, B, L = b'"string"', b'"number"', b'"bool"', b'["list","string"]'
# name: (type, optional, computed) as in the official provider's generated schema.
OFFICIAL = {
    "id": (S, False, True),
    "name": (S, True, True),
    "image_name": (S, True, True),
    "template_id": (S, True, True),
    "gpu_type_id": (S, True, True),
    "gpu_count": (N, True, True),
    "cloud_type": (S, True, True),
    "type": (S, True, True),
    "container_disk_in_gb": (N, True, True),
    "volume_in_gb": (N, True, True),
    "volume_mount_path": (S, True, True),
    "ports": (S, True, True),
    "env": (L, True, True),
    "docker_args": (S, True, True),
    "network_volume_id": (S, True, False),
    "docker_entrypoint": (L, True, False),
    "docker_start_cmd": (L, True, False),
    "status": (S, False, True),
    "cost_per_hr": (N, False, True),
    "memory_in_gb": (N, False, True),
    "vcpu_count": (N, False, True),
    "created_at": (S, False, True),
    "cluster_ip": (S, False, True),
    "locked": (B, False, True),
}


@pytest.mark.parametrize("attr", POD_ATTRIBUTES, ids=lambda a: a.name)
def test_attribute_matches_official_schema(attr) -> None:  # type: ignore[no-untyped-def]
    assert attr.name in OFFICIAL, f"{attr.name} is not an attribute of the official runpod_pod"
    assert (attr.type.tf_type(), bool(attr.optional), bool(attr.computed)) == OFFICIAL[attr.name]
    assert not attr.required


def test_every_official_attribute_gpuops_relies_on_is_there() -> None:
    assert {a.name for a in POD_ATTRIBUTES} == set(OFFICIAL)


def test_arguments_patch_cannot_change_force_replacement() -> None:
    replace = {a.name for a in POD_ATTRIBUTES if a.requires_replace}
    assert replace == {"template_id", "gpu_type_id", "gpu_count", "cloud_type", "type", "network_volume_id"}


def test_provider_registers_runpod_pod_and_a_sensitive_api_key() -> None:
    provider = RunPodProvider()
    assert provider.full_name() == "registry.terraform.io/runpod/runpod"
    assert [provider.get_model_prefix() + r.get_name() for r in provider.get_resources()] == ["runpod_pod"]
    (api_key,) = provider.get_provider_schema(Diagnostics()).attributes
    assert api_key.name == "api_key" and api_key.sensitive and api_key.optional
    POD_SCHEMA.to_pb()  # serialises for Terraform


def test_configure_reads_key_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "from-env")
    monkeypatch.setenv("RUNPOD_BASE_URL", "http://127.0.0.1:9/v1/")
    provider = RunPodProvider()
    provider.configure_provider(Diagnostics(), {"api_key": None})
    assert provider.settings.api_key == "from-env"
    assert provider.settings.base_url == "http://127.0.0.1:9/v1"
    provider.configure_provider(Diagnostics(), {"api_key": "from-config"})
    assert provider.client().settings.api_key == "from-config"
    monkeypatch.delenv("RUNPOD_BASE_URL")
    provider.configure_provider(Diagnostics(), {})
    assert provider.settings.base_url == "https://rest.runpod.io/v1"
