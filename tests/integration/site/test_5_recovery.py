"""A pod deleted behind gpuops' back comes back with the next site.yml: new pod, back in Slurm, metrics back."""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import recap
from tests.integration.site.conftest import wait_until
from tests.integration.site.test_2_metrics import scrape_after

pytestmark = pytest.mark.integration


def test_interrupted_pod_is_recreated_rejoins_slurm_and_reports_metrics(converged):
    site = converged
    before = {pod["name"]: pod["id"] for pod in site.pod_list()}
    victim = f"{site.prefix}-1"
    faults = site.api()
    answer = faults.post(f"http://127.0.0.1:{site.port}/_localcloud/pods/{before[victim]}/interrupt")
    assert answer.status_code < 300, answer.text
    gone, _ = wait_until(lambda: site.pods().get(victim, {}).get("status") != "RUNNING", 60)
    assert gone, "the interrupt did not stop the pod"

    result = site.site()
    hosts = recap(result.stdout)
    assert all(counts["failed"] == 0 for counts in hosts.values()), hosts
    after = {pod["name"]: pod for pod in site.pod_list()}
    assert after[victim]["status"] == "RUNNING"
    new_id = after[victim]["id"]
    # Back in Slurm: both nodes take jobs.
    sinfo = site.controller_exec("sinfo -h -N -o '%N %t'").stdout.split("\n")
    states = dict(line.split() for line in sinfo if line.strip())
    assert len(states) == 2 and all(state in ("idle", "mix", "alloc") for state in states.values()), states
    assert "2" == site.controller_exec("srun -N2 hostname | sort -u | wc -l").stdout.strip()
    # Metrics back in Prometheus for the pod.
    since = time.time()
    value, _ = wait_until(lambda: scrape_after(site, victim, since), 60)
    assert value, f"{victim} ({new_id}) is not scraped again"
    assert site.query(f'DCGM_FI_DEV_GPU_UTIL{{pod="{victim}"}}')
