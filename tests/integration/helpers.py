"""Shared helpers of the integration tests."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx

from localcloud.config import DEFAULT_HOST_PORT_RANGE

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def docker_available() -> bool:
    """True when a Docker engine answers."""
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


#: Host ports the local cloud publishes pods' ports on: a test's own ports stay out of it, so that another worker's
#: cloud cannot take one between the pick and its use.
LOCALCLOUD_HOST_PORTS = range(*DEFAULT_HOST_PORT_RANGE)
#: Ports are handed out in slices of this size; each pytest-xdist worker picks from its own slices only.
PORT_SLICE = 256


def _worker() -> tuple[int, int]:
    """This pytest-xdist worker's number and the number of workers ((0, 1) without xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return (int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0), max(count, 1)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, outside the kernel's ephemeral port range: a tunnel's port is freed and
    bound again on a restart, and in between another program's outgoing connection may take a port of that range
    as its own (then "already in use" is the truth, and the test fails for nothing).

    Outside the local cloud's range for pods' ports too, and, where tests run side by side (pytest-xdist), from
    this worker's slices of 256 ports only: two workers never pick the same port, whatever the timing."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            low, high = (int(n) for n in handle.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    worker, workers = _worker()
    candidates = [p for p in range(10000, 65536)
                  if not low <= p <= high and p not in LOCALCLOUD_HOST_PORTS and (p // PORT_SLICE) % workers == worker]
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 outside the ephemeral range %d-%d" % (low, high))


def free_port_block(size: int) -> int:
    """An even base port with `size` free ports from it (for the tunnels' port formula), in one slice."""
    assert size <= PORT_SLICE // 2, size
    for _ in range(200):
        base = free_port() & ~1
        if (base + size - 1) // PORT_SLICE != base // PORT_SLICE:
            continue
        socks = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free block of ports")


def run(cmd: list[str], check: bool = True, env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command from the repository root; on failure show its output."""
    environ = dict(env if env is not None else os.environ)
    environ.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    environ["ANSIBLE_NOCOLOR"] = "1"
    environ["ANSIBLE_FORCE_COLOR"] = "0"
    result = subprocess.run(cmd, cwd=REPO, env=environ, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def host_key_alias(pod: dict) -> str:
    """The SSH HostKeyAlias gpuops pins a pod's host key under: runpod-<id>-<startedAt epoch> (one per container start)."""
    started = datetime.fromisoformat(pod["startedAt"].replace("Z", "+00:00"))
    return f"runpod-{pod['id']}-{int(started.timestamp())}"


def localcloud_api(port: int, key_file: Path) -> httpx.Client:
    """An HTTP client for the local cloud's RunPod REST v2 API (base URL .../v2, bearer key)."""
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}/v2",
        headers={"Authorization": f"Bearer {key_file.read_text().strip()}"},
        timeout=30,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """Parse the PLAY RECAP lines of ansible-playbook's output."""
    result: dict[str, dict[str, int]] = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s+:\s+(ok=.*)$", line.strip())
        if match:
            result[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return result


def changed_tasks(output: str) -> list[str]:
    """The `TASK [...]` headers under which a host reported `changed:` (for assertion messages)."""
    found, task = [], None
    for line in output.splitlines():
        header = re.match(r"^TASK \[(.*)\]", line)
        if header:
            task = header.group(1)
        elif line.startswith("changed:") and task is not None:
            found.append(f"{task}: {line}")
    return found


class Deployment:
    """A test deployment: its own state dir, API port, name prefix and inventory.

    It never touches a developer's own deployment in .gpuops/. Call stop()
    (after the teardown playbook) to stop its local cloud and purge its pods.
    """

    def __init__(self, root: Path, prefix: str = "gpuopsit") -> None:
        self.prefix = prefix
        self.state_dir = root / "state"
        self.port = free_port()
        self.inventory = root / "inventories" / "local"
        self.inventory.mkdir(parents=True)
        self.seen_ids: set[str] = set()
        shutil.copytree(REPO / "inventories/local/group_vars", self.inventory / "group_vars", symlinks=False)
        config = (REPO / "inventories/local/runpod.yml").read_text()
        config = config.replace("../../.gpuops", str(self.state_dir))
        config = config.replace("../../", str(REPO) + "/")
        config = config.replace("127.0.0.1:8765", f"127.0.0.1:{self.port}")
        (self.inventory / "runpod.yml").write_text(config)
        shutil.copy(REPO / "inventories/service_plane.yml", self.inventory / "service_plane.yml")
        self.extra = [
            "-e", f"gpuops_state_dir={self.state_dir}",
            "-e", f"provision_localcloud_port={self.port}",
            "-e", f"provision_name_prefix={prefix}",
        ]

    @property
    def api_key_file(self) -> Path:
        return self.state_dir / "localcloud" / "api_key"

    def playbook(self, name: str, *args: str, check: bool = True, env: dict[str, str] | None = None,
                 wrapper: list[str] | None = None) -> subprocess.CompletedProcess:
        """Run playbooks/<name>, or <name> itself when it is a path (e.g. ./submit_job.yml).

        wrapper: a command prefix such as setpriv's, to run the playbook under.
        """
        path = name if "/" in name else f"playbooks/{name}"
        return run(
            [*(wrapper or []), str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), path, *self.extra, *args],
            check=check,
            env=env,
        )

    def ansible(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(VENV_BIN / "ansible"), "-i", str(self.inventory), *args], check=check)

    def inventory_list(self, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(VENV_BIN / "ansible-inventory"), "-i", str(self.inventory), "--list"], check=check)

    def api(self):
        return localcloud_api(self.port, self.api_key_file)

    def containers(self) -> list[str]:
        """Pod containers of this deployment's pods seen so far (any state)."""
        out = subprocess.run(
            ["docker", "ps", "-a", "--filter", "label=io.gpuops.localcloud=1",
             "--format", '{{ .ID }} {{ .Label "io.gpuops.pod-id" }}'],
            capture_output=True, text=True, check=True,
        ).stdout
        return [line.split()[0] for line in out.splitlines() if line.split()[1:] and line.split()[1] in self.seen_ids]

    def pods(self) -> dict[str, dict]:
        """This deployment's pods by name, from the local cloud's API."""
        return {pod["name"]: pod for pod in self.api().get("/pods").json()["pods"]}

    def pod_exec(self, pod_id: str, command: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
        """Run a shell command inside a pod's container, as root."""
        result = subprocess.run(
            ["docker", "exec", f"gpuops-pod-{pod_id}", "sh", "-c", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"in pod {pod_id}: {command!r} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
            )
        return result

    # -- a whole cluster: the service plane's Slurm controller, the pods as nodes, their tunnels ----------

    def use_service_plane(self) -> None:
        """Give this deployment a service plane of its own: Compose project, Slurm and Prometheus ports, tunnels.

        Every later playbook run gets these as extra vars, so the deployment never touches another's stack.
        """
        self.project = f"{self.prefix}{os.getpid()}"
        self.service_plane_vars = {
            "observability_project_name": self.project,
            "observability_prometheus_port": free_port(),
            "observability_grafana_port": free_port(),
            "observability_alertmanager_port": free_port(),
            "gpuops_tunnel_port_base": free_port_block(8),
            "slurm_controller_slurmctld_port": free_port(),
            "slurm_controller_slurmd_port": free_port(),
            "slurm_controller_slurmdbd_port": free_port(),
            "slurm_restd_port": free_port(),
        }
        self.extra = [*self.extra, "-e", json.dumps(self.service_plane_vars)]

    def deploy_cluster(self, *args: str) -> list[subprocess.CompletedProcess]:
        """After provision.yml: the product's stages for a Slurm cluster, without the API and the web app.

        stack.yml (the controller, Prometheus), slurm.yml (the pods join), tunnel.yml (the pods reach slurmctld).
        """
        if not hasattr(self, "project"):
            self.use_service_plane()
        return [self.playbook(name, *args) for name in ("stack.yml", "slurm.yml", "tunnel.yml")]

    def controller(self, *command: str, user: str = "gpuops", check: bool = True,
                   timeout: int = 120) -> subprocess.CompletedProcess:
        """Run a Slurm command in the service plane's slurmctld container (as the job account by default)."""
        result = subprocess.run(
            ["docker", "exec", "-u", user, "-w", "/tmp", f"{self.project}-slurmctld-1", *command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"in slurmctld: {command!r} exited {result.returncode}\n"
                                 f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
        return result

    def stop(self) -> None:
        run([str(VENV_BIN / "python"), "-m", "localcloud", "stop", "--purge",
             "--state-dir", str(self.state_dir / "localcloud"), "--port", str(self.port)], check=False)
        if hasattr(self, "project"):
            # teardown.yml keeps the service plane's named volumes (Slurm's history, metrics): a test's go too.
            subprocess.run(["docker", "compose", "-p", self.project, "down", "--volumes", "--remove-orphans",
                            "--timeout", "5"], capture_output=True, text=True, check=False, timeout=300)
            volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                                      f"label=com.docker.compose.project={self.project}"],
                                     capture_output=True, text=True, check=False).stdout.split()
            if volumes:
                subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True, check=False)


def slurm_node_states(slurm: Callable[..., subprocess.CompletedProcess]) -> dict[str, str]:
    """Each Slurm node's short state (sinfo's %t: idle, alloc, down*...), asked with `slurm(*command, check=...)`."""
    out = slurm("sinfo", "--noheader", "--Node", "--format=%N %t", check=False).stdout
    return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)


