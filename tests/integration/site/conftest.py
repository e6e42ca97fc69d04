"""One whole deployment by site.yml, shared by every test of this package.

The deployment is the product as a user gets it: `ansible-playbook site.yml`
on the local cloud with 2 pods (Slurm, GPU exporters, autossh tunnels, the
Compose stack with Prometheus, the API and the web app), in its own state
directory, with its own local cloud, ports and Compose project, so it never
touches a developer's own deployment.

The files run in name order: converge (test_1), metrics (test_2), API
(test_3), browser (test_4), recovery (test_5), teardown (test_6). Whatever
fails, the session ends with teardown.yml and the local cloud purged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import REPO, VENV_BIN, Deployment, docker_available, free_port, free_port_block, run

PREFIX = "gpuopssite"
# The smoke stage submits a job on every run, and reports that change
# (playbooks/smoke.yml). An idempotence check leaves it out by its tag, and
# still counts every other stage.
IDEMPOTENCE_ARGS = ("--skip-tags", "smoke")


class Site(Deployment):
    """A site.yml deployment with its own ports and Compose project."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, prefix=PREFIX)
        self.project = f"{PREFIX}{os.getpid()}"
        self.tunnel_base = free_port_block(8)
        self.prometheus_port = free_port()
        self.grafana_port = free_port()
        self.alertmanager_port = free_port()
        self.api_port = free_port()
        self.web_port = free_port()
        self.results_dir = root / "jobs"
        extra = {
            "gpuops_tunnel_port_base": self.tunnel_base,
            "observability_project_name": self.project,
            "observability_prometheus_port": self.prometheus_port,
            "observability_grafana_port": self.grafana_port,
            "observability_alertmanager_port": self.alertmanager_port,
            "app_api_port": self.api_port,
            "app_web_port": self.web_port,
            # Slurm's controller on the service plane: its own ports on this host's loopback.
            "slurm_controller_slurmctld_port": free_port(),
            "slurm_controller_slurmd_port": free_port(),
            "slurm_controller_slurmdbd_port": free_port(),
            "slurm_restd_port": free_port(),
            "submit_results_dir": str(self.results_dir),
            # A data-centre GPU (simulated): it has every counter the dashboards show (HBM temperature,
            # row remapping, NVLink), which consumer GPUs such as the default RTX 4090 lack.
            "provision_gpu_type_id": "NVIDIA A100-SXM4-80GB",
        }
        self.extra_file = root / "site-extra.json"
        self.extra_file.write_text(json.dumps(extra))
        self.extra = [*self.extra, "-e", f"@{self.extra_file}"]
        self.stack_dir = self.state_dir / "stack"
        self.tunnel_dir = self.state_dir / "local" / "tunnels"
        self.prometheus = httpx.Client(base_url=f"http://127.0.0.1:{self.prometheus_port}", timeout=10)
        self.first_run: subprocess.CompletedProcess | None = None
        self.torn_down = False

    # -- the stack --------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def token(self) -> str:
        return (self.stack_dir / "api" / "token").read_text().strip()

    def api_client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30,
                            headers={"Authorization": f"Bearer {token if token is not None else self.token}"})

    def query(self, expr: str, at: float | None = None) -> list:
        params = {"query": expr, **({"time": str(at)} if at else {})}
        answer = self.prometheus.get("/api/v1/query", params=params).json()
        assert answer["status"] == "success", f"{expr!r}: {answer}"
        return answer["data"]["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1) -> list:
        answer = self.prometheus.get("/api/v1/query_range",
                                     params={"query": expr, "start": start, "end": end, "step": step}).json()
        assert answer["status"] == "success", f"{expr!r}: {answer}"
        return answer["data"]["result"]

    def stack_diagnosis(self) -> str:
        """Each stack container's state, and the log tail of those that do not run (or keep restarting)."""
        listing = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={self.project}",
             "--format", "{{.Names}}\t{{.Status}}"], capture_output=True, text=True, check=False).stdout
        parts = [listing]
        for line in filter(None, listing.splitlines()):
            name, status = line.split("\t", 1)
            if not status.startswith("Up") or "Restarting" in status or "unhealthy" in status:
                logs = subprocess.run(["docker", "logs", "--tail", "40", name], capture_output=True, text=True,
                                      check=False)
                parts.append(f"--- docker logs --tail 40 {name}\n{logs.stdout}{logs.stderr}")
        return "\n".join(parts)

    def slurm_diagnosis(self) -> str:
        """What Slurm says of each node, and on each pod: slurmd's log tail and processes; the tunnels' pids."""
        parts = [self.controller_exec("scontrol show node", check=False).stdout[-3000:],
                 f"tunnel pids: {self.tunnel_pids()}"]
        for pod in self.pod_list():
            shown = self.pod_exec(pod["id"], "tail -30 /var/log/slurm/slurmd.log; ps -eo pid,args | grep -E "
                                  "'slurmd|munged|sshd' | grep -v grep", check=False)
            parts.append(f"--- {pod['name']} ({pod['id']}, {pod['status']})\n{shown.stdout[-3000:]}{shown.stderr[-500:]}")
        return "\n".join(parts)

    def first_site_run(self) -> None:
        """The first site.yml; when it fails, what the stack's containers, Slurm and the pods said then."""
        self.first_run = self.site(check=False)
        if self.first_run.returncode != 0:
            self.first_run_diagnosis = self.stack_diagnosis()
            try:
                self.first_run_diagnosis += "\n--- Slurm and the pods then\n" + self.slurm_diagnosis()
            except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the failure it explains
                self.first_run_diagnosis += f"\n--- Slurm and the pods: not read ({exc!r})"
        self.pod_list()

    def stack_containers(self) -> list[str]:
        return subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True, text=True, check=True).stdout.split()

    # -- pods and tunnels -------------------------------------------------------------------------------
    def pod_list(self) -> list[dict]:
        pods = sorted(self.pods().values(), key=lambda pod: pod["name"])
        self.seen_ids.update(pod["id"] for pod in pods)
        return pods

    def tunnel_pid(self, pod_name: str) -> int | None:
        path = self.tunnel_dir / f"gpuops-local-{pod_name}.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def tunnel_pids(self) -> list[int]:
        pids = []
        for path in self.tunnel_dir.glob("*.pid") if self.tunnel_dir.is_dir() else []:
            try:
                pids.append(int(path.read_text().strip()))
            except ValueError:
                pass
        return [pid for pid in pids if Path(f"/proc/{pid}").exists()]

    def controller_exec(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A shell command in the service plane's slurmctld container, as the job account."""
        return self.controller("sh", "-c", command, check=check)

    def site(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.playbook("./site.yml", *args, check=check)

    def site_again(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """site.yml for an idempotence check: every stage but smoke, whose job submission is a change each run."""
        return self.site(*IDEMPOTENCE_ARGS, *args, check=check)

    def purge(self) -> None:
        """Whatever failed before: kill the tunnels, remove the stack's containers, stop the cloud and its pods."""
        for pid in self.tunnel_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for container in self.stack_containers():
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        self.stop()

    def teardown(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = self.playbook("./teardown.yml", *args, check=check)
        self.torn_down = result.returncode == 0
        return result


def children(pid: int) -> list[int]:
    """Live child processes of pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    if not docker_available():
        pytest.skip("needs a Docker engine (scripts/setup.sh)")
    root = tmp_path_factory.mktemp("site")
    deployment = Site(root)
    try:
        deployment.first_site_run()
        yield deployment
    finally:
        if not deployment.torn_down:
            deployment.teardown(check=False)
        # Whatever failed: no tunnel, stack container or pod is left behind.
        deployment.purge()


@pytest.fixture(scope="session")
def converged(site):
    """The site, after a successful first site.yml (else every dependent test fails with its output)."""
    result = site.first_run
    assert result is not None and result.returncode == 0, (
        f"site.yml failed ({result.returncode if result else 'not run'})\n"
        f"--- stdout\n{result.stdout[-8000:] if result else ''}\n--- stderr\n{result.stderr[-3000:] if result else ''}"
        f"\n--- the stack's containers then\n{getattr(site, 'first_run_diagnosis', '')}"
    )
    return site


def wait_until(probe, timeout: float, interval: float = 0.5):
    """probe() until truthy; return (value, seconds it took) or (None, timeout)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            value = probe()
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            value = None
        if value:
            return value, time.monotonic() - start
        time.sleep(interval)
    return None, timeout


__all__ = ["REPO", "VENV_BIN", "Site", "children", "run", "wait_until"]
