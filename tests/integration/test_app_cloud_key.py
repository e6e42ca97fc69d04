"""Issue 12, item 5: the API gets a read-only RunPod key of its own, never the account-wide one, and none stays on
disk after teardown.

Real ansible-playbook runs on this machine. The app role's own steps (preflight, secrets, configure: what
playbooks/stack.yml runs before the Compose project is deployed) with app_cloud=runpod and an account-wide
RUNPOD_API_KEY in the environment; then teardown.yml on an empty deployment of its own (a temp state directory, its
own local cloud port and Compose project), whose stack directory holds the API's copy of the key. No pod, no image
build. About 1 minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import REPO, VENV_BIN, Deployment, changed_tasks, recap, run

pytestmark = [pytest.mark.integration]

#: Only this machine (the checkout's inventory would ask the cloud for pods).
LOCALHOST = ["-i", "localhost,", "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={VENV_BIN}/python",
             "-e", f"gpuops_root={REPO}"]
#: The steps of the role that hand the API its key (images are not built: their tags are given).
STEPS = yaml.safe_dump([{
    "name": "The app role's key handling", "hosts": "localhost", "gather_facts": False,
    "tasks": [
        *({"name": step, "ansible.builtin.include_role": {"name": "gpuops.platform.app", "tasks_from": step}}
          for step in ("preflight", "secrets", "configure")),
        {"name": "Keep the API's volumes and user for the test",
         "ansible.builtin.copy": {"content": "{{ {'volumes': app_compose_services.api.volumes,"
                                             " 'user': app_compose_services.api.user} | to_json }}",
                                  "dest": "{{ test_volumes_file }}", "mode": "0600"}},
    ]}])


def flat(output: str) -> str:
    return " ".join(output.split())


@dataclass
class Stack:
    tmp: Path
    account_key: str

    @property
    def stack(self) -> Path:
        return self.tmp / "stack"

    @property
    def copy(self) -> Path:
        """The API's copy of the cloud key (the role's _app_cloud_key_file)."""
        return self.stack / "app" / "secrets" / "cloud_api_key"

    @property
    def volumes_file(self) -> Path:
        return self.tmp / "volumes.json"

    def deploy(self, *extra: str, check: bool = True, cwd: Path | None = None):
        self.volumes_file.unlink(missing_ok=True)
        env = {**os.environ, "RUNPOD_API_KEY": self.account_key}
        cmd = [str(VENV_BIN / "ansible-playbook"), *LOCALHOST, str(self.tmp / "steps.yml"),
               "-e", f"gpuops_state_dir={self.tmp / 'state'}", "-e", f"app_stack_dir={self.stack}",
               "-e", "app_cloud=runpod", "-e", "_app_api_ref=gpuops/api:test", "-e", "_app_web_ref=gpuops/web:test",
               "-e", f"test_volumes_file={self.volumes_file}", *extra]
        if cwd is None:
            return run(cmd, check=check, env=env, timeout=300)
        # From another directory (helpers.run starts in the checkout), with the checkout's configuration.
        env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=check)

    def api_config(self) -> dict:
        return yaml.safe_load((self.stack / "app" / "api.yml").read_text())

    def volumes(self) -> list[str]:
        return json.loads(self.volumes_file.read_text())["volumes"]

    def user(self) -> str:
        return json.loads(self.volumes_file.read_text())["user"]

    def files_holding(self, value: str) -> list[Path]:
        return [path for path in self.tmp.rglob("*") if path.is_file() and value.encode() in path.read_bytes()]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path, "rpa_ACCOUNTWIDE" + uuid.uuid4().hex.upper())
    # The controller's JWT key, which the role copies for the API (the slurm role writes it on a real stack).
    (s.stack / "slurm").mkdir(parents=True)
    (s.stack / "slurm" / "jwt_hs256.key").write_bytes(os.urandom(64))
    (s.tmp / "steps.yml").write_text(STEPS)
    yield s


def test_without_a_read_key_the_api_gets_no_key_and_an_old_copy_goes(stack: Stack) -> None:
    # What the role wrote before issue 12: a copy of the account-wide RUNPOD_API_KEY for the API.
    stack.copy.parent.mkdir(parents=True)
    stack.copy.write_text(stack.account_key)
    result = stack.deploy()
    assert not stack.copy.exists()
    assert stack.api_config()["cloud_api_key_file"] is None
    assert not [v for v in stack.volumes() if "cloud_api_key" in v], stack.volumes()
    assert stack.files_holding(stack.account_key) == []
    out = flat(result.stdout)
    assert "The API gets no RunPod key (app_runpod_read_key_file is empty; it is never given RUNPOD_API_KEY)" in out
    assert "-e app_runpod_read_key_file=<file holding it>" in out
    assert stack.account_key not in result.stdout + result.stderr


def test_a_read_only_key_is_the_one_the_api_gets(stack: Stack) -> None:
    read_key = "rpa_READONLY" + uuid.uuid4().hex.upper()
    key_file = stack.tmp / "runpod-read-only.key"
    key_file.write_text(f"  {read_key}\n")
    first = stack.deploy("-e", f"app_runpod_read_key_file={key_file}")
    assert stack.copy.read_text() == read_key + "\n"
    assert stack.copy.stat().st_mode & 0o777 == 0o600
    assert stack.api_config()["cloud_api_key_file"] == "/run/gpuops/cloud_api_key"
    assert f"{stack.copy}:/run/gpuops/cloud_api_key:ro" in stack.volumes()
    assert stack.files_holding(stack.account_key) == []
    again = stack.deploy("-e", f"app_runpod_read_key_file={key_file}")
    # Idempotent: only the test's own record of the volumes is written again.
    assert [t for t in changed_tasks(again.stdout) if "for the test" not in t] == [], again.stdout[-3000:]
    for result in (first, again):
        assert read_key not in result.stdout + result.stderr
        assert stack.account_key not in result.stdout + result.stderr


@pytest.mark.parametrize(("content", "message"), [
    (None, "app_runpod_read_key_file {path} is not the absolute path of a file on this machine."),
    ("RELATIVE", "app_runpod_read_key_file runpod-read-only.key is not the absolute path of a file on this machine."),
    ("", "app_runpod_read_key_file {path} is empty: write the RunPod API key with Read Only permission into it"),
    (" \n\t\n", "app_runpod_read_key_file {path} is empty"),
    ("ACCOUNT", "app_runpod_read_key_file {path} holds RUNPOD_API_KEY, the account-wide key that creates and destroys "
                "pods: the API only reads pods and must not hold it."),
], ids=["missing", "relative", "empty", "blank", "the-account-wide-key"])
def test_a_bad_read_key_file_is_refused_before_the_api_changes(stack: Stack, content: str | None,
                                                               message: str) -> None:
    key_file = stack.tmp / "runpod-read-only.key"
    if content is not None:
        key_file.write_text({"ACCOUNT": f"{stack.account_key}\n", "RELATIVE": "rpa_READONLY\n"}.get(content, content))
    before = sorted(str(p.relative_to(stack.tmp)) for p in stack.tmp.rglob("*"))
    # A relative path, even of a file that exists from the run's directory, is refused: it would resolve elsewhere.
    given = key_file.name if content == "RELATIVE" else key_file
    result = stack.deploy("-e", f"app_runpod_read_key_file={given}", check=False, cwd=stack.tmp)
    assert result.returncode != 0
    assert message.format(path=key_file) in flat(result.stdout)
    assert "Nothing of the API was changed." in flat(result.stdout)
    # Nothing was written: no stack directory content, no token, no copy of any key.
    assert sorted(str(p.relative_to(stack.tmp)) for p in stack.tmp.rglob("*")) == before
    assert stack.account_key not in result.stdout + result.stderr


def test_the_api_runs_as_its_own_user_on_its_own_copies(stack: Stack) -> None:
    """Deployed by root (as in CI), the API runs as app_api_uid (the image's user), never uid 0, and is given only
    files that user owns: its configuration, token, pods file, its own copies of the JWT key, the SSH key and
    known_hosts, and the job output store (an earlier store of root's files is handed over once). The deployment's
    own SSH key and known_hosts stay root's, and are not mounted."""
    assert os.geteuid() == 0, "this test proves what happens when root deploys: run it as root, as CI does"
    api = 10001
    ssh = stack.tmp / "state" / "runpod" / "ssh"
    ssh.mkdir(parents=True, mode=0o700)
    for name in ("id_ed25519", "known_hosts"):
        (ssh / name).write_bytes(os.urandom(32).hex().encode() + b"\n")
        (ssh / name).chmod(0o600)
    # A store that an API running as root filled.
    old_output = stack.stack / "job-output" / "jobs" / "7" / "slurm-7.out"
    old_output.parent.mkdir(parents=True, mode=0o700)
    old_output.write_text("hello\n")
    old_token = stack.stack / "job-output" / "tokens" / "gpuops-local-gpuops-0"
    old_token.parent.mkdir(mode=0o700)
    old_token.write_text("t" * 43)
    old_token.chmod(0o600)

    first = stack.deploy()
    assert stack.user() == f"{api}:{api}"
    theirs = [stack.stack / "api" / "token", stack.stack / "api", stack.stack / "app" / "api.yml",
              stack.stack / "app" / "secrets" / "slurm_jwt_hs256.key", stack.stack / "app" / "inventory",
              stack.stack / "app" / "inventory" / "pods.json", stack.stack / "app" / "secrets" / "ssh",
              *(stack.stack / "job-output").rglob("*"), stack.stack / "job-output"]
    assert old_output in theirs and old_token in theirs
    for path in theirs:
        info = path.lstat()
        assert (info.st_uid, info.st_gid) == (api, api), (path, info.st_uid, info.st_gid)
    for name in ("id_ed25519", "known_hosts"):
        copy = stack.stack / "app" / "secrets" / "ssh" / name
        assert copy.read_bytes() == (ssh / name).read_bytes()
        assert (copy.stat().st_uid, copy.stat().st_mode & 0o777) == (api, 0o600)
        # The originals stay root's.
        assert (ssh / name).stat().st_uid == 0
    assert f"{stack.stack / 'app' / 'secrets' / 'ssh'}:/run/gpuops/ssh:ro" in stack.volumes()
    assert not [v for v in stack.volumes() if v.startswith(str(ssh))], stack.volumes()
    assert "Give an earlier job output store to the API's user" in first.stdout

    again = stack.deploy()
    assert [t for t in changed_tasks(again.stdout) if "for the test" not in t] == [], again.stdout[-3000:]

    # A pod re-pinned by a later deployment: the API's copy follows, still the API's user's.
    (ssh / "known_hosts").write_text("runpod-abc-1 ssh-ed25519 AAAA\n")
    stack.deploy()
    copy = stack.stack / "app" / "secrets" / "ssh" / "known_hosts"
    assert copy.read_text() == "runpod-abc-1 ssh-ed25519 AAAA\n" and copy.stat().st_uid == api


def test_on_the_local_cloud_the_api_gets_a_copy_of_its_key_and_a_missing_one_is_refused(stack: Stack) -> None:
    key_file = stack.tmp / "state" / "localcloud" / "api_key"
    before = sorted(str(p.relative_to(stack.tmp)) for p in stack.tmp.rglob("*"))
    missing = stack.deploy("-e", "app_cloud=local", check=False)
    assert missing.returncode != 0
    assert (f"app_localcloud_api_key_file {key_file} does not exist on this machine: start the local cloud first"
            in flat(missing.stdout)), missing.stdout[-3000:]
    assert "Nothing of the API was changed." in flat(missing.stdout)
    assert sorted(str(p.relative_to(stack.tmp)) for p in stack.tmp.rglob("*")) == before

    local_key = "local" + uuid.uuid4().hex
    key_file.parent.mkdir(parents=True)
    key_file.write_text(local_key + "\n")
    key_file.chmod(0o600)
    result = stack.deploy("-e", "app_cloud=local")
    # The API's own copy (its user's), never the local cloud's file itself.
    assert stack.copy.read_text() == local_key + "\n"
    assert (stack.copy.stat().st_uid, stack.copy.stat().st_mode & 0o777) == (10001, 0o600)
    assert key_file.stat().st_uid == 0
    assert f"{stack.copy}:/run/gpuops/cloud_api_key:ro" in stack.volumes()
    assert not [v for v in stack.volumes() if v.startswith(str(key_file))], stack.volumes()
    assert local_key not in result.stdout + result.stderr


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(tmp_path, prefix="gpuopskey")
    dep.use_service_plane()
    try:
        yield dep
    finally:
        dep.stop()


def test_teardown_removes_the_apis_copy_of_the_key_with_the_stack(deployment: Deployment) -> None:
    copy = deployment.state_dir / "stack" / "app" / "secrets" / "cloud_api_key"
    copy.parent.mkdir(parents=True)
    copy.write_text("rpa_READONLY" + uuid.uuid4().hex + "\n")
    copy.chmod(0o600)
    # keep_stack=true: the API goes on running, with its key.
    kept = deployment.playbook("./teardown.yml", "-e", "keep_stack=true")
    assert copy.exists(), kept.stdout[-3000:]
    gone = deployment.playbook("./teardown.yml")
    assert not copy.exists()
    assert "Remove the API's copy of the RunPod key" in gone.stdout
    again = deployment.playbook("./teardown.yml")
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout[-3000:]
