"""The local cloud's stand-in NVIDIA layer (images/nvidia-standin), without Docker.

The stand-in libnvidia-ml.so.1 is built here with the host's gcc, as the pod
images build it; the stand-in driver writes its state from an injected GPU
description and a fake /proc; then the dcgm_exporter role's exporter runs its
production nvml backend on it through the real nvidia-ml-py, and the stand-in
nvidia-smi answers the roles' query. The pod images themselves are checked by
tests/integration/test_exporter.py::test_exporter_nvml_backend_on_the_pod_image_standin.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
STANDIN = REPO / "images/nvidia-standin"
EXPORTER = REPO / "collections/ansible_collections/gpuops/platform/roles/dcgm_exporter/files/gpuops_gpu_exporter.py"
MIB = 1024 * 1024


def load_driver():
    loader = importlib.machinery.SourceFileLoader("gpuops_nvidia_standin_driver",
                                                  str(STANDIN / "gpuops-nvidia-standin-driver"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up here
    loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def driver():
    return load_driver()


@pytest.fixture(scope="session")
def libdir(tmp_path_factory) -> Path:
    """libnvidia-ml.so.1 built from nvml-standin.c with the flags of install.sh."""
    gcc = shutil.which("gcc")
    assert gcc, "these tests build the stand-in NVML with gcc: apt-get install gcc libc6-dev (make setup does)"
    out = tmp_path_factory.mktemp("nvml")
    subprocess.run([gcc, "-std=gnu99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                    "-fvisibility=hidden", "-Wl,-soname,libnvidia-ml.so.1", "-o", str(out / "libnvidia-ml.so.1"),
                    str(STANDIN / "nvml-standin.c"), "-lpthread"], check=True, capture_output=True, text=True)
    return out


def fake_proc(root: Path, processes: dict[int, dict[str, str]]) -> Path:
    for pid, env in processes.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()) + b"\0")
    (root / "self").mkdir(parents=True, exist_ok=True)  # not a pid: ignored
    return root


def write_state(driver, tmp_path: Path, description: dict, processes: dict | None = None) -> Path:
    injected = tmp_path / "simulated-gpus.json"
    injected.write_text(json.dumps(description))
    state = tmp_path / "run/state"
    proc = fake_proc(tmp_path / "proc", processes or {})
    assert driver.main(["--description", str(injected), "--state", str(state), "--proc", str(proc),
                        "--no-devices", "--once"]) == 0
    return state


def run_with_standin(libdir: Path, state: Path, *argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir), GPUOPS_NVIDIA_STANDIN_STATE=str(state))
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60, check=False)


def series(text: str, name: str) -> dict[str, float]:
    return {gpu: float(value) for gpu, value in re.findall(rf'^{name}\{{gpu="(\d+)"[^}}]*\}} (\S+)$', text, re.M)}


# --------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------

def test_busy_gpus_are_those_of_running_slurm_job_processes(driver, tmp_path):
    proc = fake_proc(tmp_path, {
        10: {"SLURM_JOB_ID": "7", "SLURM_STEP_GPUS": "1", "CUDA_VISIBLE_DEVICES": "0"},  # srun step on GPU 1
        11: {"SLURM_JOB_ID": "8", "SLURM_JOB_GPUS": "2,3"},                                # batch script
        12: {"SLURM_JOB_ID": "9", "SLURM_JOB_GPUS": "0", "SLURM_SCRIPT_CONTEXT": "prolog_slurmd"},  # prolog
        13: {"CUDA_VISIBLE_DEVICES": "0"},                                                  # no job
        14: {"SLURM_JOB_ID": "10", "CUDA_VISIBLE_DEVICES": "3"},
        15: {"SLURM_JOB_ID": "11", "SLURM_STEP_GPUS": "NoDevFiles"},
    })
    assert driver.jobs_on_gpus(str(proc)) == {1: ["7"], 2: ["8"], 3: ["8", "10"]}
    assert driver.jobs_on_gpus(str(tmp_path / "missing")) == {}


def test_a_gpu_follows_its_load_with_a_lag(driver):
    gpu = driver.Gpu(0, "NVIDIA GeForce RTX 4090", driver.model_for("NVIDIA GeForce RTX 4090"), "pod", 0.0, 3600)
    idle = gpu.step(1.0, [])
    assert idle["util"] == 0 and idle["used"] <= MIB and idle["power"] < 40_000 and idle["sm"] < 500
    assert 25 <= idle["temp"] <= 40 and idle["total"] == 24564 * MIB
    busy = gpu.step(2.0, ["99"])
    assert busy["util"] >= 85 and busy["used"] > 0.5 * 24564 * MIB and busy["sm"] > 2000
    assert busy["power"] < 300_000  # power lags behind the load
    warm = gpu.step(62.0, ["99"])
    assert warm["power"] > 300_000 and warm["temp"] > 55 and warm["used"] == busy["used"]  # a job's footprint
    assert warm["reserved"] + warm["used"] <= warm["total"]
    after = gpu.step(63.0, [])
    assert after["util"] == 0 and after["used"] <= MIB
    assert idle["energy"] < busy["energy"] < warm["energy"] < after["energy"]
    # Busy for 60 s at several hundred watts: well over 3 kJ (in mJ).
    assert warm["energy"] - busy["energy"] > 3_000_000


def test_models_and_memory(driver):
    assert driver.model_for("NVIDIA H200").memory_mib == 143771
    assert driver.model_for("NVIDIA B200", 180).memory_mib == 180 * 1024
    b200 = driver.model_for("NVIDIA B200", 180)
    assert b200.datacenter and b200.nvlink
    assert driver.model_for("Some Future GPU 96GB").memory_mib == 96 * 1024
    assert not driver.model_for("NVIDIA GeForce RTX 5080", 16).datacenter
    # The same pod gets the same UUIDs; another pod other ones.
    first = driver.build_gpus({"podId": "a", "gpuTypeId": "NVIDIA L4", "count": 2}, 0, 0)
    again = driver.build_gpus({"podId": "a", "gpuTypeId": "NVIDIA L4", "count": 2}, 0, 0)
    other = driver.build_gpus({"podId": "b", "gpuTypeId": "NVIDIA L4", "count": 2}, 0, 0)
    assert [g.uuid for g in first] == [g.uuid for g in again]
    assert {g.uuid for g in first}.isdisjoint(g.uuid for g in other)
    assert driver.build_gpus({"podId": "c", "gpuTypeId": "AMD Instinct MI300X OAM", "count": 1}, 0, 0) == []


def test_off_the_local_cloud_the_driver_does_nothing(driver, tmp_path, capsys):
    state = tmp_path / "state"
    for body in (None, '{"simulated": false}', "not json"):
        injected = tmp_path / "simulated-gpus.json"
        if body is not None:
            injected.write_text(body)
        assert driver.main(["--description", str(injected), "--state", str(state), "--once"]) == 0
        assert not state.exists()
    assert "not a local-cloud pod" in capsys.readouterr().out


# --------------------------------------------------------------------------
# The library, through nvidia-ml-py and the exporter's production nvml backend
# --------------------------------------------------------------------------

def test_exporter_nvml_backend_reads_the_standin(driver, libdir, tmp_path):
    state = write_state(driver, tmp_path, {"simulated": True, "podId": "p1", "gpuTypeId": "NVIDIA H100 80GB HBM3",
                                           "count": 2, "memoryInGb": 80},
                        {42: {"SLURM_JOB_ID": "5", "SLURM_STEP_GPUS": "1"}})
    result = run_with_standin(libdir, state, sys.executable, str(EXPORTER), "print", "--hostname", "h")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert 'gpuops_gpu_exporter_info{source="nvml"' in text
    labels = re.findall(r'^DCGM_FI_DEV_GPU_UTIL\{(.*)\} ', text, re.M)
    assert len(labels) == 2
    assert all('modelName="NVIDIA H100 80GB HBM3"' in line and 'DCGM_FI_DRIVER_VERSION="570.133.20"' in line
               for line in labels)
    assert 'device="nvidia1"' in labels[1] and 'pci_bus_id="00000000:02:00.0"' in labels[1]
    util = series(text, "DCGM_FI_DEV_GPU_UTIL")
    assert util["0"] == 0 and util["1"] >= 85
    free, used, reserved = (series(text, f"DCGM_FI_DEV_FB_{k}") for k in ("FREE", "USED", "RESERVED"))
    assert all(free[g] + used[g] + reserved[g] == 81559 for g in ("0", "1"))  # the H100's MiB
    assert used["1"] > 0.5 * 81559 and used["0"] <= 1
    assert set(series(text, "DCGM_FI_DEV_MEMORY_TEMP")) == {"0", "1"}  # HBM on a data-centre GPU
    assert series(text, "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL") == {"0": 0, "1": 0}
    assert series(text, "DCGM_FI_DEV_XID_ERRORS") == {"0": 0, "1": 0}  # events registered, none ever comes
    assert 30 < series(text, "DCGM_FI_DEV_POWER_USAGE")["0"] < 120  # W from NVML's mW: idle
    assert series(text, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")["0"] > 0


def test_consumer_gpus_lack_what_nvml_lacks_there(driver, libdir, tmp_path):
    state = write_state(driver, tmp_path, {"simulated": True, "podId": "p2", "gpuTypeId": "NVIDIA GeForce RTX 4090",
                                           "count": 1, "memoryInGb": 24})
    result = run_with_standin(libdir, state, sys.executable, str(EXPORTER), "print", "--hostname", "h")
    assert result.returncode == 0, result.stderr
    for name in ("DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_ROW_REMAP_FAILURE"):
        assert name not in result.stdout
    assert series(result.stdout, "DCGM_FI_DEV_GPU_TEMP")["0"] > 20


NVML_ERRORS = """
import ctypes, sys
lib = ctypes.CDLL("libnvidia-ml.so.1")
count = ctypes.c_uint()
print(lib.nvmlDeviceGetCount_v2(ctypes.byref(count)))            # before init: UNINITIALIZED
print(lib.nvmlInit_v2())
if len(sys.argv) > 1:
    handle = ctypes.c_void_p()
    print(lib.nvmlDeviceGetHandleByIndex_v2(5, ctypes.byref(handle)))  # no GPU 5: INVALID_ARGUMENT
    lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle))
    u = (ctypes.c_uint * 4)()
    print(lib.nvmlDeviceGetRemappedRows(handle, *[ctypes.byref(u, 4 * i) for i in range(4)]))
    mem = (ctypes.c_ulonglong * 5)(7)                               # version 7: not nvmlMemory_v2
    print(lib.nvmlDeviceGetMemoryInfo_v2(handle, ctypes.byref(mem)))
    name = ctypes.create_string_buffer(4)
    print(lib.nvmlDeviceGetName(handle, name, 4))                   # too small: INSUFFICIENT_SIZE
