"""End to end: `ansible-playbook submit_job.yml -e script=...` on a real
Slurm cluster: 2 pods of the local cloud as the nodes, Slurm's controller on
a service plane of the test's own (slurmctld container, where submit_job.yml
submits as the job account gpuops).

Bad input is tried first, before anything is provisioned ("no cluster"),
then on the cluster: every refusal must change nothing, neither in Slurm
(squeue, sacct) nor on the pods (job directories).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, Deployment, docker_available, recap

JOB_USER = "gpuops"
JOBS = "/var/lib/gpuops/jobs"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopssub"
SUBMIT = "./submit_job.yml"


class Submitter:
    """The deployment, a folder for scripts and one for fetched results."""

    def __init__(self, root: Path) -> None:
        self.dep = Deployment(root / "deploy", prefix=PREFIX)
        # From the first run on (the no-cluster one too): this test's own Compose project and ports,
        # never the developer's service plane.
        self.dep.use_service_plane()
        self.scripts = root / "scripts"
        self.scripts.mkdir()
        self.results = root / "results"

    def script(self, name: str, body: str, mode: int = 0o755, errors: str = "strict") -> Path:
        path = self.scripts / name
        path.write_text(body, errors=errors)
        path.chmod(mode)
        return path

    def submit(self, script: Path | str, *args: str, check: bool = False, env: dict[str, str] | None = None,
               wrapper: list[str] | None = None):
        return self.dep.playbook(
            SUBMIT, "-e", json.dumps({"script": str(script), "submit_results_dir": str(self.results)}),
            *args, check=check, env=env, wrapper=wrapper,
        )

    def pod_ids(self) -> list[str]:
        return sorted(pod["id"] for pod in self.dep.pods().values())

    def job_dirs(self) -> dict[str, list[str]]:
        """Job directories on each pod (Slurm's Prolog makes a submission's on the job's nodes; api/ is the API's)."""
        dirs = {}
        for pod_id in self.pod_ids():
            out = self.dep.pod_exec(pod_id, f"ls {JOBS} 2>/dev/null || true").stdout
            dirs[pod_id] = sorted(name for name in out.split() if name != "api")
        return dirs

    def slurm(self, *command: str) -> str:
        """A Slurm command in the service plane's slurmctld container, as the job account."""
        return self.dep.controller(*command).stdout

    def jobs(self) -> set[int]:
        """Every job Slurm knows: the controller's (squeue, recent ones included) and accounting's (sacct)."""
        queued = self.slurm("squeue", "--noheader", "--states=all", "--format=%i")
        accounted = self.slurm("sacct", "--noheader", "--parsable2", "--allocations", "--allusers",
                               "--starttime=2020-01-01", "--format=JobID")
        return {int(job) for job in (queued + accounted).split()}


def job_id(output: str) -> str:
    match = re.search(r"Submitted batch job (\d+)", output)
    assert match, output
    return match.group(1)


@pytest.fixture(scope="module")
def submitter(tmp_path_factory):
    sub = Submitter(tmp_path_factory.mktemp("submit"))
    try:
        yield sub
    finally:
        if sub.dep.api_key_file.exists():
            sub.dep.playbook("teardown.yml", check=False)
        sub.dep.stop()


@pytest.fixture(scope="module")
def cluster(submitter):
    submitter.dep.playbook("provision.yml")
    submitter.dep.seen_ids.update(pod["id"] for pod in submitter.dep.pods().values())
    submitter.dep.deploy_cluster("-e", "app_enabled=false")
    return submitter


def assert_nothing_submitted(cluster, before_dirs, before_jobs):
    """No new job dir on any pod, no job in Slurm beyond the ones known before."""
    assert cluster.job_dirs() == before_dirs
    new = {job for job in cluster.jobs() if job > max(before_jobs, default=0)}
    assert not new, f"jobs submitted by a refused request: {sorted(new)}"


HELLO = ("#!/bin/bash\necho \"hello from $(hostname)\"\necho \"gpus=${CUDA_VISIBLE_DEVICES:-none}\"\n"
         "echo \"user=$(id -un)\"\necho oops >&2\n")


def test_no_cluster_yet(submitter):
    script = submitter.script("hello.sh", HELLO)
    result = submitter.submit(script)
    assert result.returncode != 0
    assert "No cluster is deployed" in result.stdout
    assert "site.yml" in result.stdout


