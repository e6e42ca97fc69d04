"""End to end: the gpuops.platform.dcgm_exporter role on 2 local-cloud pods.

A Slurm cluster as the product deploys it (stack.yml: the controller on this
test's own service plane; slurm.yml: the pods join as nodes <prefix>-0 and
<prefix>-1; tunnel.yml: the pods reach slurmctld), then playbooks/exporter.yml
on pods with 2 GPUs each. Jobs are submitted in the slurmctld container as the
job account gpuops; pods are isolated, so a job runs on one node. The
pod image's stand-in NVIDIA layer (images/nvidia-standin: /dev/nvidia*,
nvidia-smi, libnvidia-ml.so.1) makes them from the GPUs the pod rented, and the
role's production nvml backend runs on it (auto: no NVIDIA repository here):
dcgm-exporter's metrics on 127.0.0.1:9400 only, hpc_job labels and load that
follow Slurm jobs, supervision, and idempotence. The dcgm backend cannot run
here: it is rendered in check mode against a fake nvidia-smi and a fake
repository. The stand-in NVML itself is checked on the pod images directly
(no local cloud) by test_exporter_nvml_backend_on_the_pod_image_standin.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, Cluster, docker_available, recap, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopsexp"
GPUS_PER_POD = 2
LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION")



def parse(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The series of one metric: (labels, value) per line."""
    result = []
    for labels, value in re.findall(rf"^{name}\{{(.*)\}} (\S+)$", text, re.M):
        result.append((dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)), float(value)))
    return result


class Pods(Cluster):
    """The cluster's two pods (nodes <prefix>-0 and <prefix>-1) and their exporters."""

    first, second = f"{PREFIX}-0", f"{PREFIX}-1"

    def metrics(self, node: str) -> str:
        return self.on(node, "curl -sf http://127.0.0.1:9400/metrics", check=False).stdout

    def playbook(self, label: str, name: str, *args: str, check: bool = True):
        return self.timed(label, self.dep.playbook, name, *args, check=check)

    def sbatch_sleep(self, node: str, name: str, seconds: int = 60) -> str:
        """A one-node batch job with one GPU on a node; output nowhere, working dir one gpuops can use."""
        return self.slurm("sbatch", "--parsable", "-w", node, "--gpus=1", "--time=2",
                          f"--job-name={name}", "--chdir=/tmp", "-o", "/dev/null",
                          f"--wrap=sleep {seconds}").stdout.strip().split(";")[0]

    def exporter_pid(self, node: str) -> int:
        out = self.on(node, "/usr/local/sbin/gpuops-supervisorctl pid gpu-exporter", check=False).stdout.strip()
        return int(out) if out.isdigit() else 0


@pytest.fixture(scope="module")
def pods(tmp_path_factory):
    # stack.yml (slurmctld on this test's own service plane), slurm.yml (the pods join), tunnel.yml.
    with Pods(tmp_path_factory.mktemp("exporter"), PREFIX).deployed(
            provision=("-e", f"provision_gpu_count={GPUS_PER_POD}"), stages=("-e", "app_enabled=false")) as result:
        yield result
        print("\ntimings (s): " + ", ".join(f"{k}={v:.0f}" for k, v in result.timings.items()))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "dcgm_exporter_listen_address=0.0.0.0"], "listens on a loopback address only"),
        # A host whose nvidia-smi lists no GPU (/bin/false stands for a host without NVIDIA's driver).
        (["-e", "dcgm_exporter_backend=nvml", "-e", "dcgm_exporter_nvidia_smi=/bin/false"],
         "has no NVIDIA GPU that '/bin/false --query-gpu' lists"),
        (["-e", "dcgm_exporter_backend=dcgm", "-e", "dcgm_exporter_nvidia_smi=/bin/false"],
         "has no NVIDIA GPU that '/bin/false --query-gpu' lists"),
        (["-e", "dcgm_exporter_nvidia_smi=/bin/false"], "so no exporter can run there"),
        # The role has no simulation backend any more.
        (["-e", "dcgm_exporter_backend=sim"], "dcgm_exporter_backend must be one of: auto, dcgm, nvml, got: sim"),
    ],
    ids=["public-address", "nvml-without-gpu", "dcgm-without-gpu", "auto-without-gpu", "no-sim-backend"],
)
def test_preflight_stops_with_an_actionable_message(pods, args, message):
    result = pods.dep.playbook("exporter.yml", "--tags", "dcgm_exporter_preflight", *args, check=False)
    assert result.returncode != 0
    assert " ".join(message.split()) in " ".join(result.stdout.split()), result.stdout[-3000:]