"""


def test_nvml_return_codes(driver, libdir, tmp_path):
    missing = run_with_standin(libdir, tmp_path / "no-state", sys.executable, "-c", NVML_ERRORS)
    assert missing.stdout.split() == ["1", "9"]  # no driver: NVML_ERROR_DRIVER_NOT_LOADED
    state = write_state(driver, tmp_path, {"simulated": True, "podId": "p3", "gpuTypeId": "NVIDIA L4", "count": 1})
    codes = run_with_standin(libdir, state, sys.executable, "-c", NVML_ERRORS, "devices")
    assert codes.stdout.split() == ["1", "0", "2", "3", "25", "7"], codes.stderr


# --------------------------------------------------------------------------
# nvidia-smi
# --------------------------------------------------------------------------

def test_nvidia_smi_answers_the_roles_query(driver, libdir, tmp_path):
    state = write_state(driver, tmp_path, {"simulated": True, "podId": "p4", "gpuTypeId": "NVIDIA A40", "count": 3,
                                           "memoryInGb": 48})
    smi = str(STANDIN / "nvidia-smi")
    roles = run_with_standin(libdir, state, sys.executable, smi, "--query-gpu=index,minor_number,name",
                             "--format=csv,noheader")
    assert roles.returncode == 0 and roles.stdout.splitlines() == [f"{i}, {i}, NVIDIA A40" for i in range(3)]
    listed = run_with_standin(libdir, state, sys.executable, smi, "-L")
    assert re.fullmatch(r"(GPU \d: NVIDIA A40 \(UUID: GPU-[0-9a-f-]{36}\)\n){3}", listed.stdout)
    memory = run_with_standin(libdir, state, sys.executable, smi, "--query-gpu=memory.total,utilization.gpu",
                              "--format=csv", "-i", "2")
    assert memory.stdout.splitlines() == ["memory.total [MiB], utilization.gpu [%]", "46068 MiB, 0 %"]
    bad = run_with_standin(libdir, state, sys.executable, smi, "--query-gpu=nonsense", "--format=csv")
    assert bad.returncode == 2 and 'Field "nonsense" is not a valid field to query.' in bad.stderr
    none = run_with_standin(libdir, tmp_path / "no-state", sys.executable, smi)
    assert none.returncode == 9 and "couldn't communicate with the NVIDIA driver" in none.stdout