def test_job_output_exit_code_and_gpu(cluster):
    script = cluster.script("hello.sh", HELLO)
    before = cluster.job_dirs()
    result = cluster.submit(script, "-e", "gpus_per_node=1")
    assert result.returncode == 0, result.stdout[-3000:]
    jid = job_id(result.stdout)
    assert f"Job {jid} COMPLETED with exit code 0" in result.stdout
    out = (cluster.results / jid / f"slurm-{jid}.out").read_text()
    assert re.search(r"^hello from \w+$", out, re.M)
    assert "gpus=0" in out  # Slurm bound the (simulated) GPU 0
    assert f"user={JOB_USER}\n" in out  # the job account ran it, never root
    assert (cluster.results / jid / f"slurm-{jid}.err").read_text() == "oops\n"
    # The job ran from its own directory, which Slurm's Prolog made on the job's node only, as the job
    # account, mode 0700.
    dirs = {pod_id: sorted(set(pod_dirs) - set(before[pod_id])) for pod_id, pod_dirs in cluster.job_dirs().items()}
    names = set().union(*dirs.values())
    assert len(names) == 1 and all(re.match(r"^\d{8}T\d{6}-\d+$", d) for d in names), dirs
    holders = [pod_id for pod_id, pod_dirs in dirs.items() if pod_dirs]
    assert len(holders) == 1, dirs
    made = cluster.dep.pod_exec(holders[0], f"cd {JOBS} && stat -c '%U %a' " + " ".join(sorted(names))).stdout.split()
    assert made == [JOB_USER, "700"], (holders, made)


def test_an_output_over_the_limit_keeps_its_end_and_says_where_the_whole_is(cluster):
    """Without the service plane's store (app_enabled=false, as under AWX), an output file over
    submit_max_output_bytes is tailed on its pod: only its end reaches this host."""
    script = cluster.script("big.sh", "#!/bin/bash\nfor i in $(seq 1 2000); do echo \"line $i\"; done\n")
    result = cluster.submit(script, "-e", "submit_max_output_bytes=1000")
    assert result.returncode == 0, result.stdout[-3000:]
    jid = job_id(result.stdout)
    kept = (cluster.results / jid / f"slurm-{jid}.out").read_text()
    # The last 1000 bytes of the 19,894-byte output, and nothing before them.
    whole = "".join(f"line {i}\n" for i in range(1, 2001))
    assert kept == whole[-1000:], kept[:200]
    said = " ".join(result.stdout.split())
    assert f"Only the last 1000 bytes of slurm-{jid}.out of job {jid} were fetched (submit_max_output_bytes)" in said
    assert f"the whole file ({len(whole)} bytes) is on" in said and f"/slurm-{jid}.out, until teardown.yml" in said
    assert "line 2000" in said  # the end is shown, as for any job


def test_two_node_job_is_refused_without_global_networking(cluster):
    """Pods are isolated by default: a multi-node job could not run, so it is refused before anything changes."""
    dirs, jobs = cluster.job_dirs(), cluster.jobs()
    script = cluster.script("two.sh", "#!/bin/bash\nsrun hostname\n")
    result = cluster.submit(script, "-e", "nodes=2", "-e", "ntasks=2")
    _refused(cluster, result, "provision_global_networking=true")
    assert "nodes=2" in result.stdout
    assert_nothing_submitted(cluster, dirs, jobs)
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values())


def test_failing_job_fails_the_playbook_with_its_exit_code(cluster):
    script = cluster.script("fail.sh", "#!/bin/bash\necho about to fail\nexit 3\n")
    result = cluster.submit(script)
    assert result.returncode != 0
    jid = job_id(result.stdout)
    assert f"Job {jid} ended FAILED with exit code 3" in result.stdout
    assert (cluster.results / jid / f"slurm-{jid}.out").read_text() == "about to fail\n"


def test_wait_timeout_fails_and_leaves_the_job_running(cluster):
    script = cluster.script("long.sh", "#!/bin/bash\nsleep 120\n")
    result = cluster.submit(script, "-e", "wait_timeout=3")
    assert result.returncode != 0
    jid = job_id(result.stdout)
    assert f"Job {jid} is still" in result.stdout and "keeps running" in result.stdout
    state = cluster.slurm("squeue", "--noheader", "-j", jid, "-o", "%T").strip()
    assert state in ("RUNNING", "PENDING", "CONFIGURING")
    cluster.slurm("scancel", jid)


def test_no_wait_prints_the_job_id_and_returns(cluster):
    script = cluster.script("quick.sh", "#!/bin/bash\ntrue\n")
    result = cluster.submit(script, "-e", "wait=false")
    assert result.returncode == 0
    jid = job_id(result.stdout)
    assert f"Not waiting (wait=false). Follow job {jid}" in result.stdout
    assert re.search(r"TASK \[Wait for the job to end\] \*+\nskipping", result.stdout)


def test_job_name_with_shell_metacharacters_is_safe(cluster):
    name = "x; touch /tmp/pwned $(touch /tmp/pwned2) `id` | cat & 'q\""
    script = cluster.script("meta.sh", "#!/bin/bash\necho \"$SLURM_JOB_NAME\"\n")
    result = cluster.submit(script, "-e", json.dumps({"job_name": name}))
    assert result.returncode == 0, result.stdout[-3000:]
    jid = job_id(result.stdout)
    assert (cluster.results / jid / f"slurm-{jid}.out").read_text() == name + "\n"
    for pod in cluster.dep.pods().values():
        assert cluster.dep.pod_exec(pod["id"], "ls /tmp/pwned /tmp/pwned2", check=False).returncode != 0
    # Nor where it was submitted: the slurmctld container.
    assert cluster.dep.controller("ls", "/tmp/pwned", "/tmp/pwned2", check=False).returncode != 0
    assert not Path("/tmp/pwned").exists() and not Path("/tmp/pwned2").exists()


