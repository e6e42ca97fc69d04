"""The catalog: GPU types with prices and stock, data centres with global networking."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud import catalog


def test_gpu_types_have_runpod_ids_and_prices(client: Any) -> None:
    gpus = {g["id"]: g for g in client.get("/v2/catalog/gpus").json()["gpus"]}
    assert set(gpus) == set(catalog.GPU_TYPES)
    rtx = gpus["NVIDIA GeForce RTX 4090"]
    assert rtx["name"] == "RTX 4090" and rtx["manufacturer"] == "NVIDIA" and rtx["memory"] == 24
    assert rtx["price"]["secure"] == 0.69 and rtx["price"]["community"] == 0.34
    assert rtx["maxCount"] == {"secure": 8, "community": 4}
    assert "availability" not in rtx
    assert gpus["AMD Instinct MI300X OAM"]["manufacturer"] == "AMD"
    assert gpus["Tesla V100-PCIE-16GB"]["manufacturer"] == "NVIDIA"


def test_availability_needs_product(client: Any) -> None:
    assert client.get("/v2/catalog/gpus", params={"include": "AVAILABILITY"}).status_code == 400
    assert client.get("/v2/catalog/gpus", params={"product": "POD"}).status_code == 400
    assert client.get("/v2/catalog/gpus", params={"include": "EVERYTHING"}).status_code == 422
    with_stock = client.get("/v2/catalog/gpus", params={"include": "AVAILABILITY", "product": "POD"}).json()["gpus"]
    by_id = {g["id"]: g for g in with_stock}
    assert by_id["NVIDIA GeForce RTX 4090"]["availability"] == "HIGH"
    assert by_id["NVIDIA H200"]["availability"] == "LOW"
    assert [c["version"] for c in by_id["NVIDIA A40"]["cudaVersions"]] == ["12.4", "12.6", "12.8"]
    assert "cudaVersions" not in by_id["AMD Instinct MI300X OAM"]
    too_many = client.get("/v2/catalog/gpus/NVIDIA A40", params={"include": "AVAILABILITY", "product": "POD", "count": 9})
    assert too_many.json()["availability"] == "NONE"
    japan = client.get(
        "/v2/catalog/gpus", params={"include": "AVAILABILITY", "product": "POD", "countryCodes": "JP"}
    ).json()["gpus"]
    assert {g["id"] for g in japan} == {"NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000", "NVIDIA H100 80GB HBM3"}


def test_unknown_gpu_type_is_404(client: Any) -> None:
    assert client.get("/v2/catalog/gpus/NVIDIA GeForce GTX 9999").status_code == 404


def test_data_centers_and_global_network(client: Any) -> None:
    centers = {d["id"]: d for d in client.get("/v2/catalog/datacenters").json()["dataCenters"]}
    assert set(centers) == set(catalog.DATA_CENTERS)
    assert centers["US-TX-3"]["globalNetwork"] is True
    assert centers["EU-SE-1"]["globalNetwork"] is False
    gn = client.get("/v2/catalog/datacenters", params={"globalNetwork": "true"}).json()["dataCenters"]
    assert {d["id"] for d in gn} == {"US-TX-3", "US-KS-2", "US-CA-2", "EU-RO-1", "US-GA-2"}
    europe = client.get("/v2/catalog/datacenters", params={"regions": "EUROPE", "compliance": "GDPR"}).json()
    assert {d["id"] for d in europe["dataCenters"]} == {"EU-RO-1", "EU-SE-1", "EUR-IS-1"}
    one = client.get("/v2/catalog/datacenters/AP-JP-1", params={"include": "GPU_AVAILABILITY"}).json()
    assert [g["id"] for g in one["gpuAvailability"]] == ["NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000", "NVIDIA H100 80GB HBM3"]
    assert client.get("/v2/catalog/datacenters/XX-1").status_code == 404


def test_placement_follows_data_center_ids_and_global_networking(client: Any, create_pod: Any) -> None:
    assert create_pod(dataCenterIds=["EU-SE-1", "US-KS-2"])["dataCenterId"] == "EU-SE-1"
    assert create_pod(dataCenterIds=["EU-SE-1", "US-KS-2"], globalNetworking=True)["dataCenterId"] == "US-KS-2"
    mi300 = create_pod(gpu={"id": "AMD Instinct MI300X OAM", "count": 1})
    assert mi300["dataCenterId"] == "US-GA-2"
    gn = create_pod(globalNetworking=True)
    assert gn["globalNetworking"]["enabled"] is True
    assert gn["globalNetworking"]["internalDns"] == f"{gn['id']}.runpod.internal"
    assert gn["globalNetworking"]["ip"].startswith("10.65.")
    assert create_pod(gpu={"id": "NVIDIA A40", "allowedCudaVersions": ["12.4"]})["cudaVersion"] == "12.4"
    assert create_pod(gpu={"id": "NVIDIA A40", "minCudaVersion": "12.5"})["cudaVersion"] == "12.8"


@pytest.mark.parametrize("gpu", list(catalog.GPU_TYPES.values()), ids=lambda g: g.id)
def test_catalog_prices_are_consistent(gpu: catalog.GpuType) -> None:
    assert 0 < gpu.community_price <= gpu.secure_price
    assert gpu.memory > 0 and gpu.vcpu_per_gpu > 0 and gpu.ram_per_gpu_gb > 0
    assert any(dc.offers(gpu) for dc in catalog.DATA_CENTERS.values())


def test_known_prices() -> None:
    rtx4090 = catalog.GPU_TYPES["NVIDIA GeForce RTX 4090"]
    assert catalog.pod_cost(rtx4090, 2, "SECURE") == 1.38
    assert catalog.pod_cost(rtx4090, 1, "COMMUNITY") == 0.34


def test_every_data_center_has_a_country() -> None:
    assert set(catalog.COUNTRIES) == set(catalog.DATA_CENTERS)
