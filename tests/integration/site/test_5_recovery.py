"""A pod lost behind gpuops' back comes back with the next site.yml: new pod, back in Slurm, metrics back.

The job it was running is not lost: Slurm records NODE_FAIL for that attempt, requeues the job, and it
completes on the replacement pod, which rejoins under the same node name.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import host_key_alias, recap
from tests.integration.site.conftest import wait_until
from tests.integration.site.test_2_metrics import scrape_after

pytestmark = pytest.mark.integration


def test_interrupted_pod_is_recreated_rejoins_slurm_and_reports_metrics(converged):
    site = converged
    before = {pod["name"]: pod["id"] for pod in site.pod_list()}
    victim = f"{site.prefix}-1"
    job = site.controller_exec(
        f"sbatch --parsable -w {victim} --time=10 --chdir=/var/lib/gpuops/jobs "
        "--output=/var/lib/gpuops/jobs/survivor-%j.out --job-name=survivor --wrap 'sleep 15; echo survived'"
    ).stdout.strip()
    started, _ = wait_until(lambda: site.controller_exec(f"squeue -h -j {job} -o %T").stdout.strip() == "RUNNING", 60)
    assert started, "the job did not start on the pod"
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
    # Isolated pods: a job runs on one node; one on each, as the job account.
    for node in states:
        site.controller_exec(f"sbatch --wait --quiet -w {node} --time=1 --chdir=/tmp --output=/dev/null "
                             "--wrap 'test $(id -un) = gpuops'")
    # Metrics back in Prometheus for the pod.
    since = time.time()
    value, _ = wait_until(lambda: scrape_after(site, victim, since), 60)
    assert value, f"{victim} ({new_id}) is not scraped again"
    assert site.query(f'DCGM_FI_DEV_GPU_UTIL{{pod="{victim}"}}')
    # The job: its first attempt ended NODE_FAIL with the pod, Slurm requeued it (eligible again after its
    # 2-minute requeue delay), and it completed on the replacement pod. Accounting has both attempts.
    def attempts():
        out = site.controller_exec(f"sacct -D -X -n -P -j {job} --format=State,NodeList").stdout.split()
        return out if out and out[-1].startswith("COMPLETED|") else None
    history, _ = wait_until(attempts, 300, interval=5)
    assert history and history[0] == f"NODE_FAIL|{victim}" and history[-1] == f"COMPLETED|{victim}", history
    assert site.pod_exec(new_id, f"cat /var/lib/gpuops/jobs/survivor-{job}.out").stdout == "survived\n"


def test_restarted_pod_is_repinned_reconfigured_and_converged(converged):
    """A restart keeps the pod id but wipes its disk and makes new host keys (RunPod's images): site.yml re-pins."""
    site = converged
    victim = f"{site.prefix}-1"
    before = site.pods()[victim]
    old_alias = host_key_alias(before)
    known_hosts = site.state_dir / "local" / "ssh" / "known_hosts"
    assert old_alias in known_hosts.read_text()
    answer = site.api().post(f"/pods/{before['id']}/action", json={"action": "restart"})
    assert answer.status_code == 200, answer.text
    restarted, _ = wait_until(lambda: (lambda p: p if p.get("status") == "RUNNING" and p["ssh"]["direct"]
                                       and p["startedAt"] != before["startedAt"] else None)(site.pods()[victim]), 60)
    assert restarted, "the pod did not come back RUNNING with a new start"
    assert restarted["id"] == before["id"]
    # The disk was wiped: nothing of gpuops is left on the pod.
    assert site.pod_exec(before["id"], "test -e /etc/slurm/slurm.conf", check=False).returncode != 0

    result = site.site()
    hosts = recap(result.stdout)
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in hosts.values()), hosts
    # The new host key is pinned under the new start's alias; the old alias of that pod is gone.
    pinned = known_hosts.read_text()
    assert host_key_alias(restarted) in pinned and old_alias not in pinned
    sinfo = site.controller_exec("sinfo -h -N -o '%N %t'").stdout.split("\n")
    states = dict(line.split() for line in sinfo if line.strip())
    assert len(states) == 2 and all(state in ("idle", "mix", "alloc") for state in states.values()), states
    # Isolated pods: a job runs on one node; one on each, as the job account.
    for node in states:
        site.controller_exec(f"sbatch --wait --quiet -w {node} --time=1 --chdir=/tmp --output=/dev/null "
                             "--wrap 'test $(id -un) = gpuops'")
    since = time.time()
    value, _ = wait_until(lambda: scrape_after(site, victim, since), 60)
    assert value, f"{victim} is not scraped again after its restart"