def _linked_parent(submitter) -> Path:
    link = submitter.scripts / "state-link"
    if not link.is_symlink():
        link.symlink_to(submitter.dep.state_dir)
    return link


def _symlink(submitter) -> Path:
    link = submitter.scripts / "link.sh"
    if not link.is_symlink():
        link.symlink_to(submitter.script("target.sh", HELLO))
    return link


def test_templates_in_the_request_stay_text_end_to_end(cluster, tmp_path):
    """'{{ ... }}' in a job name or a script given as text (AWX survey) never runs on the control host;
    a plain bash ${#arr[@]} reaches bash unchanged."""
    marker = tmp_path / "pwned"
    name = "{{ lookup('pipe', 'touch %s') }}" % marker
    text = "#!/bin/bash\narr=(a b c)\necho \"n=${#arr[@]} {{ lookup('pipe', 'id') }}\"\necho \"$SLURM_JOB_NAME\"\n"
    result = cluster.dep.playbook(SUBMIT, "-e", json.dumps({"script": text, "job_name": name,
                                                           "submit_results_dir": str(cluster.results)}), check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    jid = job_id(result.stdout)
    out = (cluster.results / jid / f"slurm-{jid}.out").read_text().splitlines()
    assert out == ["n=3 {{ lookup('pipe', 'id') }}", name]
    assert not marker.exists()
    assert "uid=" not in result.stdout


def _refused(cluster, result, message):
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert "Nothing was submitted" in result.stdout


@pytest.mark.parametrize(
    ("make_script", "args", "message"),
    [
        (lambda s: s.scripts / "missing.sh", (), "There is no file"),
        (lambda s: s.scripts, (), "is not a regular file"),
        (lambda s: s.script("empty.sh", ""), (), "a batch script must hold something"),
        (lambda s: s.script("big.sh", "#!/bin/sh\n" + "#" * 2048 + "\n"), ("-e", "submit_max_script_bytes=1024"),
         "at most 1024 bytes"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "gpus_per_node=-1"), "Impossible request"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "nodes=3"), "This cluster has 2 node(s)"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "nodes=0"), "Impossible request"),
        # Two one-GPU pods: 2 GPUs in all, but at most 1 on a node.
        (lambda s: s.script("ok.sh", HELLO), ("-e", "gpus_per_node=2"), "can have at most 1 GPU(s) per node"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "gpus=1"), "Ask for gpus_per_node=N instead"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", '{"job_name": "two\\nlines"}'), "job_name must be one line"),
        (lambda s: _symlink(s), (), "is a symbolic link"),
        # The local cloud's API key, a file this user can read: never a job script.
        (lambda s: s.dep.state_dir / "localcloud" / "api_key", (), "is inside gpuops' state directory"),
        # Through a linked parent directory: the file that is opened is judged, not the path.
        (lambda s: _linked_parent(s) / "localcloud" / "api_key", (), "is inside gpuops' state directory"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "wait_timeout=0"), "Impossible request: wait_timeout=0"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "awx_job_id=7"), "Under AWX the script must be the script's text"),
        (lambda s: "no/such/job.sh", (), "(a relative path starts at %s)" % REPO),
        (lambda s: s.script("ok.sh", HELLO), ("-e", '{"partition": "gpu;rm"}'), "is not a Slurm partition name"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "time=soon"), "is not a Slurm time limit"),
        (lambda s: s.script("ok.sh", HELLO), ("-e", "wait=maybe"), "wait must be true or false"),
        (lambda s: s.script("bin.sh", "#!/bin/sh\n\udcff\n", errors="surrogateescape"), (), "is not UTF-8 text"),
    ],
    ids=["missing", "directory", "empty", "too-big", "gpus-negative", "too-many-nodes", "zero-nodes",
         "too-many-gpus-per-node", "gpus-renamed", "newline-name", "symlink", "state-dir", "linked-parent", "wait-timeout-zero", "awx-path",
         "relative-missing", "partition",
         "time", "wait", "not-utf8"],
)
def test_bad_input_is_refused_and_changes_nothing(cluster, make_script, args, message):
    dirs, jobs = cluster.job_dirs(), cluster.jobs()
    result = cluster.submit(make_script(cluster), *args)
    _refused(cluster, result, message)
    assert_nothing_submitted(cluster, dirs, jobs)
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values())


def test_unreadable_script_is_refused(cluster):
    # root reads every file; without CAP_DAC_OVERRIDE/READ_SEARCH it reads
    # as the owner permissions say, like any user.
    script = cluster.script("secret.sh", HELLO, mode=0o000)
    drop = "-dac_override,-dac_read_search"
    result = cluster.submit(script, env=None, wrapper=["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--"])
    _refused(cluster, result, "is not readable")
