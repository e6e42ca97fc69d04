"""submit_job.yml run by ansible-runner the way AWX runs a job template, on a
real 2-pod Slurm cluster of the local cloud, with Slurm's controller on a
service plane of the test's own (Compose project, ports, tunnels).

No AWX server is reachable here, so the test builds what AWX hands to
ansible-runner (awx/main/tasks/jobs.py: build_private_data_dir,
build_inventory, build_extra_vars_file, build_env, build_args):

- project/: a copy of the repository's files, as AWX copies the project;
- inventory/hosts: an executable script printing the inventory as JSON, the
  one AWX writes from its database after an update of the inventory's sources
  (awx/configure.yml: the pods' runpod.yml and the service plane's
  service_plane.yml; each update runs `ansible-inventory --list --export` on
  its source), here without the hostvar ansible_ssh_private_key_file: the key
  comes from the machine credential only;
- env/extravars: the survey's answers tagged !unsafe (AWX's safe_dump), the job
  template's own extra vars plain (here with this deployment's service plane,
  so that no job reaches another deployment's slurmctld), plus AWX's
  awx_*/tower_* variables;
- env/envvars, env/cmdline (-u root), env/ssh_key (the machine credential,
  which ansible-runner loads into ssh-agent);
- settings: AWX's (no stdout file: the output is the job events).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import ansible_runner
import pytest
import yaml

from tests.integration.helpers import REPO, VENV_BIN, Deployment, docker_available, run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopsawx"
HELLO = "#!/bin/bash\necho \"hello from $(hostname)\"\necho \"gpus=${CUDA_VISIBLE_DEVICES:-none}\"\n"
# What the "gpuops - submit job" survey sends when only the script is filled in (awx/configure.yml).
SURVEY_DEFAULTS = {"gpus_per_node": 0, "nodes": 1, "ntasks": 1, "wait": "true", "wait_timeout": 3600}
_job_ids = itertools.count(101)


class AwxStyleDumper(yaml.SafeDumper):
    """AWX's safe_dump: strings the job template does not set itself are !unsafe."""


def _unsafe_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", value, style="'" if "\n" not in value else "|")


AwxStyleDumper.add_representer(str, _unsafe_str)


def write_extravars(path: Path, survey: dict, template_vars: dict) -> None:
    """env/extravars: template vars plain (trusted), everything else !unsafe, like AWX."""
    trusted = yaml.safe_dump(template_vars, default_flow_style=False)
    untrusted = yaml.dump(survey, Dumper=AwxStyleDumper, default_flow_style=False) if survey else ""
    path.write_text(trusted + untrusted)
    path.chmod(0o400)