def test_converge(pods):
    result = pods.playbook("exporter", "exporter.yml")
    counts = recap(result.stdout)
    # localhost: the control host downloads nvidia-ml-py for the nvml backend.
    assert set(counts) - {"localhost"} == {f"{PREFIX}-0", f"{PREFIX}-1"}
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values())
    said = " ".join(result.stdout.split())
    assert f"(auto, {GPUS_PER_POD} GPU(s) from nvidia-smi" in said, said[-3000:]
    # The RunPod image stand-in has a (empty) CUDA source: auto tries DCGM there, then falls back to nvml.
    assert "backend nvml (auto" in said or "backend auto continues with nvml" in said, said[-3000:]


def test_a_cached_wheel_with_another_hash_reaches_no_pod(pods):
    """The nvml backend's wheel (in the control host's cache since test_converge) must have the pinned sha256."""
    other = "0" * 64
    result = pods.dep.playbook("exporter.yml", "-e", "dcgm_exporter_backend=nvml",
                               "-e", f"dcgm_exporter_nvml_sha256={other}", check=False)
    said = " ".join(result.stdout.split())
    assert result.returncode != 0, said[-3000:]
    assert f"not the pinned {other} (dcgm_exporter_nvml_sha256): no host gets it" in said, said[-3000:]
    counts = recap(result.stdout)
    assert all(c["changed"] == 0 for c in counts.values()), counts


def test_every_standin_gpu_has_dcgm_exporters_metrics_and_labels(pods):
    for pod in (pods.first, pods.second):
        text = pods.metrics(pod)
        util = parse(text, "DCGM_FI_DEV_GPU_UTIL")
        assert sorted(labels["gpu"] for labels, _ in util) == [str(i) for i in range(GPUS_PER_POD)], text[-2000:]
        for labels, value in util:
            assert tuple(labels) == LABELS, labels
            assert labels["Hostname"] == pods.pod_id(pod)
            assert labels["modelName"] == "NVIDIA GeForce RTX 4090"
            assert labels["device"] == f"nvidia{labels['gpu']}"
            assert value == 0
        assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter" in text
        assert 'gpuops_gpu_exporter_info{source="nvml"' in text
        assert len(parse(text, "DCGM_FI_DEV_FB_USED")) == GPUS_PER_POD


def test_nothing_listens_on_9400_but_loopback(pods):
    for pod in (pods.first, pods.second):
        listeners = [line.split()[3] for line in pods.on(pod, "ss -Hltn").stdout.splitlines()
                     if line.split()[3].endswith(":9400")]
        assert listeners == ["127.0.0.1:9400"], listeners
    # And the other pod cannot reach it.
    addr = pods.on(pods.first, "hostname -i").stdout.split()[0]
    assert pods.on(pods.second, f"curl -s --max-time 3 http://{addr}:9400/metrics", check=False).returncode != 0


