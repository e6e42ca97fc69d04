"""Slurm's controller and accounting on the service plane, slurmd on pods reached only over SSH.

Everything is real: the gpuops.platform.slurm role (tasks_from: controller)
renders the files and the Compose services, community.docker's
docker_compose_v2 deploys them (munged, MariaDB, slurmdbd, slurmctld,
slurmrestd from gpuops/slurm-controller and gpuops/slurm-mariadb, Slurm
24.11) in a Compose project of its own, with temp directories and free
ports. Two stand-in pods (gpuops/runpod-pytorch-standin, slurmd 24.11) run
as plain containers, each on a Docker network of its own, publishing only
22/tcp on 127.0.0.1: the pods cannot reach each other nor the control host.
Each joins through one gpuops.platform.autossh_tunnel (autossh, ssh, the
pod's sshd): a forward 127.0.1.<i>:<slurmd port> -> the pod's slurmd, and a
reverse forward of the pod's 127.0.0.1:<slurmctld port> -> slurmctld.

Set GPUOPS_RECORD_FIXTURES=1 to (re)write slurmrestd's accounting answers
under tests/fixtures/api/slurmdb/.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.helpers import (REPO, VENV_BIN, changed_tasks, docker_available, free_port, recap, run,
                                       slurm_node_states, wait_for)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

CONTROLLER_IMAGE = "gpuops/slurm-controller:trixie"
MARIADB_IMAGE = "gpuops/slurm-mariadb:trixie"
POD_IMAGE = "gpuops/runpod-pytorch-standin:latest"
JOB_USER, JOB_UID = "gpuops", 2000
SLURMD_TIMEOUT = 10
NODES = ("n1", "n2")
# What each node's GPUs cost (USD per GPU-hour): every job's record keeps its node's.
PRICES = {"n1": 0.69, "n2": 1.25}
FIXTURES = REPO / "tests" / "fixtures" / "api" / "slurmdb"

DEPLOY = """
- name: The Slurm controller's stack on this machine
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Render the controller's files and services
      ansible.builtin.include_role:
        name: gpuops.platform.slurm
        tasks_from: controller
    - name: Write the Compose file
      ansible.builtin.copy:
        dest: "{{ stack }}/compose.yaml"
        mode: "0644"
        content: >-
          {{ {'name': project, 'services': slurm_controller_compose_services,
              'volumes': slurm_controller_compose_volumes} | to_nice_yaml(indent=2, sort_keys=false) }}
    - name: Deploy the project
      community.docker.docker_compose_v2:
        project_src: "{{ stack }}"
        project_name: "{{ project }}"
        state: "{{ compose_state }}"
        wait: "{{ compose_state == 'present' }}"
        wait_timeout: 300
"""

# The pod side, as the product does it: the slurm role (its main entry point) over
# SSH (the version check, the job account, the node's name for the pod's own
# address, the cluster's files, munged and slurmd under supervisord).
NODES_PLAY = """
- name: The pods as nodes of the service plane's controller
  hosts: pods
  gather_facts: false
  tasks:
    - name: Join the cluster
      ansible.builtin.include_role:
        name: gpuops.platform.slurm
