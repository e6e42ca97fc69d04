"""The observability stack (playbooks/stack.yml) on this machine, with fake pods.

No pod is needed: each fake pod's "tunnel" port (127.0.0.1:<base + 2*i>, as
the tunnels would open it) is served by a tiny HTTP server with a /metrics
page in Prometheus' text format and DCGM exporter metric names, one GPU
series carrying an hpc_job label. A fake gpuops API serves the
gpuops_slurm_* metrics, added through observability_extra_scrape_configs.

The stack gets its own Compose project name, ports and state directory, so
it never touches the user's stack. About 1 minute (plus the first build of
the offline Prometheus image, about 10-60 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.helpers import REPO, VENV_BIN, docker_available, free_port, free_port_block, recap, run
from tests.unit.test_observability_promql import substitute

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (scripts/setup.sh)"),
]

_DEFAULTS = yaml.safe_load(
    (REPO / "collections/ansible_collections/gpuops/platform/roles/observability/defaults/main.yml").read_text())
# Grafana as the role pulls and runs it: <repository>@<digest>.
GRAFANA_IMAGE = _DEFAULTS["observability_grafana_image"].rsplit(":", 1)[0] + "@" + _DEFAULTS["observability_grafana_image_digest"]
GRAFANA_WARNING = "WARNING: Grafana is not deployed"

# Fake pods: name -> (pod id, GPU type, role, GPUs as (index, hpc_job or None)).
PODS = {
    "itpod-0": ("it0aaaa", "NVIDIA GeForce RTX 4090", "controller", [(0, None)]),
    "itpod-1": ("it1bbbb", "NVIDIA A100 80GB PCIe", "compute", [(0, "4242"), (1, None)]),
}


def dcgm_page(pod: str, gpus: list[tuple[int, str | None]]) -> str:
    """A DCGM exporter /metrics page; the energy counter grows with time."""
    now = time.time()
    values = {
        "DCGM_FI_DEV_SM_CLOCK": ("gauge", 1410), "DCGM_FI_DEV_MEM_CLOCK": ("gauge", 1215),
        "DCGM_FI_DEV_GPU_TEMP": ("gauge", 41), "DCGM_FI_DEV_MEMORY_TEMP": ("gauge", 39),
        "DCGM_FI_DEV_POWER_USAGE": ("gauge", 71.5),
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("counter", int(now * 71500) % 10**12),
        "DCGM_FI_DEV_GPU_UTIL": ("gauge", 87), "DCGM_FI_DEV_MEM_COPY_UTIL": ("gauge", 23),
        "DCGM_FI_DEV_FB_FREE": ("gauge", 20000), "DCGM_FI_DEV_FB_USED": ("gauge", 4564),
        "DCGM_FI_DEV_XID_ERRORS": ("gauge", 0), "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": ("counter", 0),
    }
    lines = []
    for metric, (kind, value) in values.items():
        lines += [f"# HELP {metric} {metric} (gpuops test fake).", f"# TYPE {metric} {kind}"]
        for index, job in gpus:
            labels = (f'gpu="{index}",UUID="GPU-{pod}-{index}",device="nvidia{index}",'
                      f'modelName="fake GPU",Hostname="{pod}"')
            if job:
                labels += f',hpc_job="{job}"'
            lines.append(f"{metric}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


SLURM_PAGE = "\n".join(
    ["# TYPE gpuops_slurm_nodes gauge"]
    + [f'gpuops_slurm_nodes{{state="{state}"}} {n}' for state, n in
       [("idle", 1), ("mixed", 1), ("allocated", 0), ("down", 0), ("drained", 0), ("draining", 0)]]
    + ["# TYPE gpuops_slurm_jobs gauge"]
    + [f'gpuops_slurm_jobs{{state="{state}"}} {n}' for state, n in
       [("pending", 2), ("running", 1), ("completed", 5), ("failed", 0), ("cancelled", 0)]]
    + ["# TYPE gpuops_slurm_gpus_allocated gauge", "gpuops_slurm_gpus_allocated 1",
       "# TYPE gpuops_slurm_gpus_total gauge", "gpuops_slurm_gpus_total 3",
       # The API's job cost series (app/api/gpuops_api/metrics.py): one priced job.
       "# TYPE gpuops_slurm_job_cost_usd gauge",
       'gpuops_slurm_job_cost_usd{job_id="7",state="completed",user="gpuops"} 0.0345',
       # Its spend per UTC day and user, from Slurm's accounting (the Slurm dashboard's "Spend per day").
       "# TYPE gpuops_slurm_spend_usd gauge",
       'gpuops_slurm_spend_usd{day="2026-12-05",user="gpuops"} 0.0345']
) + "\n"


def serve(port: int, page) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = page().encode() if self.path.startswith("/metrics") else b"not found\n"
            self.send_response(200 if self.path.startswith("/metrics") else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Stack:
    """One test deployment of the stack: its inventory, extra vars and Prometheus."""

    def __init__(self, root: Path, **overrides) -> None:
        self.project = f"gpuopsit{uuid.uuid4().hex[:6]}"
        self.state_dir = root / "state"
        self.stack_dir = self.state_dir / "stack"
        self.base = free_port_block(2 * len(PODS))
        self.prometheus_port = free_port()
        self.grafana_port = free_port()
        self.alertmanager_port = free_port()
        self.api_port = free_port()
        self.inventory = root / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump({"all": {"children": {
            # Each pod's exporter port is its own host variable (gpuops' inventories: from the pod's slot).
            "gpu_pods": {"hosts": {name: {"runpod_pod_id": pid, "runpod_gpu_type_id": gpu,
                                          "gpuops_tunnel_exporter_local_port": self.base + 2 * i}
                                   for i, (name, (pid, gpu, _role, _)) in enumerate(sorted(PODS.items()))}},
            "slurm_controller": {"hosts": {"itpod-0": None}},
        }}}))
        extra = {
            "gpuops_state_dir": str(self.state_dir),
            "gpuops_tunnel_port_base": self.base,
            "observability_project_name": self.project,
            # The observability role alone (fake pods have no Slurm for the app, nor for a controller).
            "app_enabled": False,
            "slurm_controller_enabled": False,
            "observability_prometheus_port": self.prometheus_port,
            "observability_grafana_port": self.grafana_port,
            "observability_alertmanager_port": self.alertmanager_port,
            "observability_extra_scrape_configs": [{
                "job_name": "gpuops-api", "scrape_interval": "5s",
                "static_configs": [{"targets": [f"127.0.0.1:{self.api_port}"]}],
            }],
            **overrides,
        }
        self.extra_file = root / "extra.json"
        self.extra_file.write_text(json.dumps(extra))
        self.prometheus = httpx.Client(base_url=f"http://127.0.0.1:{self.prometheus_port}", timeout=10)

    def playbook(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "ANSIBLE_INVENTORY_ENABLED": "yaml"}
        return run([str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), "playbooks/stack.yml",
                    "-e", f"@{self.extra_file}", *args], check=check, env=env, timeout=600)

    def query(self, expr: str) -> list:
        answer = self.prometheus.get("/api/v1/query", params={"query": expr}).json()
        assert answer["status"] == "success", f"{expr!r}: {answer}"
        return answer["data"]["result"]

    def label_values(self, metric: str, label: str) -> list[str]:
        return self.prometheus.get(f"/api/v1/label/{label}/values", params={"match[]": metric}).json()["data"]

    def containers(self) -> list[str]:
        return subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True, text=True, check=True).stdout.split()

    def volumes(self) -> list[str]:
        return subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.project}"],
            capture_output=True, text=True, check=True).stdout.split()

    def cleanup(self) -> None:
        for container in self.containers():
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        for volume in self.volumes():
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)


def wait_for(what: str, probe, timeout: float):
    """Call probe() until it returns a true value; fail with its last answer after timeout seconds."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout} s; last: {last!r}")