def test_a_job_labels_its_gpu_and_makes_it_busy(pods):
    pod = node = pods.first
    job_id = pods.sbatch_sleep(pod, "gpuload")
    try:
        wait_for("the job to run", lambda: pods.slurm(
            "squeue", "--noheader", f"--jobs={job_id}", "--states=RUNNING", "--format=%i").stdout.strip(),
            timeout=60)

        def job_series():
            util = parse(pods.metrics(pod), "DCGM_FI_DEV_GPU_UTIL")
            return [(labels, value) for labels, value in util if labels.get("hpc_job") == job_id]

        # The prolog maps the job when it is allocated; the stand-in GPU gets busy once the job's task runs.
        busy = wait_for(f"hpc_job=\"{job_id}\" on a busy GPU of {node}",
                        lambda: [(lab, val) for lab, val in job_series() if val >= 85], timeout=30)
        assert len(busy) == 1
        labels, util = busy[0]
        assert tuple(labels) == (*LABELS, "hpc_job")
        text = pods.metrics(pod)
        used = {labels["gpu"]: (labels.get("hpc_job"), value) for labels, value in parse(text, "DCGM_FI_DEV_FB_USED")}
        assert used[labels["gpu"]][0] == job_id and used[labels["gpu"]][1] > 1000
        # The other GPU of the pod is idle and unlabelled.
        others = [(lab, val) for lab, val in parse(text, "DCGM_FI_DEV_GPU_UTIL") if lab["gpu"] != labels["gpu"]]
        assert others and all("hpc_job" not in lab and val == 0 for lab, val in others)
    finally:
        pods.slurm("scancel", job_id, check=False)
    wait_for("the hpc_job label to go", lambda: "hpc_job" not in pods.metrics(pod), timeout=30)
    wait_for("every GPU idle again", lambda: all(
        value == 0 for _, value in parse(pods.metrics(pod), "DCGM_FI_DEV_GPU_UTIL")), timeout=15)
    # The prolog and epilog left the node in service.
    wait_for("the node to be idle", lambda: pods.slurm(
        "sinfo", "--noheader", "--Node", f"--nodes={node}", "--format=%T").stdout.strip() == "idle", timeout=30)


def test_a_job_on_each_node_is_mapped_on_its_pod(pods):
    """Pods are isolated (no multi-node job): one single-node job per node, each mapped on its own pod only."""
    jobs = {}
    try:
        for pod in (pods.first, pods.second):
            jobs[pod] = pods.sbatch_sleep(pod, "gpumap")
        for pod, job_id in jobs.items():
            wait_for(f"hpc_job=\"{job_id}\" on {pod}",
                     lambda pod=pod, job_id=job_id: f'hpc_job="{job_id}"' in pods.metrics(pod), timeout=45)
        # Each job is on its own node, and only there.
        for pod, job_id in jobs.items():
            assert pods.slurm("squeue", "--noheader", f"--jobs={job_id}", "--format=%N").stdout.strip() == pod
            other = pods.second if pod == pods.first else pods.first
            assert f'hpc_job="{job_id}"' not in pods.metrics(other)
    finally:
        if jobs:
            pods.slurm("scancel", *jobs.values(), check=False)
    for pod in (pods.first, pods.second):
        wait_for(f"no hpc_job on {pod}", lambda pod=pod: "hpc_job" not in pods.metrics(pod), timeout=30)


def test_supervisor_restarts_a_killed_exporter(pods):
    pod = pods.second
    before = pods.exporter_pid(pod)
    assert before > 0
    pods.on(pod, f"kill -9 {before}")
    wait_for("gpu-exporter to be restarted",
             lambda: pods.exporter_pid(pod) not in (0, before)
             and "RUNNING" in pods.on(pod, "/usr/local/sbin/gpuops-supervisorctl status gpu-exporter",
                                      check=False).stdout, timeout=60)
    wait_for("metrics again", lambda: parse(pods.metrics(pod), "DCGM_FI_DEV_GPU_UTIL"), timeout=30)


def test_second_run_changes_nothing(pods):
    result = pods.playbook("exporter-again", "exporter.yml")
    counts = recap(result.stdout)
    assert counts and all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts


def test_check_mode_on_the_converged_pods_changes_nothing(pods):
    result = pods.playbook("exporter-check", "exporter.yml", "--check", "--diff")
    counts = recap(result.stdout)
    assert counts and all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts


