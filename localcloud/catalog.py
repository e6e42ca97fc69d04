"""GPU types the local cloud rents out, spelled as RunPod spells them.

Prices are per GPU per hour in US dollars and resemble RunPod's public list
prices; they only need to be plausible and stable, since the local cloud
bills nobody. ``SECURE``/``COMMUNITY`` are RunPod's two clouds, ``*_spot``
the interruptible (spot) price in each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CloudType = Literal["SECURE", "COMMUNITY"]

#: The most GPUs one local "machine" offers (RunPod's largest pods have 8).
MAX_GPUS_PER_POD = 8


@dataclass(frozen=True)
class GpuType:
    """One rentable GPU model and its prices per GPU per hour."""

    id: str
    display_name: str
    memory_in_gb: int
    secure_price: float
    community_price: float
    secure_spot_price: float
    community_spot_price: float
    vcpu_per_gpu: int
    ram_per_gpu_gb: int

    def price_per_gpu(self, cloud_type: CloudType, interruptible: bool) -> float:
        """Return the hourly price of one GPU in ``cloud_type``, spot if ``interruptible``."""
        if cloud_type == "SECURE":
            return self.secure_spot_price if interruptible else self.secure_price
        return self.community_spot_price if interruptible else self.community_price


def _gpu(
    gpu_id: str,
    display: str,
    vram: int,
    prices: tuple[float, float, float, float],
    vcpu: int,
    ram: int,
) -> GpuType:
    secure, community, secure_spot, community_spot = prices
    return GpuType(gpu_id, display, vram, secure, community, secure_spot, community_spot, vcpu, ram)


_GPU_TYPES: tuple[GpuType, ...] = (
    # id, display name, VRAM GB, (secure, community, secure spot, community spot), vCPU/GPU, RAM GB/GPU
    _gpu("NVIDIA GeForce RTX 4090", "RTX 4090", 24, (0.69, 0.34, 0.35, 0.20), 8, 41),
    _gpu("NVIDIA GeForce RTX 5090", "RTX 5090", 32, (0.94, 0.69, 0.55, 0.40), 8, 46),
    _gpu("NVIDIA GeForce RTX 5080", "RTX 5080", 16, (0.55, 0.39, 0.32, 0.23), 6, 31),
    _gpu("NVIDIA GeForce RTX 4080 SUPER", "RTX 4080 SUPER", 16, (0.42, 0.29, 0.25, 0.17), 6, 31),
    _gpu("NVIDIA GeForce RTX 4080", "RTX 4080", 16, (0.39, 0.27, 0.23, 0.16), 6, 31),
    _gpu("NVIDIA GeForce RTX 4070 Ti", "RTX 4070 Ti", 12, (0.30, 0.19, 0.18, 0.11), 6, 31),
    _gpu("NVIDIA GeForce RTX 3090 Ti", "RTX 3090 Ti", 24, (0.47, 0.27, 0.27, 0.15), 8, 41),
    _gpu("NVIDIA GeForce RTX 3090", "RTX 3090", 24, (0.43, 0.22, 0.25, 0.13), 8, 41),
    _gpu("NVIDIA GeForce RTX 3080 Ti", "RTX 3080 Ti", 12, (0.28, 0.18, 0.16, 0.11), 6, 31),
    _gpu("NVIDIA GeForce RTX 3080", "RTX 3080", 10, (0.25, 0.17, 0.15, 0.10), 6, 31),
    _gpu("NVIDIA GeForce RTX 3070", "RTX 3070", 8, (0.20, 0.13, 0.12, 0.08), 4, 23),
    _gpu("NVIDIA RTX A2000", "RTX A2000", 6, (0.18, 0.12, 0.11, 0.07), 4, 23),
    _gpu("NVIDIA RTX A4000", "RTX A4000", 16, (0.32, 0.17, 0.18, 0.10), 6, 31),
    _gpu("NVIDIA RTX A4500", "RTX A4500", 20, (0.34, 0.19, 0.19, 0.11), 6, 31),
    _gpu("NVIDIA RTX A5000", "RTX A5000", 24, (0.36, 0.22, 0.20, 0.12), 8, 41),
    _gpu("NVIDIA RTX A6000", "RTX A6000", 48, (0.79, 0.49, 0.45, 0.25), 8, 50),
    _gpu("NVIDIA RTX 2000 Ada Generation", "RTX 2000 Ada", 16, (0.24, 0.18, 0.14, 0.11), 6, 31),
    _gpu("NVIDIA RTX 4000 Ada Generation", "RTX 4000 Ada", 20, (0.38, 0.20, 0.22, 0.12), 6, 31),
    _gpu("NVIDIA RTX 4000 SFF Ada Generation", "RTX 4000 SFF Ada", 20, (0.36, 0.19, 0.21, 0.11), 6, 31),
    _gpu("NVIDIA RTX 5000 Ada Generation", "RTX 5000 Ada", 32, (0.89, 0.60, 0.52, 0.35), 8, 50),
    _gpu("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada", 48, (0.88, 0.74, 0.52, 0.44), 8, 62),
    _gpu("NVIDIA L4", "L4", 24, (0.43, 0.28, 0.24, 0.16), 8, 41),
    _gpu("NVIDIA L40", "L40", 48, (0.99, 0.69, 0.55, 0.40), 8, 62),
    _gpu("NVIDIA L40S", "L40S", 48, (0.86, 0.79, 0.50, 0.45), 12, 62),
    _gpu("NVIDIA A30", "A30", 24, (0.30, 0.25, 0.18, 0.15), 8, 31),
    _gpu("NVIDIA A40", "A40", 48, (0.40, 0.35, 0.24, 0.20), 9, 50),
    _gpu("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, (1.64, 1.19, 0.98, 0.82), 8, 117),
    _gpu("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB", 40, (1.39, 1.09, 0.85, 0.70), 12, 117),
    _gpu("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, (1.74, 1.39, 1.05, 0.89), 16, 125),
    _gpu("NVIDIA H100 PCIe", "H100 PCIe", 80, (2.39, 1.99, 1.49, 1.25), 16, 188),
    _gpu("NVIDIA H100 80GB HBM3", "H100 SXM", 80, (2.69, 2.39, 1.75, 1.55), 20, 125),
    _gpu("NVIDIA H100 NVL", "H100 NVL", 94, (2.79, 2.59, 1.80, 1.65), 16, 94),
    _gpu("NVIDIA H200", "H200 SXM", 141, (3.99, 3.59, 2.60, 2.35), 24, 188),
    _gpu("NVIDIA B200", "B200", 180, (5.99, 5.49, 3.90, 3.60), 28, 283),
    _gpu("Tesla V100-PCIE-16GB", "Tesla V100", 16, (0.30, 0.19, 0.18, 0.11), 6, 46),
    _gpu("Tesla V100-FHHL-16GB", "V100 FHHL", 16, (0.28, 0.18, 0.17, 0.10), 6, 46),
    _gpu("Tesla V100-SXM2-16GB", "V100 SXM2", 16, (0.32, 0.20, 0.19, 0.12), 8, 46),
    _gpu("Tesla V100-SXM2-32GB", "V100 SXM2 32GB", 32, (0.39, 0.25, 0.23, 0.15), 8, 62),
    _gpu("AMD Instinct MI300X OAM", "MI300X", 192, (2.99, 2.49, 1.99, 1.69), 24, 283),
)

#: Every GPU type, by its RunPod id.
GPU_TYPES: dict[str, GpuType] = {gpu.id: gpu for gpu in _GPU_TYPES}


def get_gpu_type(gpu_type_id: str) -> GpuType | None:
    """Return the GPU type with RunPod id ``gpu_type_id``, or None when unknown."""
    return GPU_TYPES.get(gpu_type_id)


def pod_cost_per_hr(gpu: GpuType, gpu_count: int, cloud_type: CloudType, interruptible: bool) -> float:
    """Return the hourly price of a pod with ``gpu_count`` GPUs of type ``gpu``."""
    return round(gpu.price_per_gpu(cloud_type, interruptible) * gpu_count, 4)
