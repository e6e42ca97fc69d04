"""Backend pieces that need no Docker: the in-pod environment, port allocation."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from localcloud.backends.base import runpod_environment
from localcloud.ports import PortAllocator, PortsExhausted
from localcloud.records import PodRecord


def _record(**overrides: object) -> PodRecord:
    fields: dict[str, object] = {
        "id": "abcdefghij0123",
        "name": "p",
        "image_name": "runpod/base",
        "runtime_image": "gpuops/pod:bookworm",
        "gpu_type_id": "NVIDIA A40",
        "gpu_count": 2,
        "cloud_type": "SECURE",
        "interruptible": False,
        "support_public_ip": True,
        "ports": ["22/tcp", "8888/http", "2222/tcp"],
        "env": {"PUBLIC_KEY": "ssh-ed25519 AAAA k", "RUNPOD_POD_ID": "spoofed"},
        "container_disk_in_gb": 50,
        "volume_in_gb": 0,
        "volume_mount_path": "/workspace",
        "desired_status": "RUNNING",
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "machine_id": "m12345678901",
        "data_center_id": "LOCAL-1",
        "vcpu_count": 18,
        "memory_in_gb": 100,
        "cost_per_hr": 0.8,
        "host_ports": {"22": 21000, "2222": 21001},
    }
    fields.update(overrides)
    return PodRecord.model_validate(fields)


def test_runpod_environment() -> None:
    env = runpod_environment(_record(), "127.0.0.1")
    assert env["PUBLIC_KEY"] == "ssh-ed25519 AAAA k"
    assert env["RUNPOD_POD_ID"] == "abcdefghij0123"  # RunPod's own variables win
    assert env["RUNPOD_POD_HOSTNAME"] == "abcdefghij0123"
    assert env["RUNPOD_PUBLIC_IP"] == "127.0.0.1"
    assert env["RUNPOD_TCP_PORT_22"] == "21000"
    assert env["RUNPOD_TCP_PORT_2222"] == "21001"
    assert env["RUNPOD_GPU_COUNT"] == "2"
    assert env["RUNPOD_CPU_COUNT"] == "18"
    assert env["RUNPOD_MEM_GB"] == "100"
    assert env["RUNPOD_DC_ID"] == "LOCAL-1"
    assert env["GPUOPS_LOCALCLOUD"] == "1"
    assert env["GPUOPS_SIM_GPU_TYPE"] == "NVIDIA A40"
    assert env["GPUOPS_SIM_GPU_COUNT"] == "2"
    assert "RUNPOD_API_KEY" not in env


def test_tcp_ports() -> None:
    assert _record().tcp_ports() == [22, 2222]


def test_allocator_skips_ports_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        allocator = PortAllocator(port, port + 2, probe_host="127.0.0.1")
        assert allocator.allocate(preferred=port) == port + 1


def test_allocator_keeps_ports_distinct_until_released() -> None:
    allocator = PortAllocator(30000, 30003, probe_host=None)
    got = {allocator.allocate() for _ in range(3)}
    assert got == {30000, 30001, 30002}
    with pytest.raises(PortsExhausted):
        allocator.allocate()
    allocator.release([30001])
    assert allocator.allocate() == 30001


def test_allocator_honours_preferred_and_reserved() -> None:
    allocator = PortAllocator(30000, 30010, probe_host=None)
    allocator.reserve([30005])
    assert allocator.allocate(preferred=30004) == 30004
    assert allocator.allocate(preferred=30005) != 30005
