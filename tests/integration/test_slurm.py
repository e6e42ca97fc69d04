"""End to end: the gpuops.platform.slurm role on 2 local-cloud pods.

Real pods (Docker containers without systemd, unprivileged), real Debian
packages, real SSH through the inventory plugin. The deployment is isolated
(own state dir, API port, name prefix), so a developer's own deployment in
.gpuops/ is never touched, and it is torn down whatever fails.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import time

import pytest

from tests.integration import helpers
from tests.integration.helpers import Deployment, docker_available, recap

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopsslurm"
STANDIN_IMAGE = "gpuops/runpod-pytorch-standin:latest"
# A short SlurmdTimeout (test only) so that an interrupted pod shows DOWN quickly.
CONVERGE = ("-e", "slurm_slurmd_timeout=15")


# The Slurm tests poll less often and wait longer by default.
wait_for = functools.partial(helpers.wait_for, timeout=90, interval=2)


class Cluster:
    """The test deployment plus what the Slurm tests need to know about it."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment
        pods = deployment.pods()
        self.controller = pods[f"{PREFIX}-0"]["id"]
        self.compute = pods[f"{PREFIX}-1"]["id"]
        self.timings: dict[str, float] = {}

    def on(self, pod_id: str, command: str, check: bool = True):
        return self.dep.pod_exec(pod_id, command, check=check)

    def ctl(self, command: str, check: bool = True):
        return self.on(self.controller, command, check=check)

    def node_states(self) -> dict[str, str]:
        out = self.ctl("sinfo --noheader --Node --format '%N %T'", check=False).stdout
        return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)

    def converge(self, label: str, *args: str, check: bool = True):
        """Run playbooks/slurm.yml; remember how long it took under `label`."""
        started = time.monotonic()
        result = self.dep.playbook("slurm.yml", *CONVERGE, *args, check=check)
        self.timings[label] = time.monotonic() - started
        return result

    def supervised_pid(self, pod_id: str, program: str) -> int:
        out = self.on(pod_id, f"/usr/local/sbin/gpuops-supervisorctl pid {program}", check=False).stdout.strip()
        return int(out) if out.isdigit() else 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("slurm"), prefix=PREFIX)
    try:
        started = time.monotonic()
        dep.playbook("provision.yml")
        provisioned = time.monotonic() - started
        dep.seen_ids.update(pod["id"] for pod in dep.pods().values())
        result = Cluster(dep)
        result.timings["provision"] = provisioned
        yield result
        print("\ntimings (s): " + ", ".join(f"{k}={v:.0f}" for k, v in result.timings.items()))
    finally:
        # Never leave pods behind, whatever failed.
        if dep.api_key_file.exists():
            dep.playbook("teardown.yml", check=False)
        dep.stop()


def test_check_mode_on_fresh_pods_fails_nothing(cluster):
    result = cluster.converge("check-fresh", "--check", "--diff")
    assert all(counts["failed"] == 0 for counts in recap(result.stdout).values()), result.stdout[-3000:]
    assert "the Slurm packages are not installed" in result.stdout
    # The image ships slurmctld and slurmd (as RunPod's does), not slurmrestd: check mode installed
    # nothing, wrote no configuration and started nothing.
    assert cluster.ctl("command -v slurmrestd", check=False).returncode != 0
    assert cluster.ctl("test -e /etc/slurm/slurm.conf", check=False).returncode != 0
    assert cluster.ctl("pgrep -x 'slurmctld|slurmd|munged'", check=False).returncode != 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", '{"slurm_controller_group": "no_such_group"}'], "no host in the group 'no_such_group'"),
        (["-e", '{"slurm_controller_group": "slurm_compute"}'], "has 2 hosts"),
        (["--limit", f"{PREFIX}-0"], f"No facts or no private address for {PREFIX}-1"),
        (["-e", '{"ansible_distribution_major_version": "11"}'], "which this role has no Slurm package list for"),
    ],
    ids=["no-controller", "two-controllers", "compute-host-without-facts", "unsupported-os"],
)
def test_preflight_stops_with_an_actionable_message(cluster, args, message):
    result = cluster.dep.playbook("slurm.yml", *args, check=False)
    assert result.returncode != 0
    assert " ".join(message.split()) in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert "Install Slurm" not in result.stdout


def test_converge(cluster):
    result = cluster.converge("converge")
    counts = recap(result.stdout)
    # localhost: the cluster's munge key is made and read on the control host.
    assert set(counts) == {f"{PREFIX}-0", f"{PREFIX}-1", "localhost"}
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values())


def test_second_run_changes_nothing(cluster):
    result = cluster.converge("second-run")
    counts = recap(result.stdout)
    assert counts and all(c["changed"] == 0 for c in counts.values()), counts


def test_check_mode_on_the_converged_cluster_changes_nothing(cluster):
    result = cluster.converge("check-converged", "--check", "--diff")
    counts = recap(result.stdout)
    assert counts and all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts


def test_secrets_never_appear_in_the_output(cluster):
    munge_key = cluster.ctl("base64 -w0 /etc/munge/munge.key").stdout.strip()
    jwt_key = cluster.ctl("base64 -w0 /var/spool/slurm/jwt_hs256.key").stdout.strip()
    result = cluster.converge("diff-verbose", "--diff", "-v")
    assert munge_key and munge_key not in result.stdout + result.stderr
    assert jwt_key and jwt_key not in result.stdout + result.stderr


def test_munge_key_is_the_deployments_everywhere_and_private(cluster):
    """The key comes from the control host's state (0600), not the one baked into the pod image."""
    local = cluster.dep.state_dir / "local" / "slurm" / "munge.key"
    assert oct(local.stat().st_mode & 0o777) == "0o600"
    assert oct(local.parent.stat().st_mode & 0o777) == "0o700"
    expected = hashlib.sha256(local.read_bytes()).hexdigest()
    sums = {pod: cluster.on(pod, "sha256sum /etc/munge/munge.key").stdout.split()[0]
            for pod in (cluster.controller, cluster.compute)}
    assert set(sums.values()) == {expected}
    baked = subprocess.run(["docker", "run", "--rm", "--entrypoint", "sha256sum", STANDIN_IMAGE, "/etc/munge/munge.key"],
                           capture_output=True, text=True, check=True, timeout=120).stdout.split()[0]
    assert baked != expected
    assert cluster.on(cluster.compute, "stat -c '%U %a' /etc/munge/munge.key").stdout.split() == ["munge", "400"]
    # A credential made on the compute pod decodes on the controller.
    credential = cluster.on(cluster.compute, "munge -n").stdout.strip()
    assert "STATUS:          Success" in cluster.ctl(f"printf '%s' '{credential}' | unmunge").stdout

def test_sinfo_shows_both_nodes_idle(cluster):
    states = cluster.node_states()
    assert states == {cluster.controller: "idle", cluster.compute: "idle"}


def test_slurm_conf_comes_from_the_inventory(cluster):
    conf = cluster.ctl("cat /etc/slurm/slurm.conf").stdout
    # The nodes' addresses are their global-networking ones: the only network between RunPod's pods.
    global_ips = {pod["id"]: pod["globalNetworking"]["ip"] for pod in cluster.dep.pods().values()}
    assert f"SlurmctldHost={cluster.controller}({global_ips[cluster.controller]})" in conf
    for pod in (cluster.controller, cluster.compute):
        assert global_ips[pod] in cluster.on(pod, "hostname -I").stdout.split()
        assert f"NodeName={pod} NodeAddr={global_ips[pod]} CPUs=" in conf
    assert "Gres=gpu:1" in conf and "ProctrackType=proctrack/linuxproc" in conf and "TaskPlugin=task/none" in conf
    assert cluster.on(cluster.compute, "cat /etc/slurm/slurm.conf").stdout == conf


def test_srun_on_two_nodes_prints_both_hostnames(cluster):
    out = cluster.ctl("srun -N2 --time=1 hostname").stdout.split()
    assert sorted(out) == sorted([cluster.controller, cluster.compute])


def test_gpu_job_sees_cuda_visible_devices(cluster):
    gres = cluster.ctl("cat /etc/slurm/gres.conf").stdout
    # The pod image's stand-in NVIDIA layer: /dev/nvidia0 (char 195:0) from nvidia-smi, as on a real pod.
    assert "AutoDetect=off" in gres and "File=/dev/nvidia0 Flags=nvidia_gpu_env" in gres and "sim" not in gres.lower()
    assert cluster.ctl("stat -c '%F %t:%T' /dev/nvidia0").stdout.strip() == "character special file c3:0"
    out = cluster.ctl("srun --gpus=1 --time=1 sh -c 'echo $CUDA_VISIBLE_DEVICES'").stdout.strip()
    assert out == "0"
    out = cluster.ctl("srun -N2 --gres=gpu:1 --time=1 sh -c 'echo $(hostname) $CUDA_VISIBLE_DEVICES'").stdout
    assert sorted(out.splitlines()) == sorted([f"{cluster.controller} 0", f"{cluster.compute} 0"])
    # A job without a GPU gets none, and more GPUs than a node has are refused.
    out = cluster.ctl("srun --time=1 sh -c 'echo ${CUDA_VISIBLE_DEVICES:-none}'").stdout.strip()
    assert out == "none"
    refused = cluster.ctl("srun --gres=gpu:2 --time=1 true", check=False)
    assert refused.returncode != 0


def test_finished_jobs_keep_state_and_exit_code(cluster):
    cluster.ctl("srun --time=1 sh -c 'exit 3'", check=False)
    job_id = cluster.ctl("squeue --noheader --states=all --format '%i %T' | sort -n | tail -1").stdout.split()
    assert job_id and job_id[1] == "FAILED"
    shown = cluster.ctl(f"scontrol show job {job_id[0]}").stdout
    assert "ExitCode=3:0" in shown
    log = cluster.ctl("cat /var/log/slurm/jobcomp.log").stdout
    assert f"JobId={job_id[0]} " in log and "JobState=FAILED" in log


