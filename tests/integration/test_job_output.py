"""Finished jobs' output kept on the service plane (issue 11, point 8), for real: one pod of the local cloud as
the node, Slurm's controller, the API and the web app on a service plane of the test's own.

When a job ends, its node's Epilog reads the job's output as the job's user and hands it through the pod's
tunnel to the API, which keeps it in <stack>/job-output/jobs/<id>/. submit_job.yml copies it from there,
the API serves it from there with no SSH to a pod, and teardown keeps it (with force, the partial output of
a running job too). A job can neither read its node's token nor pass off a key as its output.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import Cluster, changed_tasks, docker_available, free_port, recap, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

SUBMIT = "./submit_job.yml"


class OutputCluster(Cluster):
    """One pod, the API on ports of the test's own, a folder for scripts and one for what submit_job.yml fetches."""

    def __init__(self, root: Path) -> None:
        self.api_port, self.web_port = free_port(), free_port()
        self.output_port = free_port()
        super().__init__(root, "gpuopsout", app_api_port=self.api_port, app_web_port=self.web_port,
                         slurm_job_output_port=self.output_port, provision_pod_count=1)
        self.scripts = root / "scripts"
        self.scripts.mkdir()
        self.results = root / "results"

    @property
    def stack(self) -> Path:
        return self.dep.state_dir / "stack"

    def kept(self, job: int) -> Path:
        return self.stack / "job-output" / "jobs" / str(job)

    def submit(self, name: str, body: str, *args: str, check: bool = True):
        path = self.scripts / name
        path.write_text(body)
        path.chmod(0o755)
        return self.dep.playbook(SUBMIT, "-e", json.dumps({"script": str(path),
                                                           "submit_results_dir": str(self.results)}),
                                 *args, check=check)

    def api(self) -> httpx.Client:
        token = (self.stack / "api" / "token").read_text().strip()
        return httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)

    @property
    def node(self) -> str:
        """The one pod's node name."""
        return self.nodes[0]

    def the_pod(self) -> str:
        """The one pod's id."""
        return self.pod_id(self.node)


def task_lines(output: str, task: str) -> list[str]:
    """The result lines (ok:, changed:, skipping: ...) under a task's header."""
    section = output.split(f"TASK [{task}", 1)[1].split("\nTASK [", 1)[0] if f"TASK [{task}" in output else ""
    return [line for line in section.splitlines()[1:] if re.match(r"^(ok|changed|skipping|failed|fatal):", line)]


def job_id(output: str) -> int:
    match = re.search(r"Submitted batch job (\d+)", output)
    assert match, output
    return int(match.group(1))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    found = OutputCluster(tmp_path_factory.mktemp("output"))
    with found.deployed(teardown=("./teardown.yml", "-e", "force=true")):
        yield found


def test_the_epilog_token_and_forward_are_idempotent(cluster):
    """A second run of the nodes' stages changes nothing (the node's token is made once)."""
    token = (cluster.stack / "job-output" / "tokens" / cluster.node).read_text()
    for name in ("slurm.yml", "tunnel.yml"):
        again = cluster.dep.playbook(name)
        assert all(host["changed"] == 0 for host in recap(again.stdout).values()), changed_tasks(again.stdout)
    assert (cluster.stack / "job-output" / "tokens" / cluster.node).read_text() == token
    on_pod = cluster.dep.pod_exec(cluster.the_pod(), "stat -c '%U %a' /etc/gpuops/job-output.token && "
                                  "cat /etc/gpuops/job-output.token").stdout.split("\n", 1)
    assert on_pod[0] == "root 600" and on_pod[1].strip() == token.strip()


def test_submit_job_copies_the_output_from_the_service_plane(cluster):
    result = cluster.submit("hello.sh", "#!/bin/bash\nfor i in $(seq 1 50); do echo \"line $i\"; done\n"
                                        "echo \"user=$(id -un)\"\necho warned >&2\n")
    job = job_id(result.stdout)
    kept = cluster.kept(job)
    out = (kept / f"slurm-{job}.out").read_text()
    assert out.startswith("line 1\n") and "line 50\nuser=gpuops\n" in out
    assert (kept / f"slurm-{job}.err").read_text() == "warned\n"
    manifest = json.loads((kept / "manifest.json").read_text())
    assert manifest["stdout"]["node"] == cluster.node and manifest["stdout"]["truncated"] is False
    assert oct((kept / f"slurm-{job}.out").stat().st_mode & 0o777) == "0o600"
    # The playbook took it from there, not from the pod.
    assert (cluster.results / str(job) / f"slurm-{job}.out").read_text() == out
    assert (cluster.results / str(job) / f"slurm-{job}.err").read_text() == "warned\n"
    copied = task_lines(result.stdout, "Copy the job's output from the service plane")
    assert copied and all(line.startswith(("changed:", "ok:")) for line in copied), copied
    fetched = task_lines(result.stdout, "Fetch the job's output from its pod")
    assert fetched and all(line.startswith("skipping:") for line in fetched), fetched