def variable_values(stack: Stack, dashboard: dict) -> dict[str, str]:
    """Real values for the dashboard's variables, from the live Prometheus (regex of all values, as 'All')."""
    values = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            values[variable["name"]] = "gpuops-prometheus"
            continue
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"])
        assert match, f"unexpected variable query {variable['query']!r}"
        found = stack.label_values(*match.groups())
        assert found, f"variable {variable['name']}: {variable['query']} has no value"
        values[variable["name"]] = found[0]
    return values


def panel_exprs(dashboard: dict) -> list[tuple[str, str]]:
    result = []
    for panel in dashboard["panels"]:
        for inner in [*panel.get("panels", []), panel]:
            for target in inner.get("targets", []):
                result.append((inner["title"], target["expr"]))
    return result


def loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host == "::1"


@pytest.fixture
def make_stack(tmp_path):
    """Stack(**extra vars) with its fake pods and fake gpuops API serving; removed afterwards."""
    made, servers = [], []

    def make(**overrides) -> Stack:
        deployment = Stack(tmp_path, **overrides)
        made.append(deployment)
        servers.extend(serve(deployment.base + 2 * i, lambda pod=name, gpus=spec[3]: dcgm_page(pod, gpus))
                       for i, (name, spec) in enumerate(sorted(PODS.items())))
        servers.append(serve(deployment.api_port, lambda: SLURM_PAGE))
        return deployment

    try:
        yield make
    finally:
        for deployment in made:
            deployment.cleanup()
        for server in servers:
            server.shutdown()