def test_dcgm_backend_renders_in_check_mode(pods):
    """A pod that looks like a GPU pod with NVIDIA's repository reachable: auto picks dcgm."""
    pod = pods.second
    # The image stand-in has a CUDA source of its own (as RunPod's images do), which the role would reuse: set it
    # aside, so that the role looks for NVIDIA's repository at the fake one below.
    pods.on(pod, "mkdir -p /tmp/cuda-sources && mv /etc/apt/sources.list.d/cuda-*.list /tmp/cuda-sources/ || true")
    # NVIDIA's directory for the pod's Debian (12 or 13).
    pods.on(pod, "for d in debian12 debian13; do mkdir -p /tmp/fakerepo/$d/x86_64 && "
                 "echo fake > /tmp/fakerepo/$d/x86_64/InRelease && echo fake-key > /tmp/fakerepo/$d/x86_64/3bf863cc.pub; "
                 "done && "
                 "printf '#!/bin/sh\\necho \"0, 3, NVIDIA H100 80GB HBM3\"\\n' > /tmp/fake-nvidia-smi && "
                 "chmod +x /tmp/fake-nvidia-smi")
    pods.on(pod, "cd /tmp/fakerepo && nohup python3 -m http.server 18089 --bind 127.0.0.1 "
                 ">/tmp/fakerepo.log 2>&1 & echo $! > /tmp/fakerepo.pid")
    try:
        wait_for("the fake repository", lambda: pods.on(
            pod, "python3 -c \"import urllib.request; "
                 "urllib.request.urlopen('http://127.0.0.1:18089/debian12/x86_64/InRelease', timeout=2)\"",
            check=False).returncode == 0, timeout=20)
        result = pods.playbook(
            "dcgm-check", "exporter.yml", "--check", "--diff", "--limit", f"{PREFIX}-1",
            "-e", "dcgm_exporter_nvidia_smi=/tmp/fake-nvidia-smi",
            "-e", "dcgm_exporter_cuda_repo_base_url=http://127.0.0.1:18089")
    finally:
        pods.on(pod, "kill $(cat /tmp/fakerepo.pid); rm -rf /tmp/fakerepo /tmp/fake-nvidia-smi; "
                     "mv /tmp/cuda-sources/* /etc/apt/sources.list.d/ 2>/dev/null; true", check=False)
    out = result.stdout
    assert "backend dcgm (auto, 1 GPU(s) from nvidia-smi, CUDA repository reachable)" in out
    assert recap(out)[f"{PREFIX}-1"]["failed"] == 0
    # What a real run would write: nv-hostengine and dcgm-exporter on loopback, the counters
    # without profiling rows (not collectable here), and a GPU number map for the prolog.
    assert "command=/usr/bin/nv-hostengine -n -b 127.0.0.1 -p 5555" in out
    assert re.search(r"command=/usr/bin/dcgm-exporter -a 127\.0\.0\.1:9400 -f \S+dcgm-counters\.csv -c \d+ "
                     r"--hpc-job-mapping-dir /run/gpuops/hpc-job-mapping -r 127\.0\.0\.1:5555", out)
    assert "+DCGM_FI_DEV_GPU_UTIL, gauge, GPU utilization (in %)." in out
    assert "+DCGM_FI_PROF_" not in out
    assert "+3 0" in out
    # Check mode left the nvml exporter as it was.
    assert pods.exporter_pid(pod) > 0
    assert pods.on(pod, "test -e /etc/supervisor/conf.d/gpuops-dcgm-exporter.conf", check=False).returncode != 0


# --- the pod images' stand-in NVIDIA layer, without the local cloud ----------------------------

EXPORTER = REPO / "collections/ansible_collections/gpuops/platform/roles/dcgm_exporter/files/gpuops_gpu_exporter.py"
# What the local cloud injects: a model the stand-in has no table entry for, so its memory comes from the file.
INJECTED = {"simulated": True, "podId": "standintest", "gpuTypeId": "NVIDIA B200", "count": 3, "memoryInGb": 180}


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


