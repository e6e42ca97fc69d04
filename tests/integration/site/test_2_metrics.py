"""GPU metrics from the pods to Prometheus through the tunnels, on the live site (issue 4's end-to-end tests).

Pods' exporters -> autossh tunnels -> Prometheus, with Slurm running the jobs.
Also the tunnels' recovery as Prometheus sees it, every dashboard panel on
live data, and the loopback-only rule for every port of the stack.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from tests.integration.helpers import REPO
from tests.integration.site.conftest import children, wait_until
from tests.unit.test_observability_promql import substitute

pytestmark = pytest.mark.integration

UP_GPU = 'up{job="gpu"}'
DASHBOARDS = REPO / "collections/ansible_collections/gpuops/platform/roles/observability/files/dashboards"


def last_scrape(site, pod: str) -> tuple[float, float] | None:
    """(time, value) of the pod's latest exporter scrape (`timestamp()` of a plain selector is the sample's)."""
    selector = f'up{{job="gpu",pod="{pod}"}}'
    values = site.query(selector)
    stamps = site.query(f"timestamp({selector})")
    if not values or not stamps:
        return None
    return float(stamps[0]["value"][1]), float(values[0]["value"][1])


def gpu_up(site, pod: str, after: float | None = None) -> float | None:
    """Value of the pod's exporter `up`, or None when its last scrape is older than `after`."""
    last = last_scrape(site, pod)
    if last is None or (after is not None and last[0] < after):
        return None
    return last[1]


def scrape_after(site, pod: str, after: float) -> bool:
    """True when Prometheus scraped the pod successfully after `after` (unix time)."""
    last = last_scrape(site, pod)
    return last is not None and last[0] > after and last[1] == 1


def up_series(site, pod: str, start: float, end: float) -> list[float]:
    result = site.query_range(f'up{{job="gpu",pod="{pod}"}}', start, end, step=1)
    return [float(value) for _, value in result[0]["values"]] if result else []


def fresh_up(site, pod: str) -> float:
    """Wait for a successful scrape of the pod from now on; return its time (the window's start)."""
    now = time.time()
    value, _ = wait_until(lambda: scrape_after(site, pod, now), 30)
    assert value, f"{pod} is not being scraped"
    return now - 1


def window(site, pod: str, start: float) -> list[float]:
    """The pod's `up` from start until one scrape interval after now (so the last sample is in)."""
    time.sleep(6)
    return up_series(site, pod, start, time.time())


def shows_gap_and_recovery(values: list[float]) -> bool:
    """1s, then 0s, then 1s again."""
    text = "".join("1" if v == 1 else "0" for v in values)
    return re.search(r"1+0+1+", text) is not None


def test_up_for_every_pod_within_30_s_of_the_tunnels_coming_up(converged):
    site = converged
    pods = [pod["name"] for pod in site.pod_list()]
    site.playbook("tunnel.yml", "-e", "gpuops_tunnel_state=absent")
    value, _ = wait_until(lambda: all(gpu_up(site, pod) == 0 for pod in pods), 60)
    assert value, "up did not drop to 0 with the tunnels closed"
    site.playbook("tunnel.yml")
    opened = time.time()
    value, took = wait_until(lambda: all(scrape_after(site, pod, opened) for pod in pods), 30)
    assert value, f"not every pod was up within 30 s of the tunnels: {site.query(UP_GPU)}"
    print(f"all pods up {took:.1f} s after the tunnels came up")


def test_gpu_util_exists_for_every_simulated_gpu(converged):
    site = converged
    for pod in site.pod_list():
        series = site.query(f'DCGM_FI_DEV_GPU_UTIL{{pod="{pod["name"]}"}}')
        assert len(series) == pod["gpu"]["count"], (pod["name"], series)
        assert {s["metric"]["gpu"] for s in series} == {str(i) for i in range(pod["gpu"]["count"])}
        assert all(s["metric"]["modelName"] and s["metric"]["UUID"] for s in series)


def test_a_gpu_job_has_its_series_labelled_with_its_job_id(converged):
    site = converged
    job_id = site.controller_exec("sbatch --parsable --gpus=1 --job-name=metrics-it --wrap 'sleep 150'").stdout.strip()
    try:
        series, _ = wait_until(lambda: site.query(f'DCGM_FI_DEV_GPU_UTIL{{hpc_job="{job_id}"}}'), 45)
        assert series, f"no GPU series with hpc_job={job_id}"
        assert len(series) == 1
        # The simulated GPU is busy while the job holds it.
        busy, _ = wait_until(lambda: float(site.query(f'DCGM_FI_DEV_GPU_UTIL{{hpc_job="{job_id}"}}')[0]["value"][1]) > 0, 30)
        assert busy
        # Rates and increases need two samples of the job's series: poll a little.
        empty, _ = wait_until(lambda: (lambda e: None if e else "all")(empty_dashboard_panels(site, job_id)), 40)
        assert empty == "all", "panels without data:\n" + "\n".join(empty_dashboard_panels(site, job_id))
    finally:
        site.controller_exec(f"scancel {job_id}", check=False)