class Cluster:
    """A Slurm cluster as the product deploys it, for the tests that need one: a Deployment with a service plane
    of its own (use_service_plane), provision.yml, then stack.yml, slurm.yml and tunnel.yml (deploy_cluster).

    Pods are named by their inventory name, which is also their Slurm node name. A test subclasses it for what
    only it needs (a job submitter, an exporter's metrics...). Use it as
    ``with Cluster(root, prefix).deployed(...) as cluster: yield cluster``: whatever fails, the teardown playbook
    runs and the deployment stops (its local cloud, pods, Compose project and volumes).
    """

    def __init__(self, root: Path, prefix: str, **extra_vars: object) -> None:
        self.root = root
        self.dep = Deployment(root / "deploy", prefix=prefix)
        self.dep.use_service_plane()
        if extra_vars:
            self.dep.extra += ["-e", json.dumps(extra_vars)]
        #: The pods by node name, as provision.yml left them (deploy() reads them).
        self.pods: dict[str, dict] = {}
        #: Seconds each timed stage took (provision, cluster, and what timed() is given).
        self.timings: dict[str, float] = {}

    def timed(self, label: str, call: Callable[..., object], *args: object, **kwargs: object):
        started = time.monotonic()
        try:
            return call(*args, **kwargs)
        finally:
            self.timings[label] = time.monotonic() - started

    def deploy(self, provision: Sequence[str] = (), stages: Sequence[str] = ()) -> "Cluster":
        """provision.yml with `provision`'s arguments, then the cluster's stages with `stages`' arguments."""
        self.timed("provision", self.dep.playbook, "provision.yml", *provision)
        self.pods = self.dep.pods()
        self.dep.seen_ids.update(pod["id"] for pod in self.pods.values())
        self.timed("cluster", self.dep.deploy_cluster, *stages)
        return self

    def teardown(self, playbook: str = "teardown.yml", *args: str) -> None:
        """The teardown playbook (when anything was provisioned), then Deployment.stop(), whatever it said."""
        try:
            if self.dep.api_key_file.exists():
                self.dep.playbook(playbook, *args, check=False)
        finally:
            self.dep.stop()

    @contextmanager
    def deployed(self, provision: Sequence[str] = (), stages: Sequence[str] = (),
                 teardown: Sequence[str] = ("teardown.yml",)) -> Iterator["Cluster"]:
        """deploy(), then teardown(*teardown) on the way out, whatever happened."""
        try:
            yield self.deploy(provision, stages)
        finally:
            self.teardown(*teardown)

    @property
    def nodes(self) -> list[str]:
        return sorted(self.pods)

    def pod_id(self, node: str) -> str:
        return self.pods[node]["id"]

    def on(self, node: str, command: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
        """A shell command in a node's pod, as root."""
        return self.dep.pod_exec(self.pod_id(node), command, check=check, timeout=timeout)

    def slurm(self, *command: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
        """A Slurm command in the service plane's slurmctld container, as the job account gpuops."""
        return self.dep.controller(*command, check=check, timeout=timeout)

    def node_states(self) -> dict[str, str]:
        return slurm_node_states(self.slurm)

    def wait_idle(self, nodes: Sequence[str] = (), timeout: float = 120) -> None:
        """Wait until Slurm has these nodes (all by default) idle; fail with `scontrol show node`'s view."""
        nodes = list(nodes or self.nodes)
        try:
            wait_for(f"nodes {', '.join(nodes)} idle",
                     lambda: all(self.node_states().get(node) == "idle" for node in nodes), timeout=timeout)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.slurm('scontrol', 'show', 'node', check=False).stdout}") from None


def wait_for(what: str, probe: Callable[[], object], timeout: float = 60, interval: float = 1) -> object:
    """Poll probe() until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
