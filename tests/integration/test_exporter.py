"""End to end: the gpuops.platform.dcgm_exporter role on 2 local-cloud pods.

playbooks/slurm.yml then playbooks/exporter.yml on pods with 2 simulated GPUs
each (backend auto picks sim there): dcgm-exporter's metrics on
127.0.0.1:9400 only, hpc_job labels that follow Slurm jobs, supervision, and
idempotence. The dcgm backend cannot run here (no GPU, no NVIDIA repository):
it is rendered in check mode against a fake nvidia-smi and a fake repository.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.helpers import Deployment, docker_available, recap, wait_for

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


class Pods:
    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment
        pods = deployment.pods()
        self.controller = pods[f"{PREFIX}-0"]["id"]
        self.compute = pods[f"{PREFIX}-1"]["id"]
        self.timings: dict[str, float] = {}

    def on(self, pod_id: str, command: str, check: bool = True):
        return self.dep.pod_exec(pod_id, command, check=check)

    def metrics(self, pod_id: str) -> str:
        return self.on(pod_id, "curl -sf http://127.0.0.1:9400/metrics", check=False).stdout

    def playbook(self, label: str, name: str, *args: str, check: bool = True):
        started = time.monotonic()
        result = self.dep.playbook(name, *args, check=check)
        self.timings[label] = time.monotonic() - started
        return result

    def exporter_pid(self, pod_id: str) -> int:
        out = self.on(pod_id, "/usr/local/sbin/gpuops-supervisorctl pid gpu-exporter", check=False).stdout.strip()
        return int(out) if out.isdigit() else 0


@pytest.fixture(scope="module")
def pods(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("exporter"), prefix=PREFIX)
    try:
        started = time.monotonic()
        dep.playbook("provision.yml", "-e", f"provision_gpu_count={GPUS_PER_POD}")
        dep.seen_ids.update(pod["id"] for pod in dep.pods().values())
        result = Pods(dep)
        result.timings["provision"] = time.monotonic() - started
        result.playbook("slurm", "slurm.yml")
        yield result
        print("\ntimings (s): " + ", ".join(f"{k}={v:.0f}" for k, v in result.timings.items()))
    finally:
        # Never leave pods behind, whatever failed.
        if dep.api_key_file.exists():
            dep.playbook("teardown.yml", check=False)
        dep.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "dcgm_exporter_listen_address=0.0.0.0"], "listens on a loopback address only"),
        (["-e", "dcgm_exporter_backend=nvml"], "has no NVIDIA GPU that 'nvidia-smi --query-gpu' lists"),
        (["-e", "dcgm_exporter_backend=dcgm"], "has no NVIDIA GPU that 'nvidia-smi --query-gpu' lists"),
        # A pod without the file the local cloud injects is a real pod.
        (["-e", "dcgm_exporter_backend=sim", "-e", "dcgm_exporter_sim_file=/nonexistent/simulated-gpus.json"],
         "Simulated GPU metrics are only for the local cloud"),
        (["-e", "dcgm_exporter_sim_file=/nonexistent/simulated-gpus.json"], "not a local-cloud pod either, so no simulation"),
    ],
    ids=["public-address", "nvml-without-gpu", "dcgm-without-gpu", "sim-off-the-local-cloud", "auto-without-gpu"],
)
def test_preflight_stops_with_an_actionable_message(pods, args, message):
    result = pods.dep.playbook("exporter.yml", "--tags", "preflight", *args, check=False)
    assert result.returncode != 0
    assert " ".join(message.split()) in " ".join(result.stdout.split()), result.stdout[-3000:]


def test_converge(pods):
    result = pods.playbook("exporter", "exporter.yml")
    counts = recap(result.stdout)
    assert set(counts) == {f"{PREFIX}-0", f"{PREFIX}-1"}
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values())
    assert "backend sim (auto" in result.stdout


def test_every_simulated_gpu_has_dcgm_exporters_metrics_and_labels(pods):
    for pod in (pods.controller, pods.compute):
        text = pods.metrics(pod)
        util = parse(text, "DCGM_FI_DEV_GPU_UTIL")
        assert sorted(labels["gpu"] for labels, _ in util) == [str(i) for i in range(GPUS_PER_POD)], text[-2000:]
        for labels, value in util:
            assert tuple(labels) == LABELS, labels
            assert labels["Hostname"] == pod
            assert labels["modelName"] == "NVIDIA GeForce RTX 4090"
            assert labels["device"] == f"nvidia{labels['gpu']}"
            assert value == 0
        assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter" in text
        assert len(parse(text, "DCGM_FI_DEV_FB_USED")) == GPUS_PER_POD


def test_nothing_listens_on_9400_but_loopback(pods):
    for pod in (pods.controller, pods.compute):
        listeners = [line.split()[3] for line in pods.on(pod, "ss -Hltn").stdout.splitlines()
                     if line.split()[3].endswith(":9400")]
        assert listeners == ["127.0.0.1:9400"], listeners
    # And the other pod cannot reach it.
    addr = pods.on(pods.controller, "hostname -i").stdout.split()[0]
    assert pods.on(pods.compute, f"curl -s --max-time 3 http://{addr}:9400/metrics", check=False).returncode != 0


def test_a_job_labels_its_gpu_and_makes_it_busy(pods):
    node = pods.controller
    pods.on(node, f"nohup srun -w {node} --gpus=1 --time=2 --job-name=gpuload sleep 60 >/dev/null 2>&1 &")
    job_id = wait_for("the job to run", lambda: pods.on(
        node, "squeue --noheader --name=gpuload --states=RUNNING --format=%i").stdout.strip(), timeout=60)

    def job_series():
        util = parse(pods.metrics(node), "DCGM_FI_DEV_GPU_UTIL")
        return [(labels, value) for labels, value in util if labels.get("hpc_job") == job_id]

    busy = wait_for(f"hpc_job=\"{job_id}\" on {node}", job_series, timeout=30)
    assert len(busy) == 1
    labels, util = busy[0]
    assert util >= 85
    assert tuple(labels) == (*LABELS, "hpc_job")
    text = pods.metrics(node)
    used = {labels["gpu"]: (labels.get("hpc_job"), value) for labels, value in parse(text, "DCGM_FI_DEV_FB_USED")}
    assert used[labels["gpu"]][0] == job_id and used[labels["gpu"]][1] > 1000
    # The other GPU of the pod is idle and unlabelled.
    others = [(lab, val) for lab, val in parse(text, "DCGM_FI_DEV_GPU_UTIL") if lab["gpu"] != labels["gpu"]]
    assert others and all("hpc_job" not in lab and val == 0 for lab, val in others)

    pods.on(node, f"scancel {job_id}")
    wait_for("the hpc_job label to go", lambda: "hpc_job" not in pods.metrics(node), timeout=30)
    util = parse(pods.metrics(node), "DCGM_FI_DEV_GPU_UTIL")
    assert all(value == 0 for _, value in util)
    # The prolog and epilog left the node in service.
    wait_for("the node to be idle", lambda: pods.on(
        node, f"sinfo --noheader --Node --nodes={node} --format=%T").stdout.strip() == "idle", timeout=30)


def test_batch_job_on_both_nodes_is_mapped_on_each(pods):
    script = "#!/bin/sh\\nsleep 60\\n"
    job_id = pods.on(pods.controller, f"printf '{script}' > /tmp/gpuload.sh && "
                     "sbatch --parsable -N2 --gpus-per-node=1 --time=2 -o /dev/null /tmp/gpuload.sh").stdout.strip()
    try:
        for pod in (pods.controller, pods.compute):
            wait_for(f"hpc_job=\"{job_id}\" on {pod}",
                     lambda pod=pod: f'hpc_job="{job_id}"' in pods.metrics(pod), timeout=45)
    finally:
        pods.on(pods.controller, f"scancel {job_id}", check=False)
    for pod in (pods.controller, pods.compute):
        wait_for(f"no hpc_job on {pod}", lambda pod=pod: "hpc_job" not in pods.metrics(pod), timeout=30)


def test_supervisor_restarts_a_killed_exporter(pods):
    pod = pods.compute
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
    pod = pods.compute
    # The image stand-in has a CUDA source of its own (as RunPod's images do), which the role would reuse: set it
    # aside, so that the role looks for NVIDIA's repository at the fake one below.
    pods.on(pod, "mkdir -p /tmp/cuda-sources && mv /etc/apt/sources.list.d/cuda-*.list /tmp/cuda-sources/ || true")
    pods.on(pod, "mkdir -p /tmp/fakerepo/debian12/x86_64 && cd /tmp/fakerepo/debian12/x86_64 && "
                 "echo fake > InRelease && echo fake-key > 3bf863cc.pub && "
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
    # Check mode left the simulated exporter as it was.
    assert pods.exporter_pid(pod) > 0
    assert pods.on(pod, "test -e /etc/supervisor/conf.d/gpuops-dcgm-exporter.conf", check=False).returncode != 0