class AwxCluster:
    """The deployment, its AWX project copy and its AWX inventory (as after an inventory update)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dep = Deployment(root / "deploy", prefix=PREFIX)
        self.project = root / "project"
        self.inventory_json: dict = {}

    def copy_project(self) -> None:
        """The repository's files (tracked and new, not ignored), as a project sync leaves them."""
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            source = REPO / name
            if not source.exists() and not source.is_symlink():
                continue  # deleted in the working tree
            target = self.project / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                target.symlink_to(os.readlink(source))
            else:
                shutil.copy2(source, target)

    def inventory_update(self) -> None:
        """What AWX stores from an update of the inventory's sources, each exported on its own, then merged.

        The sources of the local inventory (awx/configure.yml): the deployment's runpod.yml (the pods) and
        the project's awx/inventories/local/service_plane.yml (Slurm's controller, host slurmctld).
        """
        env = {**os.environ, "ANSIBLE_INVENTORY_EXPORT": "True", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
               "ANSIBLE_VERBOSE_TO_STDERR": "True"}
        data: dict = {"_meta": {"hostvars": {}}}
        for source in (self.dep.inventory / "runpod.yml", self.project / "awx/inventories/local/service_plane.yml"):
            assert source.is_file(), f"the inventory source {source} is missing"
            result = run([str(VENV_BIN / "ansible-inventory"), "-i", str(source), "--list", "--export"], env=env)
            merge_inventory(data, json.loads(result.stdout))
        for hostvars in data["_meta"]["hostvars"].values():
            hostvars.pop("ansible_ssh_private_key_file", None)  # the machine credential brings the key
            hostvars["remote_tower_enabled"] = "true"
        assert data.get("slurm_controller", {}).get("hosts") == ["slurmctld"], data
        assert len(data.get("slurm_compute", {}).get("hosts", [])) == 2, data
        self.inventory_json = data

    def job_dirs(self) -> dict[str, list[str]]:
        """Job directories on each pod (Slurm's Prolog makes a submission's on the job's node; api/ is the API's)."""
        dirs = {}
        for name, pod in sorted(self.dep.pods().items()):
            out = self.dep.pod_exec(pod["id"], "ls /var/lib/gpuops/jobs 2>/dev/null || true").stdout
            dirs[name] = sorted(entry for entry in out.split() if entry != "api")
        return dirs

    def squeue_count(self) -> int:
        """Jobs the service plane's slurmctld knows (recent ones included)."""
        return len(self.dep.controller("squeue", "--noheader", "--states=all").stdout.splitlines())

    def secrets(self) -> dict[str, str]:
        """Secret values that must never reach a job's artifacts: the cloud API key, the pods' private key.

        The first lines of an OpenSSH key are the same for every key and its public half;
        each later line holds private key bytes.
        """
        key = (self.dep.state_dir / "local/ssh/id_ed25519").read_text()
        body = [line for line in key.splitlines() if line and not line.startswith("-----")]
        assert len(body) >= 4, "unexpected private key format"
        secrets = {"cloud API key": self.dep.api_key_file.read_text().strip()}
        secrets.update({f"SSH private key line {i}": line for i, line in enumerate(body) if i >= 2})
        return secrets


def merge_inventory(data: dict, more: dict) -> None:
    """Add one source's `ansible-inventory --list --export` to the inventory (hosts, children, vars)."""
    data["_meta"]["hostvars"].update(more.get("_meta", {}).get("hostvars", {}))
    for name, group in more.items():
        if name == "_meta":
            continue
        into = data.setdefault(name, {})
        for key in ("hosts", "children"):
            if key in group:
                into[key] = sorted(set(into.get(key, [])) | set(group[key]))
        if "vars" in group:
            into.setdefault("vars", {}).update(group["vars"])