def empty_dashboard_panels(site, job_id: str) -> list[str]:
    """Panel queries of the provisioned dashboards, variables set to live values, that return nothing."""
    empty = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        values = {}
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable["type"] == "datasource":
                values[variable["name"]] = "gpuops-prometheus"
                continue
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["query"])
            assert match, f"{path.name}: unexpected variable query {variable['query']!r}"
            metric, label = match.groups()
            found = site.prometheus.get(f"/api/v1/label/{label}/values", params={"match[]": metric}).json()["data"]
            assert found, f"{path.name}: variable {variable['name']} has no value"
            values[variable["name"]] = job_id if label == "hpc_job" else found[0]
        for panel in dashboard["panels"]:
            for inner in [*panel.get("panels", []), panel]:
                for target in inner.get("targets", []):
                    expr = substitute(target["expr"], values)
                    if not site.query(expr):
                        empty.append(f"{path.name} / {inner['title']}: {expr}")
    return empty


def test_killed_tunnel_ssh_comes_back_and_up_shows_the_gap(converged):
    site = converged
    pod = site.pod_list()[1]["name"]
    autossh = site.tunnel_pid(pod)
    assert autossh, f"no tunnel pid for {pod}"
    (ssh,) = children(autossh)
    start = fresh_up(site, pod)
    # Hang the ssh first so that a scrape fails for sure (autossh restarts a
    # killed ssh faster than a scrape interval), then kill it.
    os.kill(ssh, signal.SIGSTOP)
    value, _ = wait_until(lambda: gpu_up(site, pod, after=start) == 0, 40)
    assert value, "up did not show the hung tunnel"
    killed = time.time()
    os.kill(ssh, signal.SIGKILL)
    value, took = wait_until(lambda: scrape_after(site, pod, killed), 15)
    assert value, f"no successful scrape of {pod} within 15 s of killing the tunnel's ssh"
    print(f"metrics flowed again {took:.1f} s after the ssh kill")
    assert children(autossh) not in ([], [ssh])
    assert shows_gap_and_recovery(window(site, pod, start))


def test_network_cut_and_restore_the_tunnel_recovers_by_itself(converged):
    site = converged
    pod = site.pod_list()[1]
    start = fresh_up(site, pod["name"])
    faults = httpx.Client(base_url=f"http://127.0.0.1:{site.port}/_localcloud/pods/{pod['id']}/network",
                          headers={"Authorization": f"Bearer {site.api_key_file.read_text().strip()}"}, timeout=60)
    assert faults.post("/cut").status_code < 300
    try:
        value, _ = wait_until(lambda: gpu_up(site, pod["name"], after=start) == 0, 40)
        assert value, "up did not show the cut"
    finally:
        restored = time.time()
        assert faults.post("/restore").status_code < 300
    value, took = wait_until(lambda: scrape_after(site, pod["name"], restored), 120)
    assert value, "the tunnel did not recover by itself within 120 s of the restore"
    print(f"metrics flowed again {took:.1f} s after the network came back")
    assert shows_gap_and_recovery(window(site, pod["name"], start))


def test_slurm_metrics_reach_prometheus_through_the_api(converged):
    site = converged
    value, _ = wait_until(lambda: site.query('gpuops_slurm_up == 1'), 60)
    assert value
    nodes = site.query("sum(gpuops_slurm_nodes)")
    assert float(nodes[0]["value"][1]) == 2
    total = site.query("gpuops_slurm_gpus_total")
    assert float(total[0]["value"][1]) == sum(pod["gpu"]["count"] for pod in site.pod_list())


def loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host == "::1"


def test_nothing_of_the_stack_or_the_tunnels_listens_beyond_loopback(converged):
    site = converged
    ports = {site.prometheus_port, site.api_port, site.web_port, site.grafana_port,
             *range(site.tunnel_base, site.tunnel_base + 4)}
    listeners = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout.splitlines()
    ours = [line.split()[3] for line in listeners if int(line.split()[3].rsplit(":", 1)[1]) in ports]
    assert {site.prometheus_port, site.api_port, site.web_port} <= {int(a.rsplit(":", 1)[1]) for a in ours}
    assert all(loopback(address) for address in ours), ours
    for pod in site.pod_list():
        on_pod = site.pod_exec(pod["id"], "ss -Hltn").stdout.splitlines()
        exporter = [line.split()[3] for line in on_pod if line.split()[3].endswith(":9400")]
        assert exporter and all(loopback(address) for address in exporter), (pod["name"], exporter)
