"""teardown.yml: never destroys work silently; then no pod, no tunnel, no stack container left.

With keep_stack the stack stays. While a job runs, teardown refuses and lists it; with force the jobs'
output (partial for the running one) is archived before any pod goes, and Slurm's records when the stack goes.
"""

from __future__ import annotations

import json
import tarfile

import pytest

from tests.integration.helpers import recap
from tests.integration.site.conftest import wait_until

pytestmark = pytest.mark.integration


def test_smoke_waits_for_every_node_and_names_the_one_out_of_service(converged):
    """The smoke stage submits nothing until Slurm has every pod's node in service; after its timeout it says which."""
    node = f"{converged.prefix}-1"
    converged.controller("scontrol", "update", f"nodename={node}", "state=drain", "reason=gpuops-test", user="root")
    try:
        result = converged.playbook("smoke.yml", "-e", "gpuops_smoke_timeout=4", check=False)
    finally:
        converged.controller("scontrol", "update", f"nodename={node}", "state=resume", user="root")
    said = " ".join(result.stdout.split())
    assert result.returncode != 0, said[-3000:]
    assert f"Slurm does not have {node} in service after 4 s (sinfo: " in said, said[-3000:]
    assert f"{node} drain" in said
    assert "TASK [Submit the hello job and wait for it]" not in result.stdout
    # Back in service, it passes at once.
    passed = converged.playbook("smoke.yml", "-e", "gpuops_smoke_timeout=60")
    assert "TASK [Submit the hello job and wait for it]" in passed.stdout


def test_bad_keep_stack_is_refused_before_anything_is_removed(converged):
    result = converged.playbook("./teardown.yml", "-e", "keep_stack=maybe", check=False)
    assert result.returncode != 0
    assert "keep_stack must be true or false, not 'maybe'. Nothing was removed." in result.stdout
    assert len([p for p in converged.pod_list() if p["status"] == "RUNNING"]) == 2
    assert converged.tunnel_pids() and converged.stack_containers()


def test_teardown_refuses_while_a_job_runs_and_lists_it(converged):
    job = converged.controller_exec(
        "sbatch --parsable --time=20 --chdir=/var/lib/gpuops/jobs --output=/var/lib/gpuops/jobs/teardown-%j.out "
        "--job-name=at-stake --wrap 'echo partial-output-marker; sleep 900'").stdout.strip()
    running, _ = wait_until(lambda: converged.controller_exec(f"squeue -h -j {job} -o %T").stdout.strip() == "RUNNING",
                            60)
    assert running, "the job did not start"
    converged.job_at_stake = job
    result = converged.teardown(check=False)
    assert result.returncode != 0
    said = " ".join(result.stdout.split())
    assert f"Slurm still has 1 job(s) pending or running: {job} gpuops RUNNING at-stake" in said, said[-3000:]
    assert "Nothing was removed" in said and "-e force=true" in said
    assert len([p for p in converged.pod_list() if p["status"] == "RUNNING"]) == 2
    assert converged.tunnel_pids() and converged.stack_containers()
    assert not (converged.state_dir / "local" / "archive").exists()


def test_teardown_with_keep_stack_keeps_only_the_stack(converged):
    result = converged.teardown("-e", "keep_stack=true", "-e", "force=true")
    assert result.returncode == 0, result.stdout[-4000:]
    # The running job's partial output was archived before its pod went.
    archives = sorted((converged.state_dir / "local" / "archive").glob("*/*-jobs.tar.gz"))
    assert len(archives) == 2, archives
    job = converged.job_at_stake
    found = []
    for archive in archives:
        with tarfile.open(archive) as tar:
            member = f"jobs/teardown-{job}.out"
            if member in tar.getnames():
                found.append(tar.extractfile(member).read().decode())
    # force cancelled it first (Slurm says so at the end of its output), and its node handed the partial
    # output to the service plane too.
    assert len(found) == 1 and found[0].startswith("partial-output-marker\n"), found
    assert f"JOB {job} ON " in found[0] and "CANCELLED" in found[0], found
    kept = converged.stack_dir / "job-output" / "jobs" / job / f"slurm-{job}.out"
    assert kept.read_text() == found[0]
    assert converged.api().get("/pods").json() == {"pods": []}
    assert converged.tunnel_pids() == []
    assert converged.stack_containers(), "the stack should have been kept"
    assert "The local stack was kept" in result.stdout
    # The kept stack still has the whole history: every job of this session, the attempts of the one
    # requeued after its pod was lost, the NODE_FAIL one, the one that ran through a restart of the
    # stack's Slurm, and the one teardown cancelled; job ids never started again.
    rows = converged.controller_exec("sacct -D -X -n -P --allusers --starttime=2020-01-01 "
                                     "--format=JobID,State").stdout.splitlines()
    states: dict[int, list[str]] = {}
    for row in filter(None, rows):
        job_id, state = row.split("|")
        states.setdefault(int(job_id), []).append(state.split()[0])
    history = converged.history_jobs
    assert states[history["survivor"]][0] == "NODE_FAIL" and states[history["survivor"]][-1] == "COMPLETED", states
    assert states[history["once"]] == ["NODE_FAIL"]
    assert states[history["through_restart"]] == ["COMPLETED"]
    assert states[int(job)] == ["CANCELLED"]
    assert 1 in states and sorted(states) == list(range(1, max(states) + 1)), sorted(states)


def test_teardown_leaves_no_pod_tunnel_or_stack_container_and_a_second_changes_nothing(converged):
    result = converged.teardown("-e", "force=true")
    assert result.returncode == 0, result.stdout[-4000:]
    # The stack went, and with it Slurm's accounting: every job's record is kept next to the archive.
    dumps = sorted((converged.state_dir / "local" / "archive").glob("*/sacct.json"))
    assert len(dumps) == 1, dumps
    recorded = {job["job_id"] for job in json.loads(dumps[0].read_text())["jobs"]}
    assert int(converged.job_at_stake) in recorded and 1 in recorded, sorted(recorded)
    # ... and the output the nodes handed to the service plane, which went with the stack.
    kept = sorted((converged.state_dir / "local" / "archive").glob(f"*/job-output/{converged.job_at_stake}/*.out"))
    assert len(kept) == 1 and kept[0].read_text().startswith("partial-output-marker\n"), kept
    assert converged.api().get("/pods").json() == {"pods": []}
    assert converged.containers() == []
    assert converged.tunnel_pids() == []
    assert converged.stack_containers() == []
    again = converged.teardown("-e", "force=true")
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout[-3000:]