"""


def sh(cmd: list[str], check: bool = True, timeout: int = 120, input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, input=input)
    if check and result.returncode != 0:
        raise AssertionError("%s exited %d\n%s\n%s" % (" ".join(cmd), result.returncode, result.stdout[-4000:],
                                                       result.stderr[-4000:]))
    return result


def images_present() -> bool:
    return all(sh(["docker", "image", "inspect", image], check=False).returncode == 0
               for image in (CONTROLLER_IMAGE, MARIADB_IMAGE, POD_IMAGE))


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 and on the nodes' 127.0.1.<i>."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and all(_bindable("127.0.1.%d" % (i + 1), port) for i in range(len(NODES))):
            ports.append(port)
    return ports


def _bindable(address: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((address, port))
            return True
        except OSError:
            return False


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tag = "gpuopsctl%s" % secrets.token_hex(3)
        self.project = self.tag
        self.stack = root / "stack"
        self.stack.mkdir()
        (root / "keys").mkdir(mode=0o700)
        (root / "tunnels").mkdir(mode=0o700)
        self.ctld_port, self.slurmd_port, self.dbd_port, self.restd_port = free_ports(4)
        self.ssh_key = root / "keys" / "id_ed25519"
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.ssh_key)])
        self.known_hosts = root / "keys" / "known_hosts"
        self.pods: dict[str, dict] = {}
        self.vars = {
            "stack": str(self.stack),
            "project": self.project,
            "slurm_controller_stack_dir": str(self.stack),
            "slurm_munge_key_file": str(root / "keys" / "munge.key"),
            "slurm_controller_slurmctld_port": self.ctld_port,
            "slurm_controller_slurmd_port": self.slurmd_port,
            "slurm_controller_slurmdbd_port": self.dbd_port,
            "slurm_restd_port": self.restd_port,
            "slurm_slurmd_timeout": SLURMD_TIMEOUT,
            # Each node's tunnel address here, as start_pod gives it (its slot: 127.0.1.<index>).
            "slurm_controller_nodes": [{"name": node, "addr": "127.0.1.%d" % index, "cpus": 1, "memory": 256,
                                        "usd_per_gpu_hour": PRICES[node]} for index, node in enumerate(NODES, start=1)],
            # These pods run no GPU exporter, whose job mapping the inventories make Slurm's prolog and epilog.
            "slurm_prolog": "",
            "slurm_epilog": "",
        }

    # -- the service plane -------------------------------------------------------------------

    def deploy(self, state: str = "present") -> subprocess.CompletedProcess:
        playbook = self.root / "deploy.yml"
        playbook.write_text(DEPLOY)
        varfile = self.root / "vars.yml"
        varfile.write_text(yaml.safe_dump(dict(self.vars, compose_state=state)))
        return run([str(VENV_BIN / "ansible-playbook"), str(playbook), "-e", "@%s" % varfile], timeout=600)

    def container(self, service: str) -> str:
        return "%s-%s-1" % (self.project, service)

    def ctl(self, *args: str, user: str = "root", check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
        return sh(["docker", "exec", "-u", user, "-w", "/tmp", self.container("slurmctld"), *args], check=check,
                  timeout=timeout)

    def node_states(self) -> dict[str, str]:
        return slurm_node_states(self.ctl)

    # -- the pods ----------------------------------------------------------------------------

    def start_pod(self, index: int, node: str, image: str = POD_IMAGE) -> None:
        name = "%s-pod%d" % (self.tag, index)
        network = "%s-net%d" % (self.tag, index)
        sh(["docker", "network", "create", "--label", "io.gpuops.test=%s" % self.tag, network])
        sh(["docker", "run", "-d", "--name", name, "--hostname", "%s-pod%d" % (self.tag, index),
            "--network", network, "--label", "io.gpuops.test=%s" % self.tag, "-p", "127.0.0.1::22",
            "-e", "PUBLIC_KEY=%s" % (self.ssh_key.with_suffix(".pub")).read_text().strip(), image])
        port = int(sh(["docker", "port", name, "22/tcp"]).stdout.split(":")[-1])
        self.pods[node] = {"container": name, "network": network, "ssh_port": port, "addr": "127.0.1.%d" % index}

    def pod_exec(self, node: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(["docker", "exec", "-i", self.pods[node]["container"], "bash", "-s"], input=script, check=check)

    def join(self, *nodes: str, check: bool = True) -> subprocess.CompletedProcess:
        """playbooks-style run of the slurm role's node entry point on these pods, over their SSH."""
        inventory = {"all": {"children": {"pods": {"hosts": {node: {
            "ansible_host": "127.0.0.1", "ansible_port": self.pods[node]["ssh_port"], "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.ssh_key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s"
                                       % (self.root / "keys" / "ansible_known_hosts"),
        } for node in nodes}}}}}
        (self.root / "nodes.yml").write_text(yaml.safe_dump(inventory))
        (self.root / "join.yml").write_text(NODES_PLAY)
        varfile = self.root / "vars.yml"
        varfile.write_text(yaml.safe_dump(dict(self.vars, compose_state="present")))
        return run([str(VENV_BIN / "ansible-playbook"), "-i", str(self.root / "nodes.yml"), str(self.root / "join.yml"),
                    "-e", "@%s" % varfile], check=check, timeout=600,
                   env={**os.environ, "ANSIBLE_INVENTORY_ENABLED": "yaml"})

    def tunnel(self, node: str, state: str = "present") -> dict:
        pod = self.pods[node]
        args = {
            "name": "%s-%s" % (self.tag, node),
            "state": state,
            "state_dir": str(self.root / "tunnels"),
            "supervisor": "daemon",
        }
        if state != "absent":
            args.update({
                "host": "127.0.0.1",
                "port": pod["ssh_port"],
                "private_key": str(self.ssh_key),
                "known_hosts": str(self.known_hosts),
                "host_key_alias": "%s-%s" % (self.tag, node),
                # The pod's sshd resolves the node's name: the pod's own address.
                "forwards": [{"bind_address": pod["addr"], "local_port": self.slurmd_port,
                              "remote_host": node, "remote_port": self.slurmd_port}],
                "reverse_forwards": [{"remote_port": self.ctld_port, "local_port": self.ctld_port}],
                "server_alive_interval": 2,
                "retry_max_interval": 2,
                "wait_timeout": 60,
            })
        result = run([str(VENV_BIN / "ansible"), "localhost", "-m", "gpuops.platform.autossh_tunnel",
                      "-a", json.dumps(args), "-o"], timeout=120)
        return json.loads(result.stdout.split(" => ", 1)[1]) if " => " in result.stdout else {}

    # -- teardown ----------------------------------------------------------------------------

    def destroy(self) -> None:
        for node in list(self.pods):
            try:
                self.tunnel(node, "absent")
            except Exception:  # noqa: BLE001 - tear down whatever failed
                pass
        for kind in ("container", "network"):
            ids = sh(["docker", kind, "ls", "-q", *(["-a"] if kind == "container" else []),
                      "--filter", "label=io.gpuops.test=%s" % self.tag], check=False).stdout.split()
            if ids:
                sh(["docker", kind, "rm", *(["-f"] if kind == "container" else []), *ids], check=False)
        if (self.stack / "compose.yaml").exists():
            sh(["docker", "compose", "-p", self.project, "-f", str(self.stack / "compose.yaml"), "down", "--volumes",
                "--remove-orphans", "--timeout", "5"], check=False, timeout=180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not images_present():
        pytest.fail("the images %s, %s and %s are missing: run scripts/setup.sh slurm standin"
                    % (CONTROLLER_IMAGE, MARIADB_IMAGE, POD_IMAGE))
    c = Cluster(tmp_path_factory.mktemp("slurmctl"))
    try:
        c.deploy()
        for index, node in enumerate(NODES, start=1):
            c.start_pod(index, node)
        for node in NODES:
            wait_for("sshd of %s" % node, lambda node=node: c.pod_exec(node, "pgrep -x sshd", check=False).returncode == 0,
                     timeout=60)
        c.first_join = c.join(*NODES)
        for node in NODES:
            c.tunnel(node)
        yield c
    finally:
        c.destroy()


def pod_listeners(c: Cluster, node: str, port: int) -> list[str]:
    """The addresses a pod listens on at `port` (its /proc/net/tcp; the image has no ss)."""
    table = c.pod_exec(node, "cat /proc/net/tcp /proc/net/tcp6").stdout
    found = []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            hex_addr, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port:
                raw = bytes.fromhex(hex_addr)
                packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append(str(ipaddress.ip_address(packed)))
    return found


def wait_idle(c: Cluster, nodes=NODES, timeout: float = 90) -> float:
    start = time.monotonic()
    try:
        wait_for("nodes %s idle" % ", ".join(nodes), lambda: all(c.node_states().get(n) == "idle" for n in nodes),
                 timeout=timeout)
    except AssertionError as err:
        nodes_now = c.ctl("scontrol", "show", "node", check=False).stdout
        log = sh(["docker", "logs", "--tail", "40", c.container("slurmctld")], check=False)
        raise AssertionError("%s\nstates: %s\n%s\nslurmctld's log:\n%s%s"
                             % (err, c.node_states(), nodes_now, log.stdout, log.stderr)) from None
    return time.monotonic() - start


def submit(c: Cluster, node: str) -> tuple[int, str]:
    """sbatch --wait of a job with an srun step on one node, as the job account; (job id, output)."""
    out = c.ctl("sbatch", "--wait", "--parsable", "-w", node, "--chdir=/tmp", "--output=/tmp/job-%j.out",
                "--wrap", "id -un; srun hostname", user=JOB_USER, timeout=180).stdout
    job_id = int(out.strip().split(";")[0])
    text = c.pod_exec(node, "cat /tmp/job-%d.out" % job_id).stdout
    return job_id, text


def sacct(c: Cluster) -> dict[int, tuple[str, str, str]]:
    out = c.ctl("sacct", "--noheader", "--parsable2", "--allocations", "--allusers", "--starttime=2020-01-01",
                "--format=JobID,State,User,NodeList").stdout
    rows = {}
    for line in out.splitlines():
        job, state, user, nodes = line.split("|")
        # "CANCELLED by <uid>" while slurmctld remembers who cancelled, "CANCELLED" from slurmdbd alone.
        rows[int(job)] = (state.split(" by ")[0], user, nodes)
    return rows


def token(c: Cluster) -> str:
    out = c.ctl("scontrol", "token", "username=%s" % JOB_USER, "lifespan=600", user="slurm").stdout
    match = re.search(r"SLURM_JWT=(\S+)", out)
    assert match, out
    return match.group(1)


def restd(c: Cluster, path: str) -> httpx.Response:
    return httpx.get("http://127.0.0.1:%d%s" % (c.restd_port, path), timeout=30,
                     headers={"X-SLURM-USER-NAME": JOB_USER, "X-SLURM-USER-TOKEN": token(c)})


# -- the tests, in order (one cluster for the module) ------------------------------------------------


def test_both_nodes_register_through_their_tunnels(cluster):
    wait_idle(cluster)
    for node in NODES:
        # The controller's container reaches the node on the control host's loopback (its tunnel).
        hosts = cluster.ctl("getent", "hosts", node).stdout.split()
        assert hosts[0] == cluster.pods[node]["addr"]
        # The pod's slurmd listens on the pod's own address only (NoInAddrAny: the one its host name resolves
        # to), never on every interface; the pod publishes 22/tcp only, so only its tunnel reaches slurmd.
        own = cluster.pod_exec(node, "getent ahostsv4 \"$(hostname)\" | awk '{print $1; exit}'").stdout.strip()
        assert pod_listeners(cluster, node, cluster.slurmd_port) == [own]
        ports = json.loads(sh(["docker", "inspect", "-f", "{{json .NetworkSettings.Ports}}",
                               cluster.pods[node]["container"]]).stdout)
        assert list(ports) == ["22/tcp"], ports
        # The pods cannot reach each other: each is alone on its network.
    assert cluster.pods[NODES[0]]["network"] != cluster.pods[NODES[1]]["network"]


def test_a_second_join_changes_nothing(cluster):
    assert cluster.first_join.returncode == 0
    again = cluster.join(*NODES)
    hosts = recap(again.stdout)
    assert set(hosts) >= set(NODES) and all(counts["changed"] == 0 for counts in hosts.values()), (
        hosts, changed_tasks(again.stdout))
    # The munge key was never printed.
    key = (cluster.root / "keys" / "munge.key").read_text().strip()
    assert key not in cluster.first_join.stdout + again.stdout


def test_the_job_account_has_the_same_uid_and_gid_on_the_pods_and_the_controller(cluster):
    expected = "uid=%d(%s) gid=%d(%s) groups=%d(%s)" % (JOB_UID, JOB_USER, JOB_UID, JOB_USER, JOB_UID, JOB_USER)
    assert cluster.ctl("id", JOB_USER).stdout.strip() == expected
    for node in NODES:
        assert cluster.pod_exec(node, "id %s" % JOB_USER).stdout.strip() == expected


def test_a_job_with_an_srun_step_runs_on_each_node_as_the_job_account(cluster):
    ids = []
    for node in NODES:
        job_id, text = submit(cluster, node)
        lines = text.split()
        assert lines[0] == JOB_USER, text
        assert lines[1] == cluster.pods[node]["container"], text  # srun's step ran on that pod
        ids.append(job_id)
    cluster.job_ids = ids
    refused = cluster.ctl("sbatch", "--wrap", "true", check=False)
    assert refused.returncode != 0, "root could submit a job despite DisableRootJobs"


def test_a_job_can_neither_read_the_munge_key_nor_touch_slurms_files_nor_sudo(cluster):
    node = NODES[0]
    script = ("id -u; cat /etc/munge/munge.key; echo munge=$?; touch /etc/slurm/slurm.conf; echo conf=$?; "
              "echo x >> /etc/slurm/gpuops-job-was-here; echo newconf=$?; sudo -n true; echo sudo=$?")
    out = cluster.ctl("sbatch", "--wait", "--parsable", "-w", node, "--chdir=/tmp", "--output=/tmp/job-%j.out",
                      "--wrap", script, user=JOB_USER, timeout=180).stdout
    job_id = int(out.strip().split(";")[0])
    text = cluster.pod_exec(node, "cat /tmp/job-%d.out" % job_id).stdout
    lines = text.splitlines()
    assert lines[0] == str(JOB_UID), text
    assert "/etc/munge/munge.key: Permission denied" in text and "munge=1" in lines, text
    assert "conf=1" in lines and "newconf=0" not in lines, text
    assert "cannot create /etc/slurm/gpuops-job-was-here: Permission denied" in text, text
    assert not any(line.startswith("sudo=0") for line in lines), text
    assert cluster.pod_exec(node, "test -e /etc/slurm/gpuops-job-was-here", check=False).returncode != 0


def test_a_pod_whose_slurmd_is_too_old_is_refused_before_anything_changes(cluster):
    """Debian 12's slurmd 22.05 is 4 releases older than the controller's 24.11 (window: 3)."""
    node = "n3"
    cluster.start_pod(3, node, image="gpuops/pod:bookworm")
    wait_for("sshd of %s" % node, lambda: cluster.pod_exec(node, "pgrep -x sshd", check=False).returncode == 0,
             timeout=60)
    cluster.pod_exec(node, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                           "apt-get install -y -qq --no-install-recommends slurmd >/dev/null")
    snapshot = "cat /etc/hosts; ls -la /etc/slurm /etc/munge 2>&1; getent passwd %s; ls /etc/supervisor 2>&1" % JOB_USER
    before = cluster.pod_exec(node, snapshot, check=False).stdout
    result = cluster.join(node, check=False)
    assert result.returncode != 0
    flat = " ".join(result.stdout.split())
    assert ("n3 cannot join the cluster: its slurmd 22.05.8 is older than the controller's Slurm 24.11.5 allows: "
            "slurmctld 24.11 serves slurmd 23.02, 23.11, 24.05, 24.11 only") in flat, result.stdout[-3000:]
    assert "Nothing was changed on it." in flat
    assert recap(result.stdout)[node]["changed"] == 0
    assert cluster.pod_exec(node, snapshot, check=False).stdout == before


def test_accounting_lists_the_jobs_completed(cluster):
    ids = cluster.job_ids
    rows = wait_for("the jobs in sacct", lambda: (lambda r: r if all(r.get(i, ("",))[0] == "COMPLETED" for i in ids)
                                                   else None)(sacct(cluster)), timeout=60)
    for job_id, node in zip(ids, NODES):
        assert rows[job_id] == ("COMPLETED", JOB_USER, node)


def test_every_job_records_the_price_its_node_had_when_it_was_allocated(cluster):
    out = cluster.ctl("sacct", "--noheader", "--parsable2", "--allocations", "--allusers", "--starttime=2020-01-01",
                      "--format=JobID,NodeList,AdminComment").stdout
    ran = [line.split("|") for line in out.splitlines() if line.split("|")[1] in PRICES]
    assert ran, out
    for job, node, comment in ran:
        assert comment == "gpuops_usd_per_gpu_hour=%.6f" % PRICES[node], (job, node, comment)


def test_slurmrestd_answers_with_a_jwt_and_lists_the_accounted_jobs(cluster):
    diag = restd(cluster, "/slurm/v0.0.42/diag")
    assert diag.status_code == 200, diag.text
    assert diag.json()["meta"]["slurm"]["release"].startswith("24.11")
    unauthenticated = httpx.get("http://127.0.0.1:%d/slurm/v0.0.42/diag" % cluster.restd_port, timeout=30)
    assert unauthenticated.status_code == 401
    for version in ("v0.0.42", "v0.0.40"):
        answer = restd(cluster, "/slurmdb/%s/jobs" % version)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        listed = {job["job_id"] for job in body["jobs"]}
        assert set(cluster.job_ids) <= listed, (version, listed)
        for job in body["jobs"]:
            if job["job_id"] in cluster.job_ids:
                assert job["user"] == JOB_USER
                assert "COMPLETED" in json.dumps(job["state"])
        if os.environ.get("GPUOPS_RECORD_FIXTURES") == "1":
            (FIXTURES / version).mkdir(parents=True, exist_ok=True)
            (FIXTURES / version / "jobs.json").write_text(
                json.dumps({"status": answer.status_code, "body": body}, indent=2, sort_keys=True) + "\n")


def record(version: str, name: str, answer: httpx.Response) -> None:
    """With GPUOPS_RECORD_FIXTURES=1: keep slurmrestd's answer as tests/fixtures/api/slurmdb/<version>/<name>."""
    if os.environ.get("GPUOPS_RECORD_FIXTURES") == "1":
        (FIXTURES / version).mkdir(parents=True, exist_ok=True)
        (FIXTURES / version / name).write_text(
            json.dumps({"status": answer.status_code, "body": answer.json()}, indent=2, sort_keys=True) + "\n")


def test_accounting_keeps_failed_running_pending_and_cancelled_jobs_and_filters_them(cluster):
    """What the gpuops API lists jobs from: slurmdbd's records through /slurmdb/, filtered by slurmdbd."""
    node = NODES[0]
    sbatch = ("sbatch", "--parsable", "-w", node, "--chdir=/tmp", "--output=/tmp/job-%j.out")
    failed = cluster.ctl(*sbatch, "--wait", "-J", "fails", "--wrap", "echo failing; exit 3", user=JOB_USER,
                         check=False, timeout=180)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    failed_id = int(failed.stdout.strip().split(";")[0])
    # The node has one CPU: the second job waits for the first (Resources).
    running_id, pending_id = (int(cluster.ctl(*sbatch, "-J", name, "--time=10", "--wrap", "sleep 300",
                                              user=JOB_USER).stdout.strip().split(";")[0])
                              for name in ("sleeps", "waits"))
    until = int(time.time()) + 3600
    window = "start_time=1&end_time=%d" % until
    listing = "/slurmdb/%s/jobs?" + window + "&skip_steps=true"

    def busy():
        answer = restd(cluster, listing % "v0.0.42")
        states = {job["job_id"]: job["state"]["current"] for job in answer.json()["jobs"]}
        return answer if states.get(running_id) == ["RUNNING"] and states.get(pending_id) == ["PENDING"] else None

    answer = wait_for("slurmdbd's records of the running and the pending job", busy, timeout=60)
    for version in ("v0.0.42", "v0.0.41", "v0.0.40"):
        answer = restd(cluster, listing % version)
        record(version, "jobs_busy.json", answer)
        if version != "v0.0.42":
            # Slurm 24.11's v0.0.40 and v0.0.41 cannot parse a number as a timestamp in a query ("Parsing of <n>
            # for timestamp failed", HTTP 422): the gpuops API reads the accounting in v0.0.42 only.
            assert answer.status_code == 422, answer.text
            continue
        assert answer.status_code == 200, answer.text
        states = {job["job_id"]: job["state"]["current"] for job in answer.json()["jobs"]}
        assert states[failed_id] == ["FAILED"] and states[pending_id] == ["PENDING"], states
        assert all(job_id in states for job_id in cluster.job_ids)
    record("v0.0.42", "ctld_jobs_busy.json", restd(cluster, "/slurm/v0.0.42/jobs"))
    # Filters run in slurmdbd: COMPLETED jobs of the job account that ended in the window.
    completed = restd(cluster, listing % "v0.0.42" + "&state=COMPLETED&users=" + JOB_USER)
    ids = {job["job_id"] for job in completed.json()["jobs"]}
    assert set(cluster.job_ids) <= ids and not {failed_id, running_id, pending_id} & ids, ids
    record("v0.0.42", "jobs_completed_gpuops.json", completed)
    nobody = restd(cluster, listing % "v0.0.42" + "&users=root")
    assert nobody.status_code == 200 and nobody.json()["jobs"] == [], nobody.text
    record("v0.0.42", "jobs_root.json", nobody)
    for name, job_id in (("job_failed.json", failed_id), ("job_running.json", running_id),
                         ("job_pending.json", pending_id)):
        one = restd(cluster, "/slurmdb/v0.0.42/job/%d" % job_id)
        assert one.status_code == 200 and [job["job_id"] for job in one.json()["jobs"]] == [job_id], one.text
        record("v0.0.42", name, one)
    unknown = restd(cluster, "/slurmdb/v0.0.42/job/999999")
    record("v0.0.42", "job_unknown.json", unknown)
    cluster.ctl("scancel", str(running_id), str(pending_id), user=JOB_USER)

    def cancelled():
        answer = restd(cluster, listing % "v0.0.42")
        states = {job["job_id"]: job["state"]["current"] for job in answer.json()["jobs"]}
        return answer if states.get(running_id) == states.get(pending_id) == ["CANCELLED"] else None

    record("v0.0.42", "jobs_final.json", wait_for("slurmdbd's records of the cancelled jobs", cancelled, timeout=60))
    record("v0.0.42", "ctld_jobs_final.json", restd(cluster, "/slurm/v0.0.42/jobs"))
    if os.environ.get("GPUOPS_RECORD_FIXTURES") == "1":
        (FIXTURES / "v0.0.42" / "index.json").write_text(json.dumps({
            "listing": listing.split("?", 1)[1], "end_time": until, "user": JOB_USER,
            "jobs": {"completed": sorted(ids), "failed": failed_id, "running": running_id,
                     "pending": pending_id},
        }, indent=2, sort_keys=True) + "\n")


def test_nothing_of_the_stack_listens_beyond_loopback(cluster):
    out = sh(["ss", "-Hltn"]).stdout
    ports = {cluster.ctld_port, cluster.slurmd_port, cluster.dbd_port, cluster.restd_port}
    seen = []
    for line in out.splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        if int(port) in ports:
            seen.append(local)
            assert ipaddress.ip_address(address.strip("[]").split("%")[0]).is_loopback, line
    # slurmctld, slurmdbd, slurmrestd and the two tunnels' forwards.
    assert len(seen) == 5, seen
    # MariaDB and munged have no network at all.
    for service in ("mariadb", "munge"):
        mode = sh(["docker", "inspect", "-f", "{{.HostConfig.NetworkMode}}", cluster.container(service)]).stdout.strip()
        assert mode == "none"


def test_a_restart_of_the_whole_project_keeps_history_and_job_ids(cluster):
    before = sacct(cluster)
    cluster.deploy("absent")
    assert sh(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=%s" % cluster.project]).stdout == ""
    cluster.deploy("present")
    # slurmctld pings every node again after its start (SlurmdTimeout is short here: allow for a slow machine).
    wait_idle(cluster, timeout=180)
    after = sacct(cluster)
    assert {job: row for job, row in after.items() if job in before} == before
    job_id, _ = submit(cluster, NODES[0])
    assert job_id > max(before), (job_id, sorted(before))


def test_a_tunnel_cut_makes_the_node_not_respond_and_its_return_brings_it_back(cluster):
    node = NODES[1]
    wait_idle(cluster)
    cluster.tunnel(node, "absent")
    start = time.monotonic()
    wait_for("%s not responding" % node, lambda: cluster.node_states().get(node, "").endswith("*"),
             timeout=SLURMD_TIMEOUT * 3 + 15)
    down_after = time.monotonic() - start
    assert cluster.node_states()[NODES[0]] == "idle"
    cluster.tunnel(node)
    back_after = wait_idle(cluster, timeout=120)
    print("node %s not responding %.1f s after its tunnel was cut, idle %.1f s after it returned"
          % (node, down_after, back_after))
    job_id, text = submit(cluster, node)
    assert text.split()[1] == cluster.pods[node]["container"]


def teardown_accounting_command() -> list[str]:
    """The command teardown.yml keeps Slurm's accounting with, as the playbook has it."""
    plays = yaml.safe_load((REPO / "teardown.yml").read_text())
    for play in plays:
        for task in play.get("tasks", []) + [t for b in play.get("tasks", []) for t in b.get("block", [])]:
            if task.get("name") == "Read Slurm's accounting":
                return task["ansible.builtin.command"]["cmd"].split()
    raise AssertionError("teardown.yml has no task 'Read Slurm's accounting'")


def test_the_teardown_archive_keeps_the_jobs_of_earlier_days(cluster):
    """sacct's default window starts at today's midnight, and an epoch-0 start time counts as none: the
    archive teardown keeps must still hold a job that ended days ago (CI once ran across midnight)."""
    job_id, _ = submit(cluster, NODES[0])
    wait_for("job %d in sacct" % job_id, lambda: sacct(cluster).get(job_id, ("",))[0] == "COMPLETED", timeout=60)
    # Three days back, as slurmdbd would have recorded it then.
    shift = ("UPDATE gpuops_job_table SET time_submit = time_submit - 259200, time_eligible = time_eligible - 259200,"
             " time_start = time_start - 259200, time_end = time_end - 259200 WHERE id_job = %d;"
             " UPDATE gpuops_step_table s JOIN gpuops_job_table j ON s.job_db_inx = j.job_db_inx"
             " SET s.time_start = s.time_start - 259200, s.time_end = s.time_end - 259200 WHERE j.id_job = %d;"
             % (job_id, job_id))
    sh(["docker", "exec", "-i", cluster.container("mariadb"), "sh", "-c",
        'exec mariadb --socket=/run/mysqld/mysqld.sock -u "$GPUOPS_MARIADB_USER"'
        ' -p"$(cat /etc/gpuops-mariadb/password)" "$GPUOPS_MARIADB_DATABASE"'], input=shift)
    # sacct's own default no longer lists it: the record did move out of today.
    assert job_id not in {job["job_id"] for job in json.loads(cluster.ctl("sacct", "--allusers", "--json").stdout)["jobs"]}
    command = teardown_accounting_command()
    assert command[0] == "sacct", command
    archived = json.loads(cluster.ctl(*command).stdout)["jobs"]
    ids = {job["job_id"] for job in archived}
    assert job_id in ids and set(cluster.job_ids) <= ids, sorted(ids)
