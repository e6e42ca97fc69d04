"""costPerHr from the catalog: price per GPU x gpuCount, by cloud and spot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localcloud import catalog

OPENAPI = Path(__file__).resolve().parents[3] / "localcloud" / "reference" / "runpod-rest-v1-openapi.json"


@pytest.mark.parametrize(
    ("cloud", "interruptible", "price_field"),
    [
        ("SECURE", False, "securePrice"),
        ("SECURE", True, "secureSpotPrice"),
        ("COMMUNITY", False, "communityPrice"),
        ("COMMUNITY", True, "communitySpotPrice"),
        ("ALL", False, "communityPrice"),
    ],
)
def test_cost_is_price_per_gpu_times_count(
    client: Any, create_pod: Any, cloud: str, interruptible: bool, price_field: str
) -> None:
    pod = create_pod(gpuTypeIds=["NVIDIA A100 80GB PCIe"], gpuCount=4, cloudType=cloud, interruptible=interruptible)
    expected = round(pod["gpu"][price_field] * 4, 4)
    assert pod["costPerHr"] == expected
    assert pod["adjustedCostPerHr"] == expected
    assert pod["machine"]["currentPricePerGpu"] == pod["gpu"][price_field]
    assert pod["machine"]["secureCloud"] is (cloud == "SECURE")


def test_known_prices() -> None:
    rtx4090 = catalog.GPU_TYPES["NVIDIA GeForce RTX 4090"]
    assert catalog.pod_cost_per_hr(rtx4090, 2, "SECURE", False) == 1.38
    assert catalog.pod_cost_per_hr(rtx4090, 1, "COMMUNITY", True) == 0.2


@pytest.mark.parametrize("gpu", list(catalog.GPU_TYPES.values()), ids=lambda g: g.id)
def test_catalog_prices_are_consistent(gpu: catalog.GpuType) -> None:
    assert gpu.community_price <= gpu.secure_price
    assert gpu.secure_spot_price < gpu.secure_price
    assert gpu.community_spot_price < gpu.community_price
    assert gpu.memory_in_gb > 0 and gpu.vcpu_per_gpu > 0 and gpu.ram_per_gpu_gb > 0


def test_catalog_covers_runpods_gpu_type_ids() -> None:
    if not OPENAPI.exists():
        pytest.skip(f"RunPod's OpenAPI reference is not at {OPENAPI}")
    spec = json.loads(OPENAPI.read_text())
    schemas = spec["components"]["schemas"]
    ids = set(schemas["GPUTypeId"]["enum"]) | set(
        schemas["PodCreateInput"]["properties"]["gpuTypeIds"]["items"]["enum"]
    )
    assert ids <= set(catalog.GPU_TYPES)