def test_slurmrestd_answers_on_loopback_with_a_token(cluster):
    token = cluster.ctl("scontrol token username=root lifespan=120").stdout.strip().split("=", 1)[1]
    # The stand-in's Slurm is 24.11: the role picks its newest data parser, v0.0.42, found by asking
    # slurmrestd itself (no version is fixed in advance).
    assert cluster.ctl("dpkg-query -W -f '${Version}' slurmrestd").stdout.startswith("24.11.")
    url = "http://127.0.0.1:6820/slurm/v0.0.42/diag"
    body = cluster.ctl(
        f"curl -sf -H 'X-SLURM-USER-NAME: root' -H 'X-SLURM-USER-TOKEN: {token}' {url}"
    ).stdout
    diag = json.loads(body)
    assert diag["meta"]["slurm"]["release"].startswith("24.11")
    assert not diag["errors"]
    unauthenticated = cluster.ctl(f"curl -s -o /dev/null -w '%{{http_code}}' {url}", check=False).stdout
    assert unauthenticated == "401"
    # Nothing listens on 6820 except on loopback, and the other pod cannot reach it.
    listeners = [line.split()[3] for line in cluster.ctl("ss -Hltn").stdout.splitlines() if line.split()[3].endswith(":6820")]
    assert listeners == ["127.0.0.1:6820"]
    # The compute pod reaches the controller over global networking (slurmd does), and 6820 refuses it there.
    addr = next(p["globalNetworking"]["ip"] for p in cluster.dep.pods().values() if p["id"] == cluster.controller)
    reach = cluster.on(cluster.compute, f"python3 -c \"import socket; socket.create_connection(('{addr}', 6820), 3)\"",
                       check=False)
    assert reach.returncode == 1 and "Connection refused" in reach.stderr, reach.stderr
    # Not root, not SlurmUser; the signing key is private to SlurmUser.
    assert cluster.ctl("ps -o user= -C slurmrestd").stdout.split() == ["slurmrestd"]
    assert cluster.ctl("stat -c '%U %a' /var/spool/slurm/jwt_hs256.key").stdout.split() == ["slurm", "600"]


@pytest.mark.parametrize("program", ["slurmctld", "slurmd", "munged"])
def test_supervisor_restarts_a_killed_daemon(cluster, program):
    pod = cluster.compute if program == "slurmd" else cluster.controller
    before = cluster.supervised_pid(pod, program)
    assert before > 0
    cluster.on(pod, f"kill -9 {before}")
    wait_for(f"{program} to be restarted on {pod}",
             lambda: cluster.supervised_pid(pod, program) not in (0, before)
             and "RUNNING" in cluster.on(pod, f"/usr/local/sbin/gpuops-supervisorctl status {program}", check=False).stdout,
             timeout=60)
    wait_for("slurmctld to answer", lambda: "UP" in cluster.ctl("scontrol ping", check=False).stdout, timeout=60)
    wait_for("both nodes idle", lambda: set(cluster.node_states().values()) == {"idle"}, timeout=60)
    assert sorted(cluster.ctl("srun -N2 --time=1 hostname").stdout.split()) == sorted([cluster.controller, cluster.compute])


def test_interrupted_pod_goes_down_while_slurmctld_stays_up(cluster):
    slurmctld = cluster.supervised_pid(cluster.controller, "slurmctld")
    response = cluster.dep.api().post(
        f"http://127.0.0.1:{cluster.dep.port}/_localcloud/pods/{cluster.compute}/interrupt")
    assert response.status_code < 300, response.text
    state = wait_for(
        f"{cluster.compute} to be reported down or not responding",
        lambda: (lambda s: s if s.startswith("down") or s.endswith("*") else "")(
            cluster.node_states().get(cluster.compute, "")),
        timeout=90,
    )
    assert state
    assert "UP" in cluster.ctl("scontrol ping").stdout
    assert cluster.supervised_pid(cluster.controller, "slurmctld") == slurmctld
    assert cluster.node_states()[cluster.controller] == "idle"


def test_restarted_pod_returns_to_service_by_itself(cluster):
    response = cluster.dep.api().post(f"/pods/{cluster.compute}/action", json={"action": "start"})
    assert response.status_code < 300, response.text
    # Nothing starts supervisord in a restarted container: the role does.
    result = cluster.converge("after-pod-restart")
    assert all(c["failed"] == 0 for c in recap(result.stdout).values())
    # ReturnToService=2: no `scontrol update state=resume` needed.
    wait_for("both nodes idle again", lambda: set(cluster.node_states().values()) == {"idle"}, timeout=60)
    assert sorted(cluster.ctl("srun -N2 --time=1 hostname").stdout.split()) == sorted([cluster.controller, cluster.compute])
