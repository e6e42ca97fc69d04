"""A pod lost behind gpuops' back comes back with the next site.yml: new pod, back in Slurm, metrics back.

The job it was running is not lost: Slurm records NODE_FAIL for that attempt, requeues the job, and it
completes on the replacement pod, which rejoins under the same node name.
"""

from __future__ import annotations

import subprocess
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
    # One that must not run twice: it ends NODE_FAIL with the pod, recorded and shown.
    once = site.controller_exec(
        f"sbatch --parsable -w {victim} --no-requeue --time=10 --chdir=/var/lib/gpuops/jobs "
        "--output=/var/lib/gpuops/jobs/once-%j.out --job-name=once --wrap 'sleep 600'"
    ).stdout.strip()
    started, _ = wait_until(lambda: site.controller_exec(f"squeue -h -j {job},{once} -o %T").stdout.split()
                            == ["RUNNING", "RUNNING"], 60)
    assert started, "the jobs did not start on the pod"
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
    # ... and handed its output to the service plane when it ended there.
    kept = site.stack_dir / "job-output" / "jobs" / job / f"slurm-{job}.out"
    assert kept.read_text() == "survived\n"
    assert site.controller_exec(f"sacct -X -n -P -j {once} --format=State").stdout.split() == ["NODE_FAIL"]
    # The API and the alert show both: the requeued job, with the node that failed under it, and the
    # NODE_FAIL one.
    with site.api_client() as api:
        survivor = api.get(f"/api/v1/jobs/{job}").json()
        assert survivor["state"] == "COMPLETED" and survivor["requeues"] >= 1, survivor
        failed = api.get(f"/api/v1/jobs/{once}").json()
        assert failed["state"] == "NODE_FAIL" and failed["end_time"], failed
        listed = api.get("/api/v1/jobs", params={"state": "NODE_FAIL"}).json()["jobs"]
        assert int(once) in [entry["id"] for entry in listed]
    site.history_jobs = {"survivor": int(job), "once": int(once)}


def test_a_restart_of_the_stacks_slurm_mid_job_loses_nothing(converged):
    """slurmctld, slurmdbd, MariaDB and munged restart while a job runs: it finishes, recorded in full."""
    site = converged
    job = site.controller_exec(
        "sbatch --parsable --time=5 --chdir=/var/lib/gpuops/jobs --output=/var/lib/gpuops/jobs/restart-%j.out "
        "--job-name=through-restart --wrap 'echo before; sleep 25; echo after'").stdout.strip()
    running, _ = wait_until(lambda: site.controller_exec(f"squeue -h -j {job} -o %T").stdout.strip() == "RUNNING", 60)
    assert running, "the job did not start"
    services = ["munge", "mariadb", "slurmdbd", "slurmctld", "slurmrestd"]
    containers = [f"{site.project}-{name}-1" for name in services]
    restarted = subprocess.run(["docker", "restart", "--time", "10", *containers],
                               capture_output=True, text=True, check=False)
    assert restarted.returncode == 0, restarted.stderr

    def record():
        out = site.controller_exec(f"sacct -X -n -P -j {job} --format=State,ExitCode,ElapsedRaw,NodeList,Start,End",
                                   check=False).stdout.split()
        return out if out and out[0].startswith("COMPLETED|") else None
    row, _ = wait_until(record, 180, interval=2)
    assert row, site.controller_exec(f"sacct -X -j {job}", check=False).stdout
    state, exit_code, elapsed, nodes, start, end = row[0].split("|")
    assert exit_code == "0:0" and int(elapsed) >= 25 and nodes and start != "Unknown" and end != "Unknown", row
    kept = site.stack_dir / "job-output" / "jobs" / job / f"slurm-{job}.out"
    arrived, _ = wait_until(kept.exists, 30)
    assert arrived and kept.read_text() == "before\nafter\n"
    site.history_jobs["through_restart"] = int(job)


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