class AwxJob:
    """One job: a fresh private data directory laid out as AWX lays it out, run with ansible-runner."""

    def __init__(self, cluster: AwxCluster, survey: dict) -> None:
        self.cluster = cluster
        self.id = next(_job_ids)
        self.pdd = cluster.root / f"awx_{self.id}_job"
        for sub in ("inventory", "env", "cp"):
            (self.pdd / sub).mkdir(parents=True)
        self.pdd.chmod(0o700)
        (self.pdd / "project").symlink_to(cluster.project)
        hosts = self.pdd / "inventory" / "hosts"
        hosts.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(cluster.inventory_json))
        hosts.chmod(0o700)
        dep = cluster.dep
        # The job template's extra vars (awx/configure.yml), trusted, and AWX's own variables.
        template_vars = {"gpuops_state_dir": str(dep.state_dir),
                         "provision_terraform_binary": str(VENV_BIN / "terraform"), **dep.service_plane_vars}
        awx_vars = {f"{prefix}_{name}": value for prefix in ("awx", "tower") for name, value in {
            "job_id": self.id, "job_launch_type": "manual", "job_template_id": 7,
            "job_template_name": "gpuops - submit job", "inventory_id": 3, "inventory_name": "gpuops",
            "project_revision": "0" * 40, "user_id": 1, "user_name": "admin",
        }.items()}
        write_extravars(self.pdd / "env" / "extravars", {**awx_vars, **survey}, template_vars)
        envvars = {
            "JOB_ID": str(self.id), "INVENTORY_ID": "3", "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.pdd / "cp"), "AWX_HOST": "https://awx.example.invalid",
            "AWX_PRIVATE_DATA_DIR": str(self.pdd), "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        }
        (self.pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
        (self.pdd / "env" / "cmdline").write_text("-u root")
        ssh_key = self.pdd / "env" / "ssh_key"
        ssh_key.write_text((dep.state_dir / "local/ssh/id_ed25519").read_text())
        ssh_key.chmod(0o600)
        self.result = None

    def run(self) -> ansible_runner.Runner:
        # An AWX job's environment holds no ANSIBLE_* setting of the caller's (make exports
        # ANSIBLE_CONFIG, which would make the job read the repository's ansible.cfg, not the project's).
        saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("ANSIBLE_")}
        try:
            return self._run()
        finally:
            os.environ.update(saved)

    def _run(self) -> ansible_runner.Runner:
        self.result = ansible_runner.run(
            private_data_dir=str(self.pdd),
            ident=str(self.id),
            playbook="submit_job.yml",
            inventory=str(self.pdd / "inventory" / "hosts"),
            settings={"suppress_ansible_output": True, "suppress_output_file": True, "job_timeout": 900},
            fact_cache_type="",
            quiet=True,
        )
        return self.result

    @property
    def events(self) -> list[dict]:
        return list(self.result.events)

    @property
    def stdout(self) -> str:
        """The job's output as AWX shows it: every event's stdout, in order."""
        return "\n".join(event.get("stdout", "") for event in self.events if event.get("stdout"))

    def artifact_data(self) -> dict:
        stats = [e for e in self.events if e.get("event") == "playbook_on_stats"]
        assert len(stats) == 1, [e.get("event") for e in self.events]
        return stats[0]["event_data"].get("artifact_data", {})

    def assert_no_secret_in_artifacts(self) -> None:
        artifacts = self.pdd / "artifacts"
        files = [p for p in artifacts.rglob("*") if p.is_file()]
        assert files, "ansible-runner wrote no artifacts"
        assert not (artifacts / str(self.id) / "ssh_key_data").exists(), "the machine credential's key was left behind"
        for what, secret in self.cluster.secrets().items():
            assert len(secret) >= 20
            leaks = [str(p.relative_to(artifacts)) for p in files if secret.encode() in p.read_bytes()]
            assert not leaks, f"the {what} is in the job's artifacts: {leaks}"


def submit_job_publishes_the_job_id() -> bool:
    """submit_job.yml hands the job id to AWX (set_stats gpuops_slurm_job_id, see awx/README.md)."""
    for play in yaml.safe_load((REPO / "submit_job.yml").read_text()):
        for task in play.get("tasks", []):
            if "gpuops_slurm_job_id" in (task.get("ansible.builtin.set_stats") or {}).get("data", {}):
                return True
    return False


@pytest.fixture(scope="module")
def awx(tmp_path_factory):
    cluster = AwxCluster(tmp_path_factory.mktemp("awx"))
    try:
        yield cluster
    finally:
        if cluster.dep.api_key_file.exists():
            cluster.dep.playbook("teardown.yml", check=False)
        cluster.dep.stop()


@pytest.fixture(scope="module")
def cluster(awx):
    awx.copy_project()
    awx.dep.playbook("provision.yml")
    awx.dep.seen_ids.update(pod["id"] for pod in awx.dep.pods().values())
    awx.dep.deploy_cluster("-e", "app_enabled=false")
    awx.inventory_update()
    return awx


def _submitted(job: AwxJob) -> str:
    match = re.search(r"Submitted batch job (\d+)", job.stdout)
    assert match, job.stdout[-4000:]
    return match.group(1)


def test_submit_job_runs_as_an_awx_job(cluster):
    job = AwxJob(cluster, {**SURVEY_DEFAULTS, "script": HELLO, "gpus_per_node": 1})
    result = job.run()
    assert (result.status, result.rc) == ("successful", 0), job.stdout[-4000:]
    jid = _submitted(job)
    assert f"Job {jid} COMPLETED with exit code 0" in job.stdout
    assert re.search(r"hello from \w+", job.stdout)
    # The output was fetched into the job's project copy (jobs/<id>/), as in AWX.
    assert "gpus=0" in (cluster.project / f"jobs/{jid}/slurm-{jid}.out").read_text()
    if submit_job_publishes_the_job_id():
        assert job.artifact_data() == {"gpuops_slurm_job_id": int(jid)}
    job.assert_no_secret_in_artifacts()


def test_survey_script_body_and_blank_optional_answers(cluster):
    """The survey's textarea holds the script itself; optional answers left blank arrive as ''."""
    dirs = cluster.job_dirs()
    job = AwxJob(cluster, {**SURVEY_DEFAULTS, "script": HELLO, "partition": "", "job_name": "", "time": ""})
    result = job.run()
    assert (result.status, result.rc) == ("successful", 0), job.stdout[-4000:]
    jid = _submitted(job)
    assert f"Job {jid} COMPLETED with exit code 0" in job.stdout
    assert re.search(r"hello from \w+", job.stdout)
    after = cluster.job_dirs()
    # One new directory, on the node that ran the job (a one-node job).
    assert sorted(after) == sorted(dirs), (dirs, after)
    assert sum(len(after[pod]) - len(dirs[pod]) for pod in dirs) == 1, (dirs, after)
    job.assert_no_secret_in_artifacts()


def test_survey_answers_with_templates_stay_text(cluster, tmp_path):
    """AWX hands survey answers as extra vars: '{{ ... }}' in the job name or the script text never runs
    on the execution node, and bash's own ${#arr[@]} reaches bash unchanged."""
    marker = tmp_path / "pwned"
    name = "{{ lookup('pipe', 'touch %s') }}" % marker
    text = "#!/bin/bash\narr=(a b c)\necho \"n=${#arr[@]} {{ lookup('pipe', 'id') }}\"\necho \"$SLURM_JOB_NAME\"\n"
    job = AwxJob(cluster, {**SURVEY_DEFAULTS, "script": text, "job_name": name})
    result = job.run()
    assert (result.status, result.rc) == ("successful", 0), job.stdout[-4000:]
    jid = _submitted(job)
    assert f"Job {jid} COMPLETED with exit code 0" in job.stdout
    assert "n=3 {{ lookup('pipe', 'id') }}" in job.stdout, job.stdout[-4000:]
    # Slurm has the name as it was typed (the job's output shows it too, quoted by the callback).
    named = cluster.dep.controller("sacct", "-j", jid, "-X", "-n", "-P", "-o", "JobName%300").stdout.strip()
    assert named == name, named
    assert not marker.exists()
    assert "uid=" not in job.stdout
    job.assert_no_secret_in_artifacts()


@pytest.mark.parametrize(
    ("survey", "message"),
    [
        ({**SURVEY_DEFAULTS, "script": HELLO, "gpus_per_node": -1}, "Impossible request"),
        ({**SURVEY_DEFAULTS, "script": HELLO, "nodes": 3}, "This cluster has 2 node(s)"),
        (SURVEY_DEFAULTS, "Name the batch script to run"),
        # A path would read the execution environment's files (the deployment's SSH key, say): text only.
        ({**SURVEY_DEFAULTS, "script": "examples/hello.sh"}, "Under AWX the script must be the script's text"),
        ({**SURVEY_DEFAULTS, "script": "../.ssh/id_ed25519"}, "Under AWX the script must be the script's text"),
    ],
    ids=["gpus-negative", "too-many-nodes", "no-script", "project-path", "key-path"],
)
def test_bad_extra_vars_fail_the_job_and_submit_nothing(cluster, survey, message):
    dirs, jobs = cluster.job_dirs(), cluster.squeue_count()
    job = AwxJob(cluster, survey)
    result = job.run()
    assert result.status == "failed" and result.rc != 0
    assert message in job.stdout, job.stdout[-4000:]
    assert "Submitted batch job" not in job.stdout
    assert cluster.job_dirs() == dirs
    assert cluster.squeue_count() == jobs
    job.assert_no_secret_in_artifacts()
