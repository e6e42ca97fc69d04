"""What the local cloud rents out: GPU types and data centres, spelled as RunPod spells them.

Prices are per GPU per hour in US dollars for each cloud (``SECURE``,
``COMMUNITY``) and resemble RunPod's public list prices; they only need to
be plausible and stable, since the local cloud bills nobody. v2 has no spot
(interruptible) pods, so there are no spot prices.

Data centres use RunPod's ids; ``global_network`` says whether a data centre
offers global networking (``GET /v2/catalog/datacenters`` ``globalNetwork``).
``Stock`` holds the availability level per GPU type, which fault injection
can change (``NONE`` makes creates fail for lack of capacity).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

CloudType = Literal["SECURE", "COMMUNITY"]
Availability = Literal["NONE", "LOW", "MEDIUM", "HIGH"]
AVAILABILITY_LEVELS: tuple[Availability, ...] = ("NONE", "LOW", "MEDIUM", "HIGH")

#: The most GPUs one local "machine" offers (RunPod's largest pods have 8).
MAX_GPUS_PER_POD = 8
#: CUDA versions the machines of every data centre report (newest last).
CUDA_VERSIONS: tuple[str, ...] = ("12.4", "12.6", "12.8")


@dataclass(frozen=True)
class GpuType:
    """One rentable GPU model."""

    id: str
    name: str
    manufacturer: Literal["NVIDIA", "AMD"]
    memory: int
    secure_price: float
    community_price: float
    #: The serverless pool it belongs to (RunPod's ``pool``), or None.
    pool: str | None
    vcpu_per_gpu: int
    ram_per_gpu_gb: int
    max_count_secure: int = MAX_GPUS_PER_POD
    max_count_community: int = 4

    def price(self, cloud: CloudType) -> float:
        """Return the hourly price of one GPU in ``cloud``."""
        return self.secure_price if cloud == "SECURE" else self.community_price

    def max_count(self, cloud: CloudType) -> int:
        """Return the most GPUs of this type one pod may have in ``cloud``."""
        return self.max_count_secure if cloud == "SECURE" else self.max_count_community


def _gpu(
    gpu_id: str, name: str, vram: int, prices: tuple[float, float], pool: str | None, vcpu: int, ram: int
) -> GpuType:
    manufacturer: Literal["NVIDIA", "AMD"] = "AMD" if gpu_id.startswith("AMD") else "NVIDIA"
    return GpuType(gpu_id, name, manufacturer, vram, prices[0], prices[1], pool, vcpu, ram)


_GPU_TYPES: tuple[GpuType, ...] = (
    # id, name, VRAM GB, (secure, community) $/GPU/h, serverless pool, vCPU/GPU, RAM GB/GPU
    _gpu("NVIDIA GeForce RTX 4090", "RTX 4090", 24, (0.69, 0.34), "ADA_24", 8, 41),
    _gpu("NVIDIA GeForce RTX 5090", "RTX 5090", 32, (0.94, 0.69), "ADA_32_PRO", 8, 46),
    _gpu("NVIDIA GeForce RTX 5080", "RTX 5080", 16, (0.55, 0.39), None, 6, 31),
    _gpu("NVIDIA GeForce RTX 4080 SUPER", "RTX 4080 SUPER", 16, (0.42, 0.29), None, 6, 31),
    _gpu("NVIDIA GeForce RTX 4080", "RTX 4080", 16, (0.39, 0.27), None, 6, 31),
    _gpu("NVIDIA GeForce RTX 4070 Ti", "RTX 4070 Ti", 12, (0.30, 0.19), None, 6, 31),
    _gpu("NVIDIA GeForce RTX 3090 Ti", "RTX 3090 Ti", 24, (0.47, 0.27), None, 8, 41),
    _gpu("NVIDIA GeForce RTX 3090", "RTX 3090", 24, (0.43, 0.22), "AMPERE_24", 8, 41),
    _gpu("NVIDIA GeForce RTX 3080 Ti", "RTX 3080 Ti", 12, (0.28, 0.18), None, 6, 31),
    _gpu("NVIDIA GeForce RTX 3080", "RTX 3080", 10, (0.25, 0.17), None, 6, 31),
    _gpu("NVIDIA GeForce RTX 3070", "RTX 3070", 8, (0.20, 0.13), None, 4, 23),
    _gpu("NVIDIA RTX A2000", "RTX A2000", 6, (0.18, 0.12), None, 4, 23),
    _gpu("NVIDIA RTX A4000", "RTX A4000", 16, (0.32, 0.17), "AMPERE_16", 6, 31),
    _gpu("NVIDIA RTX A4500", "RTX A4500", 20, (0.34, 0.19), "AMPERE_16", 6, 31),
    _gpu("NVIDIA RTX A5000", "RTX A5000", 24, (0.36, 0.22), "AMPERE_24", 8, 41),
    _gpu("NVIDIA RTX A6000", "RTX A6000", 48, (0.79, 0.49), "AMPERE_48", 8, 50),
    _gpu("NVIDIA RTX 2000 Ada Generation", "RTX 2000 Ada", 16, (0.24, 0.18), "AMPERE_16", 6, 31),
    _gpu("NVIDIA RTX 4000 Ada Generation", "RTX 4000 Ada", 20, (0.38, 0.20), "AMPERE_16", 6, 31),
    _gpu("NVIDIA RTX 4000 SFF Ada Generation", "RTX 4000 SFF Ada", 20, (0.36, 0.19), None, 6, 31),
    _gpu("NVIDIA RTX 5000 Ada Generation", "RTX 5000 Ada", 32, (0.89, 0.60), None, 8, 50),
    _gpu("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48, (0.88, 0.74), "ADA_48_PRO", 8, 62),
    _gpu("NVIDIA L4", "L4", 24, (0.43, 0.28), "AMPERE_24", 8, 41),
    _gpu("NVIDIA L40", "L40", 48, (0.99, 0.69), "ADA_48_PRO", 8, 62),
    _gpu("NVIDIA L40S", "L40S", 48, (0.86, 0.79), "ADA_48_PRO", 12, 62),
    _gpu("NVIDIA A30", "A30", 24, (0.30, 0.25), None, 8, 31),
    _gpu("NVIDIA A40", "A40", 48, (0.40, 0.35), "AMPERE_48", 9, 50),
    _gpu("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, (1.64, 1.19), "AMPERE_80", 8, 117),
    _gpu("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB", 40, (1.39, 1.09), None, 12, 117),
    _gpu("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, (1.74, 1.39), "AMPERE_80", 16, 125),
    _gpu("NVIDIA H100 PCIe", "H100 PCIe", 80, (2.39, 1.99), "ADA_80_PRO", 16, 188),
    _gpu("NVIDIA H100 80GB HBM3", "H100 SXM", 80, (2.69, 2.39), "ADA_80_PRO", 20, 125),
    _gpu("NVIDIA H100 NVL", "H100 NVL", 94, (2.79, 2.59), None, 16, 94),
    _gpu("NVIDIA H200", "H200 SXM", 141, (3.99, 3.59), "HOPPER_141", 24, 188),
    _gpu("NVIDIA B200", "B200", 180, (5.99, 5.49), "BLACKWELL_180", 28, 283),
    _gpu("Tesla V100-PCIE-16GB", "Tesla V100", 16, (0.30, 0.19), None, 6, 46),
    _gpu("Tesla V100-SXM2-16GB", "V100 SXM2", 16, (0.32, 0.20), None, 8, 46),
    _gpu("Tesla V100-SXM2-32GB", "V100 SXM2 32GB", 32, (0.39, 0.25), None, 8, 62),
    _gpu("AMD Instinct MI300X OAM", "MI300X", 192, (2.99, 2.49), None, 24, 283),
)
# Tesla V100s are NVIDIA GPUs too, whatever their id says.
_GPU_TYPES = tuple(
    GpuType(**{**g.__dict__, "manufacturer": "NVIDIA"}) if g.id.startswith("Tesla") else g for g in _GPU_TYPES
)

#: Every GPU type, by its RunPod id.
GPU_TYPES: dict[str, GpuType] = {gpu.id: gpu for gpu in _GPU_TYPES}

#: Stock levels a fresh local cloud starts with (every other type: HIGH).
DEFAULT_STOCK: dict[str, Availability] = {
    "NVIDIA H200": "LOW",
    "NVIDIA B200": "LOW",
    "NVIDIA H100 80GB HBM3": "MEDIUM",
    "NVIDIA H100 NVL": "MEDIUM",
    "AMD Instinct MI300X OAM": "LOW",
}


@dataclass(frozen=True)
class DataCenter:
    """One RunPod data centre."""

    id: str
    name: str
    region: str
    global_network: bool
    compliance: tuple[str, ...]
    network_volume_types: tuple[str, ...]
    #: GPU types it offers; None means every NVIDIA type.
    gpu_ids: frozenset[str] | None = None

    def offers(self, gpu: GpuType) -> bool:
        """Return True if this data centre has machines with ``gpu``."""
        return gpu.manufacturer == "NVIDIA" if self.gpu_ids is None else gpu.id in self.gpu_ids


_SOC = ("SOC_2_TYPE_2", "ISO_IEC_27001")
#: The data centres, in the order the scheduler tries them when a create names none.
DATA_CENTERS: dict[str, DataCenter] = {
    dc.id: dc
    for dc in (
        DataCenter("US-TX-3", "US Texas 3", "NORTH_AMERICA", True, _SOC, ("STANDARD",)),
        DataCenter("US-KS-2", "US Kansas 2", "NORTH_AMERICA", True, _SOC, ("STANDARD", "HIGH_PERFORMANCE")),
        DataCenter("US-CA-2", "US California 2", "NORTH_AMERICA", True, _SOC, ("STANDARD",)),
        DataCenter("EU-RO-1", "EU Romania 1", "EUROPE", True, ("GDPR", *_SOC), ("STANDARD",)),
        DataCenter("EU-SE-1", "EU Sweden 1", "EUROPE", False, ("GDPR", *_SOC, "RENEWABLE"), ("STANDARD",)),
        DataCenter("CA-MTL-1", "CA Montreal 1", "NORTH_AMERICA", False, _SOC, ("STANDARD",)),
        DataCenter("EUR-IS-1", "EU Iceland 1", "EUROPE", False, ("GDPR", "RENEWABLE"), ()),
        DataCenter(
            "AP-JP-1",
            "AP Japan 1",
            "ASIA",
            False,
            (),
            (),
            frozenset({"NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000", "NVIDIA H100 80GB HBM3"}),
        ),
        DataCenter(
            "US-GA-2",
            "US Georgia 2",
            "NORTH_AMERICA",
            True,
            _SOC,
            ("STANDARD",),
            frozenset({"AMD Instinct MI300X OAM", "NVIDIA H100 80GB HBM3", "NVIDIA H200"}),
        ),
    )
}


def get_gpu_type(gpu_type_id: str) -> GpuType | None:
    """Return the GPU type with RunPod id ``gpu_type_id``, or None when unknown."""
    return GPU_TYPES.get(gpu_type_id)


def pod_cost(gpu: GpuType, gpu_count: int, cloud: CloudType) -> float:
    """Return the hourly price of a running pod with ``gpu_count`` GPUs of type ``gpu`` in ``cloud``."""
    return round(gpu.price(cloud) * gpu_count, 4)


class Stock:
    """Availability level per GPU type (the same in every data centre offering it); thread-safe."""

    def __init__(self) -> None:
        self._levels: dict[str, Availability] = {}
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Go back to the default levels."""
        with self._lock:
            self._levels = {g: DEFAULT_STOCK.get(g, "HIGH") for g in GPU_TYPES}

    def level(self, gpu_id: str) -> Availability:
        """Return the availability of ``gpu_id`` (NONE for unknown types)."""
        with self._lock:
            return self._levels.get(gpu_id, "NONE")

    def set(self, levels: dict[str, Availability]) -> None:
        """Change the levels of some GPU types (ids must be known)."""
        with self._lock:
            self._levels.update(levels)

    def table(self) -> dict[str, Availability]:
        """Return every level by GPU id."""
        with self._lock:
            return dict(self._levels)


#: ISO 3166-1 country of each data centre (for the catalog's ``countryCodes`` filter).
COUNTRIES: dict[str, str] = {
    "US-TX-3": "US",
    "US-KS-2": "US",
    "US-CA-2": "US",
    "US-GA-2": "US",
    "EU-RO-1": "RO",
    "EU-SE-1": "SE",
    "CA-MTL-1": "CA",
    "EUR-IS-1": "IS",
    "AP-JP-1": "JP",
}