def test_slurm_makes_the_jobs_directory_as_the_job_account_and_nowhere_else(cluster):
    """submit_job.yml reaches no pod: the slurm role's Prolog makes the job's working directory when the job is
    allocated, as the job's user (mode 0700), and only for a plain name directly under the jobs root."""
    result = cluster.submit("where.sh", "#!/bin/bash\npwd\n")
    job = job_id(result.stdout)
    workdir = (cluster.kept(job) / f"slurm-{job}.out").read_text().strip()
    assert re.fullmatch(r"/var/lib/gpuops/jobs/[0-9T]+-[0-9]+", workdir), workdir
    made = cluster.dep.pod_exec(cluster.the_pod(), f"stat -c '%U %G %a' {workdir}").stdout.strip()
    assert made == "gpuops gpuops 700"
    assert set(recap(result.stdout)) == {"localhost", "slurmctld"}, recap(result.stdout)
    # Not under the jobs root, or not a plain name there: nothing is made, by anyone.
    for workdir in ("/var/lib/gpuops/jobs/api/../../../../root/made-by-prolog", "/tmp/made-by-prolog"):
        cluster.slurm("sbatch", "--wait", "--parsable", f"--chdir={workdir}",
                      "--output=/var/lib/gpuops/jobs/api/prolog-%j.out", "--wrap", "true", check=False)
        assert cluster.dep.pod_exec(cluster.the_pod(), f"test ! -e {workdir} && test ! -e /root/made-by-prolog",
                                    check=False).returncode == 0, workdir


def test_a_huge_output_keeps_its_end_and_says_where_the_rest_is(cluster):
    """5 MB of output: the service plane keeps the last 4 MiB (slurm_job_output_max_bytes), and says so."""
    result = cluster.submit("huge.sh", "#!/bin/bash\nfor i in $(seq 1 50000); do printf '%099d\\n' $i; done\n"
                                       "echo the-end\n")
    job = job_id(result.stdout)
    kept = cluster.kept(job) / f"slurm-{job}.out"
    assert kept.stat().st_size == 4 * 1024 * 1024
    assert kept.read_bytes().endswith(b"the-end\n")
    assert json.loads((cluster.kept(job) / "manifest.json").read_text())["stdout"]["truncated"] is True
    said = " ".join(result.stdout.split())
    assert f"Only the last 4194304 bytes of stdout of job {job} were kept on the service plane" in said, said[-3000:]
    assert f"the whole file is on {cluster.node} under /var/lib/gpuops/jobs/" in said
    with cluster.api() as api:
        body = api.get(f"/api/v1/jobs/{job}/output", params={"lines": 2}).json()
    assert body["text"].endswith("the-end\n") and body["truncated"] is True and body["source"] == "service-plane"


def test_the_api_serves_a_finished_jobs_output_with_no_pod(cluster):
    result = cluster.submit("gone.sh", "#!/bin/bash\necho kept-on-the-service-plane\n")
    job = job_id(result.stdout)
    # The pod's copy goes: the API must not need it.
    cluster.dep.pod_exec(cluster.the_pod(), f"rm -f /var/lib/gpuops/jobs/*/slurm-{job}.out")
    with cluster.api() as api:
        body = api.get(f"/api/v1/jobs/{job}/output").json()
    assert body["text"] == "kept-on-the-service-plane\n" and body["source"] == "service-plane", body


