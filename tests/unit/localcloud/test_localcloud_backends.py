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
        "image": "runpod/base",
        "runtime_image": "gpuops/pod:bookworm",
        "gpu_type_id": "NVIDIA A40",
        "gpu_count": 2,
        "cloud": "SECURE",
        "ports": ["22/tcp", "8888/http", "2222/tcp"],
        "env": {"RUNPOD_POD_ID": "spoofed", "JUPYTER_PASSWORD": "mine"},
        "injected_env": {"PUBLIC_KEY": "ssh-ed25519 AAAA k", "JUPYTER_PASSWORD": "generated"},
        "state": "RUNNING",
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "machine_id": "m12345678901",
        "data_center_id": "US-TX-3",
        "vcpu_count": 18,
        "memory_in_gb": 100,
        "host_ports": {"22": 21000, "2222": 21001},
    }
    fields.update(overrides)
    return PodRecord.model_validate(fields)


def test_runpod_environment() -> None:
    env = runpod_environment(_record(), "127.0.0.1")
    assert env["PUBLIC_KEY"] == "ssh-ed25519 AAAA k"  # injected by startSsh
    assert env["JUPYTER_PASSWORD"] == "mine"  # requested env wins over injected
    assert env["RUNPOD_POD_ID"] == "abcdefghij0123"  # RunPod's own variables win
    assert env["RUNPOD_POD_HOSTNAME"] == "abcdefghij0123"
    assert env["RUNPOD_PUBLIC_IP"] == "127.0.0.1"
    assert env["RUNPOD_TCP_PORT_22"] == "21000"
    assert env["RUNPOD_TCP_PORT_2222"] == "21001"
    assert env["RUNPOD_GPU_COUNT"] == "2"
    assert env["RUNPOD_CPU_COUNT"] == "18"
    assert env["RUNPOD_MEM_GB"] == "100"
    assert env["RUNPOD_DC_ID"] == "US-TX-3"
    assert "RUNPOD_API_KEY" not in env
    assert not [name for name in env if name.startswith("GPUOPS_")]  # RunPod sets none: the GPUs are in a file


def test_simulated_gpus_file() -> None:
    import io
    import json
    import tarfile

    from localcloud.backends.docker import SIMULATED_GPUS_FILE, simulated_gpus_archive

    with tarfile.open(fileobj=io.BytesIO(simulated_gpus_archive(_record()))) as tar:
        body = json.load(tar.extractfile(SIMULATED_GPUS_FILE))
    assert SIMULATED_GPUS_FILE == "etc/gpuops-localcloud/simulated-gpus.json"
    assert body == {"simulated": True, "podId": "abcdefghij0123", "gpuTypeId": "NVIDIA A40", "count": 2,
                    "memoryInGb": 48}


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