@pytest.fixture
def stack(make_stack):
    return make_stack()


def proc_listeners(pids: set[str]) -> list[str]:
    """Like `ss -Hltnp` for these PIDs, from /proc (where iproute2 is missing): "LISTEN 0 0 addr:port"."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    lines = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            hexaddr, hexport = fields[1].split(":")
            raw = bytes.fromhex(hexaddr)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            addr = socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, raw)
            addr = addr if width == 8 else f"[{addr}]"
            lines.append(f"LISTEN 0 0 {addr}:{int(hexport, 16)} * users:((pid={inodes[fields[9]]}))")
    return lines


def listeners(stack: Stack) -> list[str]:
    """The listening sockets (`ss -Hltnp` lines) of the stack's processes: its containers' host PIDs."""
    pids = set()
    for cid in stack.containers():
        top = subprocess.run(["docker", "top", cid, "-eo", "pid"], capture_output=True, text=True, check=True)
        pids |= {line.strip() for line in top.stdout.splitlines()[1:] if line.strip()}
    assert pids, "the stack runs no process"
    if shutil.which("ss") is None:
        return proc_listeners(pids)
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return [line for line in listening.splitlines() if set(re.findall(r"pid=(\d+)", line)) & pids]


def test_stack_deploys_scrapes_the_pods_and_tears_down(stack):
    grafana_present = subprocess.run(["docker", "image", "inspect", GRAFANA_IMAGE],
                                     capture_output=True, check=False).returncode == 0

    # 1. Deploy.
    first = stack.playbook()
    assert recap(first.stdout)["localhost"]["failed"] == 0
    if not grafana_present:
        # Said once, clearly, and nothing failed.
        assert first.stdout.count(GRAFANA_WARNING) == 1, first.stdout[-3000:]
    compose = (stack.stack_dir / "compose.yaml").read_text()
    assert f"name: {stack.project}" in compose
    assert ("grafana:" in compose) == grafana_present

    # 2. Prometheus is up and scrapes every fake pod, with the pod labels, within 30 s.
    wait_for("Prometheus ready", lambda: stack.prometheus.get("/-/ready").status_code == 200, 30)

    def gpu_targets_up():
        targets = [t for t in stack.prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
                   if t["labels"]["job"] == "gpu"]
        return len(targets) == len(PODS) and all(t["health"] == "up" for t in targets) and targets

    targets = wait_for("every GPU target up", gpu_targets_up, 30)
    by_pod = {t["labels"]["pod"]: t for t in targets}
    for i, (name, (pod_id, gpu_type, role, _)) in enumerate(sorted(PODS.items())):
        labels = by_pod[name]["labels"]
        assert labels["pod_id"] == pod_id and labels["gpu_type"] == gpu_type and labels["role"] == role
        assert labels["instance"] == name
        assert by_pod[name]["scrapeUrl"] == f"http://127.0.0.1:{stack.base + 2 * i}/metrics"
    up = wait_for("up == 1 for every pod", lambda: len(stack.query('up{job="gpu"} == 1')) == len(PODS), 30)
    assert up

    # 3. promtool accepts what was deployed (inside the running Prometheus container).
    prometheus = [c for c in stack.containers() if "prometheus" in subprocess.run(
        ["docker", "inspect", "-f", "{{ index .Config.Labels \"com.docker.compose.service\" }}", c],
        capture_output=True, text=True, check=True).stdout]
    assert len(prometheus) == 1
    for args in (["check", "config", "/etc/prometheus/prometheus.yml"],
                 ["check", "rules", "/etc/prometheus/rules/gpuops-alerts.yml"]):
        checked = subprocess.run(["docker", "exec", prometheus[0], "promtool", *args],
                                 capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = stack.prometheus.get("/api/v1/rules").json()["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} >= {
        "GpuopsGpuExporterDown", "GpuopsGpuTemperatureHigh", "GpuopsGpuXidError",
        "GpuopsGpuUncorrectableRemappedRows", "GpuopsGpuIdle"}

    # 4. Every panel query of every provisioned dashboard returns data from the live Prometheus.
    dashboards = sorted((stack.stack_dir / "grafana" / "dashboards").glob("*.json"))
    assert [d.stem for d in dashboards] == ["gpuops-gpu-fleet", "gpuops-gpu-jobs", "gpuops-slurm"]

    def every_query_answers():
        empty = []
        for path in dashboards:
            dashboard = json.loads(path.read_text())
            values = variable_values(stack, dashboard)
            for title, expr in panel_exprs(dashboard):
                concrete = substitute(expr, values)
                if not stack.query(concrete):
                    empty.append(f"{path.stem} / {title}: {concrete}")
        assert not empty, "queries without data:\n" + "\n".join(empty)
        return True

    wait_for("every dashboard query answering", every_query_answers, 30)
    assert stack.label_values("DCGM_FI_DEV_GPU_UTIL", "hpc_job") == ["4242"]

    # 5. Every service runs as a non-root user, with every capability dropped and no new privileges;
    #    Prometheus and Alertmanager on a read-only root filesystem.
    for cid in stack.containers():
        info = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True,
                                         check=True).stdout)[0]
        service = info["Config"]["Labels"]["com.docker.compose.service"]
        user = info["Config"]["User"].split(":")[0]
        assert user not in ("", "0", "root"), (service, info["Config"]["User"])
        assert info["HostConfig"]["CapDrop"] == ["ALL"] and not info["HostConfig"]["CapAdd"], service
        assert "no-new-privileges:true" in info["HostConfig"]["SecurityOpt"], service
        if service in ("prometheus", "alertmanager"):
            assert info["HostConfig"]["ReadonlyRootfs"] is True, service

    # 6. Nothing of the stack listens on a non-loopback address.
    ours = listeners(stack)
    assert any(f":{stack.prometheus_port} " in line for line in ours), ours
    for line in ours:
        assert loopback(line.split()[3]), f"listens beyond loopback: {line}"
    published = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={stack.project}",
                                "--format", "{{ .Ports }}"], capture_output=True, text=True, check=True).stdout
    for mapping in re.findall(r"([0-9a-f.:\[\]]+):\d+->", published):
        assert loopback(mapping + ":0"), f"published beyond loopback: {published}"

    # 6. A second run changes nothing, nor does check mode.
    second = stack.playbook()
    assert recap(second.stdout)["localhost"]["changed"] == 0, second.stdout[-4000:]
    checked = stack.playbook("--check")
    assert recap(checked.stdout)["localhost"]["changed"] == 0, checked.stdout[-4000:]

    # 7. Teardown removes the containers, the volumes and the stack directory.
    down = stack.playbook("-e", "observability_state=absent", "-e", "observability_purge=true")
    assert recap(down.stdout)["localhost"]["changed"] > 0
    assert stack.containers() == [] and stack.volumes() == []
    assert not stack.stack_dir.exists()
    with pytest.raises(httpx.HTTPError):
        stack.prometheus.get("/-/ready")
    again = stack.playbook("-e", "observability_state=absent", "-e", "observability_purge=true")
    assert recap(again.stdout)["localhost"]["changed"] == 0


# A stand-in for Grafana (no Grafana image or package can be had offline): it
# answers /api/health on GF_SERVER_HTTP_ADDR:GF_SERVER_HTTP_PORT, as Grafana
# does, and reports what the container was given (environment, with the
# password hashed, and the provisioned files), so the Grafana half of the
# role is exercised exactly as it would run Grafana.
FAKE_GRAFANA = r'''
import hashlib, json, os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/health":
            body = {"database": "ok", "version": "fake"}
        elif self.path == "/_fake/state":
            env = {k: v for k, v in os.environ.items() if k.startswith("GF_")}
            password = env.pop("GF_SECURITY_ADMIN_PASSWORD", "")
            env["password_sha256"] = hashlib.sha256(password.encode()).hexdigest()
            files = {}
            for root in ("/etc/grafana/provisioning", "/etc/gpuops/dashboards"):
                for folder, _, names in os.walk(root):
                    for name in names:
                        with open(os.path.join(folder, name)) as handle:
                            files[os.path.join(folder, name)] = handle.read()
            body = {"env": env, "files": files, "uid": os.getuid()}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

HTTPServer((os.environ["GF_SERVER_HTTP_ADDR"], int(os.environ["GF_SERVER_HTTP_PORT"])), Handler).serve_forever()
'''


@pytest.fixture
def fake_grafana_image(tmp_path):
    tag = f"gpuops-test/fake-grafana:{uuid.uuid4().hex[:8]}"
    context = tmp_path / "fake-grafana"
    context.mkdir()
    (context / "fake_grafana.py").write_text(FAKE_GRAFANA)
    (context / "Dockerfile").write_text(
        "FROM gpuops/debian-base:bookworm\nCOPY fake_grafana.py /fake_grafana.py\n"
        'USER 472\nENTRYPOINT ["python3", "-u", "/fake_grafana.py"]\n')
    run(["docker", "build", "-q", "-t", tag, str(context)])
    try:
        yield tag
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def test_grafana_gets_its_provisioning_and_a_private_password(make_stack, fake_grafana_image):
    # A local image has no registry digest: pinned by tag only ('').
    stack = make_stack(observability_grafana_image=fake_grafana_image, observability_grafana_image_digest="")
    first = stack.playbook()
    assert GRAFANA_WARNING not in first.stdout
    assert "grafana:" in (stack.stack_dir / "compose.yaml").read_text()

    # The password: generated, 0600, never printed; the env file 0600 too.
    password_file = stack.stack_dir / "grafana-admin-password"
    password = password_file.read_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert (stack.stack_dir / "grafana.env").stat().st_mode & 0o777 == 0o600
    assert password not in first.stdout + first.stderr

    grafana = httpx.Client(base_url=f"http://127.0.0.1:{stack.grafana_port}", timeout=10)
    assert grafana.get("/api/health").json()["database"] == "ok"
    state = grafana.get("/_fake/state").json()
    env = state["env"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_USER"] == "admin"
    assert env["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert env["password_sha256"] == hashlib.sha256(password.encode()).hexdigest()
    datasource = yaml.safe_load(state["files"]["/etc/grafana/provisioning/datasources/gpuops.yml"])
    assert datasource["datasources"][0]["url"] == f"http://127.0.0.1:{stack.prometheus_port}"
    assert datasource["datasources"][0]["uid"] == "gpuops-prometheus"
    provider = yaml.safe_load(state["files"]["/etc/grafana/provisioning/dashboards/gpuops.yml"])
    assert provider["providers"][0]["options"]["path"] == "/etc/gpuops/dashboards"
    assert sorted(name for name in state["files"] if name.startswith("/etc/gpuops/dashboards/")) == [
        f"/etc/gpuops/dashboards/{name}.json" for name in ("gpuops-gpu-fleet", "gpuops-gpu-jobs", "gpuops-slurm")]
    # Grafana reaches Prometheus on the host's loopback through that URL.
    assert httpx.get(datasource["datasources"][0]["url"] + "/-/ready", timeout=10).status_code == 200

    ours = listeners(stack)
    assert any(f":{stack.grafana_port} " in line for line in ours), ours
    for line in ours:
        assert loopback(line.split()[3]), f"listens beyond loopback: {line}"

    # Idempotent: the password is kept, nothing changes.
    second = stack.playbook()
    assert recap(second.stdout)["localhost"]["changed"] == 0, second.stdout[-4000:]
    assert password_file.read_text().strip() == password

    stack.playbook("-e", "observability_state=absent", "-e", "observability_purge=true")
    assert stack.containers() == [] and stack.volumes() == []


def test_a_port_held_by_another_program_fails_the_deploy_with_the_port_to_change(make_stack):
    """Another program answers on the Alertmanager port (say another deployment's
    Alertmanager): the readiness URL answers 200, yet this project's container
    cannot bind and crash-loops. The deploy must fail and say which setting to change."""

    class Squatter(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args):
            pass

    squatter = ThreadingHTTPServer(("127.0.0.1", free_port()), Squatter)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    try:
        stack = make_stack(observability_alertmanager_port=squatter.server_address[1])
        result = stack.playbook(check=False)
        assert result.returncode != 0, result.stdout[-3000:]
        flat = " ".join(result.stdout.split())
        assert f"{stack.project}-alertmanager-1 is " in flat, result.stdout[-3000:]
        assert f"observability_alertmanager_port ({squatter.server_address[1]})" in flat
        assert "port already in use" in flat
        # The container's own words, from its log.
        assert "address already in use" in flat
        # The other program was left alone: it still holds its port and answers.
        with urllib.request.urlopen(f"http://127.0.0.1:{squatter.server_address[1]}/", timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b"ok\n"
    finally:
        squatter.shutdown()


# Every recorded page has more labels than 3 per sample, a value longer than 4 characters (the GPU's model
# name), and is far larger than 100 bytes.
BOUNDS = [
    ("observability_gpu_label_limit", 3, "label_limit exceeded"),
    ("observability_gpu_label_value_length_limit", 4, "label_value_length_limit exceeded"),
    ("observability_gpu_body_size_limit", "100B", "body size limit exceeded"),
]


def test_a_scrape_beyond_each_bound_fails_and_stores_nothing(make_stack):
    """Each of the pod scrape job's bounds is in force: a page beyond it marks the target down and is not
    stored. One stack, deployed again with each bound in turn (the others at their defaults)."""
    stack = make_stack()  # not deployed yet: the first run below already has a bound, so nothing is ever stored
    for option, value, error in BOUNDS:
        assert recap(stack.playbook("-e", json.dumps({option: value})).stdout)["localhost"]["failed"] == 0
        wait_for("Prometheus ready", lambda: stack.prometheus.get("/-/ready").status_code == 200, 30)

        def refused(error=error):
            targets = [t for t in stack.prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
                       if t["labels"]["job"] == "gpu"]
            return len(targets) == len(PODS) and all(error in t["lastError"] for t in targets) and targets

        targets = wait_for(f"every GPU target refused with {error!r}", refused, 45)
        assert all(t["health"] == "down" for t in targets), targets
        assert stack.query("DCGM_FI_DEV_GPU_UTIL") == []


def test_a_pod_that_sends_more_samples_than_the_limit_is_cut_off(make_stack):
    """Anything on a pod can answer on its exporter's port: a scrape over the limit
    must fail and store nothing, while the other pods keep being scraped."""
    samples = {name: len([line for line in dcgm_page(name, spec[3]).splitlines() if not line.startswith("#")])
               for name, spec in PODS.items()}
    # 12 samples from the 1-GPU pod, 24 from the 2-GPU one: a limit between the two.
    limit = (min(samples.values()) + max(samples.values())) // 2
    stack = make_stack(observability_gpu_sample_limit=limit)
    assert recap(stack.playbook().stdout)["localhost"]["failed"] == 0
    wait_for("Prometheus ready", lambda: stack.prometheus.get("/-/ready").status_code == 200, 30)
    big = max(samples, key=samples.get)

    def scraped():
        targets = {t["labels"]["pod"]: t for t in stack.prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
                   if t["labels"]["job"] == "gpu"}
        return (len(targets) == len(PODS) and all(t["lastScrape"] != "0001-01-01T00:00:00Z" for t in targets.values())
                and targets)

    targets = wait_for("every GPU target scraped once", scraped, 30)
    assert targets[big]["health"] == "down" and "sample limit exceeded" in targets[big]["lastError"], targets[big]
    assert all(t["health"] == "up" for name, t in targets.items() if name != big), targets
    assert stack.query(f'DCGM_FI_DEV_GPU_UTIL{{pod="{big}"}}') == []