def test_a_job_cannot_pass_off_a_key_as_its_output(cluster):
    """The job replaces its own output files with links to the munge key and slurm.conf."""
    munge_key = cluster.dep.pod_exec(cluster.the_pod(), "od -An -tx1 /etc/munge/munge.key | tr -d ' \\n'").stdout
    assert len(munge_key) >= 64
    script = ("#!/bin/bash\necho before\nout=$(readlink /proc/$$/fd/1)\nerr=$(readlink /proc/$$/fd/2)\n"
              "rm -f \"$out\" \"$err\"\nln -s /etc/munge/munge.key \"$out\"\nln -s /etc/slurm/slurm.conf \"$err\"\n")
    result = cluster.submit("steal.sh", script)
    job = job_id(result.stdout)
    time.sleep(2)
    kept = cluster.kept(job)
    assert not (kept / f"slurm-{job}.out").exists() and not (kept / f"slurm-{job}.err").exists()
    log = cluster.dep.pod_exec(cluster.the_pod(), "cat /var/log/slurm/job-output.log").stdout
    assert not re.search(rf"job {job}: .*bytes handed over", log), log
    fetched = cluster.results / str(job)
    for path in fetched.glob("*") if fetched.exists() else []:
        assert path.is_file() and not path.is_symlink()
        assert munge_key not in path.read_bytes().hex()
    with cluster.api() as api:
        response = api.get(f"/api/v1/jobs/{job}/output")
    assert response.status_code == 404, response.text
    assert "ClusterName" not in response.text


def test_a_job_can_neither_read_its_nodes_token_nor_hand_over_output(cluster):
    script = ("#!/bin/bash\ncat /etc/gpuops/job-output.token && echo READ-THE-TOKEN\n"
              f"curl -s -o /dev/null -w 'status=%{{http_code}}\\n' -X PUT --data-binary forged "
              f"http://127.0.0.1:{cluster.output_port}/api/v1/nodes/{cluster.node}/jobs/1/output/stdout"
              " || python3 -c 'import http.client as h; c=h.HTTPConnection(\"127.0.0.1\","
              f"{cluster.output_port}); c.request(\"PUT\", \"/api/v1/nodes/{cluster.node}/jobs/1/output/stdout\","
              " body=b\"forged\"); print(\"status=%d\" % c.getresponse().status)'\n")
    result = cluster.submit("forge.sh", script)
    job = job_id(result.stdout)
    out = (cluster.kept(job) / f"slurm-{job}.out").read_text()
    err = (cluster.kept(job) / f"slurm-{job}.err").read_text()
    assert "READ-THE-TOKEN" not in out and "Permission denied" in err
    assert "status=401" in out
    forged = [path for path in (cluster.stack / "job-output" / "jobs").rglob("slurm-*") if path.read_text() == "forged"]
    assert not forged


def test_teardown_refuses_when_slurm_cannot_say_which_jobs_run(cluster):
    """Fail closed: with the controller stopped, pods are not destroyed on the guess that no job runs."""
    name = f"{cluster.dep.project}-slurmctld-1"
    subprocess.run(["docker", "stop", "--time", "5", name], check=True, capture_output=True)
    try:
        refused = cluster.dep.playbook("./teardown.yml", check=False)
        assert refused.returncode != 0
        said = " ".join(refused.stdout.split())
        assert "Slurm cannot say which jobs are pending or running" in said, said[-3000:]
        assert f"its controller {name} is not running here" in said and "Nothing was removed" in said
        assert [pod["status"] for pod in cluster.dep.pods().values()] == ["RUNNING"]
        assert not (cluster.dep.state_dir / "local" / "archive").exists()
    finally:
        subprocess.run(["docker", "start", name], check=True, capture_output=True)
    wait_for("the node back in Slurm", lambda: cluster.slurm("sinfo", "-h", "-o", "%t", check=False)
             .stdout.strip() == "idle", timeout=120)


def test_teardown_with_force_keeps_a_running_jobs_partial_output(cluster):
    result = cluster.submit("long.sh", "#!/bin/bash\necho started\nsleep 600\n", "-e", "wait=false")
    job = job_id(result.stdout)
    wait_for("the job to run", lambda: cluster.slurm("squeue", "-h", "-j", str(job), "-o", "%T").stdout
             .strip() == "RUNNING", timeout=60)
    refused = cluster.dep.playbook("./teardown.yml", check=False)
    assert refused.returncode != 0 and str(job) in refused.stdout, refused.stdout[-5000:]
    cluster.dep.playbook("./teardown.yml", "-e", "force=true")
    archives = sorted((cluster.dep.state_dir / "local" / "archive").iterdir())
    assert archives, "no archive"
    archive = archives[-1]
    assert (archive / "job-output" / str(job) / f"slurm-{job}.out").read_text() == "started\n"
    # Every job of this test is in the archive's accounting and its output (the pods' directories too).
    sacct = json.loads((archive / "sacct.json").read_text())
    assert job in {entry["job_id"] for entry in sacct["jobs"]}
    pods = list(archive.glob("*-jobs.tar.gz"))
    assert pods and any(name.endswith(f"slurm-{job}.out") for name in tarfile.open(pods[0]).getnames())
