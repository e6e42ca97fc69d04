"""Multi-node jobs over RunPod's global networking, end to end on the local cloud.

Two pods of the local cloud with global networking (-e
provision_global_networking=true: both join the cloud's global network,
``<podId>.runpod.internal``, as on RunPod), Slurm's controller on a service
plane of the test's own, the pods joined through playbooks/slurm.yml and
their tunnels (helpers.Cluster.deployed). Everything is real: slurmctld in
its container, slurmd and srun on the pods, SSH tunnels, Docker's networks.

What it proves:
- every pod names every node at that node's global-networking address
  (inventory hostvar runpod_global_networking.ip), its own host name first
  at its own (srun binds that name's address), and slurmd listens there
  only; slurmctld still reaches each slurmd through the pod's tunnel;
- ``sbatch -N2 --wrap 'srun hostname'`` runs one task on each pod;
- a 2-node TCP rendezvous (``srun -N2 -n2``: rank 0 listens on its node's
  address, rank 1 connects to rank 0's node name, as torch.distributed's
  MASTER_ADDR does) exchanges messages over the global network;
- the pods still cannot reach each other on the cloud's pod network.

Isolated pods (the default) refuse a 2-node job at submission:
tests/integration/test_submit_job.py::test_two_node_job_is_refused_without_global_networking.
"""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest

from tests.integration.helpers import Cluster, changed_tasks, docker_available, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopsmn"
JOB_USER = "gpuops"
NODES = [f"{PREFIX}-0", f"{PREFIX}-1"]

# Run by `srun -N2 -n2`, one task per node: rank 0 listens on the address of
# its node's name, rank 1 connects to the first node of the job by name.
RENDEZVOUS = r'''
import os, socket, subprocess, sys, time
rank = int(os.environ["SLURM_PROCID"])
me = os.environ["SLURMD_NODENAME"]
nodes = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                       capture_output=True, text=True, check=True).stdout.split()
port = 29000 + int(os.environ["SLURM_JOB_ID"]) % 1000
if rank == 0:
    assert me == nodes[0], (me, nodes)
    server = socket.create_server((socket.gethostbyname(me), port))
    server.settimeout(60)
    conn, peer = server.accept()
    with conn:
        got = conn.recv(200).decode()
        conn.sendall(("rank 0 on %s answers" % me).encode())
    print("rank 0 on %s got %r from %s" % (me, got, peer[0]), flush=True)
else:
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = socket.create_connection((nodes[0], port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        peer = conn.getpeername()
        conn.sendall(("rank 1 on %s says hello" % me).encode())
        got = conn.recv(200).decode()
    print("rank 1 on %s got %r from %s" % (me, got, peer[0]), flush=True)
'''