@pytest.mark.parametrize("image", ["gpuops/pod:bookworm", "gpuops/runpod-pytorch-standin:latest"])
def test_exporter_nvml_backend_on_the_pod_image_standin(image, tmp_path):
    """The exporter's nvml backend (real nvidia-ml-py) on the image's stand-in libnvidia-ml.so.1, as the
    role's unprivileged exporter account: the metrics are those of the GPUs the injected file describes."""
    import pynvml  # the .venv's nvidia-ml-py, the version the role installs (tests/unit checks the pin)

    if _docker("image", "inspect", image, check=False).returncode != 0:
        pytest.fail(f"{image} is missing: build it with scripts/setup.sh images standin")
    name = f"gpuops-nvstandin-{uuid.uuid4().hex[:8]}"
    injected = tmp_path / "etc/gpuops-localcloud/simulated-gpus.json"
    injected.parent.mkdir(parents=True)
    injected.write_text(json.dumps(INJECTED))
    _docker("create", "--name", name, "--init", image)
    try:
        # As the local cloud does: the file goes in between create and start.
        _docker("cp", str(tmp_path / "etc"), f"{name}:/")
        _docker("start", name)
        for path in (EXPORTER, Path(pynvml.__file__)):
            _docker("cp", str(path), f"{name}:/tmp/{path.name}")

        def sh(command: str, user: str = "root", check: bool = True) -> str:
            return _docker("exec", "-u", user, name, "sh", "-c", command, check=check).stdout

        assert wait_for("the stand-in driver's state", lambda: sh(
            "test -s /run/gpuops-nvidia-standin/state && echo ok", check=False).strip() == "ok", timeout=30)
        assert sh("ls /dev/nvidia0 /dev/nvidia1 /dev/nvidia2 /dev/nvidiactl").split() == [
            "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2", "/dev/nvidiactl"]
        # What the slurm and dcgm_exporter roles ask nvidia-smi.
        assert sh("nvidia-smi --query-gpu=index,minor_number,name --format=csv,noheader").splitlines() == [
            f"{i}, {i}, NVIDIA B200" for i in range(3)]

        def scrape() -> str:
            return sh("PYTHONPATH=/tmp python3 /tmp/gpuops_gpu_exporter.py print --hostname standin-test",
                      user="nobody")

        text = scrape()
        assert 'gpuops_gpu_exporter_info{source="nvml"' in text
        util = parse(text, "DCGM_FI_DEV_GPU_UTIL")
        assert sorted(labels["gpu"] for labels, _ in util) == ["0", "1", "2"], text[-2000:]
        for labels, value in util:
            assert tuple(labels) == LABELS and labels["modelName"] == "NVIDIA B200"
            assert re.fullmatch(r"GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", labels["UUID"])
            assert labels["DCGM_FI_DRIVER_VERSION"] and value == 0
        # Memory total (free + used + reserved, MiB) is the injected memoryInGb.
        memory = {name: {lab["gpu"]: val for lab, val in parse(text, name)}
                  for name in ("DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED")}
        for gpu in ("0", "1", "2"):
            assert sum(memory[name][gpu] for name in memory) == 180 * 1024
        assert sh("nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 1").strip() == "184320"
        # NVML's units, turned into dcgm-exporter's: W from mW, a data-centre GPU's HBM temperature.
        for _labels, watts in parse(text, "DCGM_FI_DEV_POWER_USAGE"):
            assert 10 < watts < 1000
        assert len(parse(text, "DCGM_FI_DEV_MEMORY_TEMP")) == 3
        assert len(parse(text, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS")) == 3
        energy = {lab["gpu"]: val for lab, val in parse(text, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")}

        # A process of a Slurm job given GPU 2 makes it busy; the others stay idle. Jobs run as an
        # unprivileged job account (gpuops), not as the root the stand-in driver runs as.
        _docker("exec", "-d", "-u", "nobody", name, "env", "SLURM_JOB_ID=4242", "SLURM_STEP_GPUS=2", "sleep", "60")

        def busy():
            now = scrape()
            return now if {lab["gpu"]: val for lab, val in parse(now, "DCGM_FI_DEV_GPU_UTIL")}["2"] >= 85 else None

        text = wait_for("GPU 2 to get busy", busy, timeout=20)
        util = {lab["gpu"]: val for lab, val in parse(text, "DCGM_FI_DEV_GPU_UTIL")}
        assert util["0"] == 0 and util["1"] == 0
        used = {lab["gpu"]: val for lab, val in parse(text, "DCGM_FI_DEV_FB_USED")}
        assert used["2"] > 0.5 * 180 * 1024 and used["0"] <= 1
        later = {lab["gpu"]: val for lab, val in parse(text, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")}
        assert all(later[gpu] > energy[gpu] for gpu in energy)
    finally:
        _docker("rm", "-f", name, check=False)