class MultiNode(Cluster):
    """The cluster's two pods with global networking, and jobs across them."""

    def internals(self, node: str) -> dict:
        """The local cloud's own record of a pod (private and global address)."""
        answer = httpx.get(f"http://127.0.0.1:{self.dep.port}/_localcloud/pods/{self.pod_id(node)}",
                           headers={"Authorization": "Bearer " + self.dep.api_key_file.read_text().strip()},
                           timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def sbatch(self, *args: str) -> tuple[str, str, str]:
        """sbatch --wait as the job account; (job id, its state and exit code in accounting, its output)."""
        result = self.slurm("sbatch", "--wait", "--parsable", "--chdir=/tmp", "--output=/tmp/mn-%j.out",
                            "--error=/tmp/mn-%j.err", *args, check=False, timeout=300)
        job = result.stdout.strip().split(";")[0]
        assert job.isdigit(), f"no job id: {result.stdout}\n{result.stderr}"
        state = wait_for(f"job {job} in accounting", lambda: self.slurm(
            "sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job}", "--format=State,ExitCode",
            check=False).stdout.strip(), timeout=60)
        # The output is on the job's first node (its batch host).
        output = "".join(self.on(node, f"cat /tmp/mn-{job}.out 2>/dev/null || true").stdout for node in NODES)
        errors = "".join(self.on(node, f"cat /tmp/mn-{job}.err 2>/dev/null || true").stdout for node in NODES)
        assert result.returncode == 0 and state == "COMPLETED|0:0", (
            f"job {job}: sbatch exited {result.returncode} ({result.stderr.strip()}), accounting says {state!r}\n"
            f"--- output\n{output}\n--- errors\n{errors}\n--- slurmd on the pods\n"
            + "\n".join(self.on(n, "tail -n 20 /var/log/slurm/slurmd.log", check=False).stdout for n in NODES))
        return job, state, output


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Never leave pods or a service plane behind, whatever failed (deployed() tears down).
    with MultiNode(tmp_path_factory.mktemp("multinode"), PREFIX).deployed(
            provision=("-e", "provision_global_networking=true"), stages=("-e", "app_enabled=false")) as c:
        assert c.nodes == NODES
        c.wait_idle(NODES)
        yield c


def _plain(value):
    """A value of `ansible-inventory --list` without its unsafe markers ({"__ansible_unsafe": ...})."""
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_the_pods_have_global_networking_in_the_inventory(cluster):
    hostvars = _plain(json.loads(cluster.dep.inventory_list().stdout)["_meta"]["hostvars"])
    for node in NODES:
        networking = hostvars[node]["runpod_global_networking"]
        assert networking["enabled"] is True
        assert networking["ip"] == cluster.pods[node]["globalNetworking"]["ip"]
        assert networking["internal_dns"] == f"{cluster.pods[node]['id']}.runpod.internal"


def test_every_pod_names_every_node_at_its_global_address(cluster):
    addresses = {node: cluster.pods[node]["globalNetworking"]["ip"] for node in NODES}
    for node in NODES:
        for other in NODES:
            resolved = cluster.on(node, f"getent ahostsv4 {other} | head -n 1").stdout.split()
            assert resolved[:1] == [addresses[other]], (node, other, resolved)
        # srun binds the address of the pod's host name (NoInAddrAny): the node's, first of the runtime's two.
        first = cluster.on(node, "getent ahostsv4 $(hostname) | head -n 1").stdout.split()
        assert first[:1] == [addresses[node]], (node, first)
        # The other pod's internal DNS name (RunPod's <podId>.runpod.internal) is the same address.
        other = NODES[1 - NODES.index(node)]
        dns = cluster.on(node, f"getent hosts {cluster.pods[other]['globalNetworking']['internalDns']}").stdout.split()
        assert dns[:1] == [addresses[other]]


def test_slurmd_listens_on_the_global_address_only(cluster):
    port = cluster.dep.service_plane_vars["slurm_controller_slurmd_port"]
    for node in NODES:
        out = cluster.on(node, f"ss -Hltn 'sport = :{port}'").stdout
        listeners = {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}
        assert listeners == {cluster.pods[node]["globalNetworking"]["ip"]}, (node, out)


def test_a_two_node_job_runs_srun_hostname_on_both_pods(cluster):
    job, _, output = cluster.sbatch("-N2", "--wrap", "srun hostname; srun printenv SLURMD_NODENAME")
    # Each step prints one line per node (the pod's host name, then the node's name); srun's own notes go to
    # the error file (e.g. "step creation temporarily disabled" while the first step's end is being recorded).
    assert sorted(output.split()) == sorted([cluster.pods[n]["id"] for n in NODES] + NODES), output
    nodelist = cluster.slurm("sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job}",
                                      "--format=NNodes,NodeList").stdout.strip()
    assert nodelist.startswith("2|"), nodelist


def test_a_two_node_tcp_rendezvous_meets_over_the_global_network(cluster):
    code = base64.b64encode(RENDEZVOUS.encode()).decode()
    _, _, output = cluster.sbatch(
        "-N2", "-n2", "--wrap",
        f"srun -N2 -n2 python3 -c 'import base64; exec(base64.b64decode(\"{code}\"))'")
    addresses = {node: cluster.pods[node]["globalNetworking"]["ip"] for node in NODES}
    rank0 = re.search(r"^rank 0 on (\S+) got '(.*)' from (\S+)$", output, re.M)
    rank1 = re.search(r"^rank 1 on (\S+) got '(.*)' from (\S+)$", output, re.M)
    assert rank0 and rank1, output
    assert {rank0.group(1), rank1.group(1)} == set(NODES), output
    assert rank0.group(2) == f"rank 1 on {rank1.group(1)} says hello"
    assert rank1.group(2) == f"rank 0 on {rank0.group(1)} answers"
    # Each saw the other's global-networking address: the job's traffic went over the private network.
    assert rank0.group(3) == addresses[rank1.group(1)], output
    assert rank1.group(3) == addresses[rank0.group(1)], output


def test_the_pods_still_cannot_reach_each_other_on_the_pod_network(cluster):
    for node, other in (NODES, NODES[::-1]):
        private = cluster.internals(other)["private_ip"]
        assert private and private != cluster.pods[other]["globalNetworking"]["ip"]
        probe = (f"timeout 5 python3 -c \"import socket; socket.create_connection(('{private}', 22), 3)\" "
                 "&& echo open || echo closed")
        assert cluster.on(node, probe).stdout.split()[-1] == "closed", (node, other, private)
        # ...while the global address answers (sshd, the published port of every pod).
        glob = cluster.pods[other]["globalNetworking"]["ip"]
        probe = (f"timeout 5 python3 -c \"import socket; socket.create_connection(('{glob}', 22), 3)\" "
                 "&& echo open || echo closed")
        assert cluster.on(node, probe).stdout.split()[-1] == "open", (node, other, glob)


def test_a_second_join_leaves_the_nodes_names_as_they_are(cluster):
    hosts = {node: cluster.on(node, "cat /etc/hosts").stdout for node in NODES}
    result = cluster.dep.playbook("slurm.yml")
    assert not [line for line in changed_tasks(result.stdout) if "/etc/hosts" in line], changed_tasks(result.stdout)
    assert {node: cluster.on(node, "cat /etc/hosts").stdout for node in NODES} == hosts
