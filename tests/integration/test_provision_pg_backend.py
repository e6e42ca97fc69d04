"""A shared Terraform backend: provision, inventory, idempotence, locking and teardown with Terraform's `pg` backend.

Everything is real: a throwaway PostgreSQL cluster from Debian's `postgresql` package (initdb and pg_ctl of
/usr/lib/postgresql/<version>/bin, run as an unprivileged user, on a free port, in a temporary directory; no system
cluster is touched), the local cloud with the Docker backend, Terraform with the stand-in provider, the provision
role with `provision_terraform_backend: {type: pg, ...}`, the inventory plugin and teardown.yml.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import select
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.integration.helpers import VENV_BIN, Deployment, changed_tasks, docker_available, free_port, recap, run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

PREFIX = "gpuopspg"
PASSWORD = "pg-secret-8d1f0c"  # a throwaway cluster's; the test proves it never shows in the output


def _pg_bin() -> Path:
    """The newest PostgreSQL server of Debian's packages (make setup installs `postgresql`)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        pytest.fail("PostgreSQL's server is not installed (/usr/lib/postgresql/<version>/bin/initdb): run make setup, "
                    "which installs Debian's postgresql package")
    return Path(found[-1]).parent


class Postgres:
    """A PostgreSQL cluster of its own, as an unprivileged user, on 127.0.0.1:<free port>, in a temporary directory."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        # Not under pytest's 0700 temporary root: the cluster's user must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="gpuops-pg-"))
        self.data = self.dir / "data"
        self.user = os.environ.get("USER") if os.geteuid() else "nobody"
        if os.geteuid() == 0:
            entry = pwd.getpwnam("nobody")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        (self.dir / "pw").write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            os.chown(self.dir / "pw", pwd.getpwnam("nobody").pw_uid, -1)
        os.chmod(self.dir / "pw", 0o600)

    def _as_user(self, *argv: str) -> list[str]:
        # initdb and postgres refuse to run as root.
        return ["runuser", "-u", "nobody", "--", *argv] if os.geteuid() == 0 else list(argv)

    def start(self) -> None:
        run(self._as_user(str(self.bin / "initdb"), "-D", str(self.data), "-U", "terraform", "-E", "UTF8",
                          "--auth=scram-sha-256", f"--pwfile={self.dir / 'pw'}"))
        run(self._as_user(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                          "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"))
        self.psql("CREATE DATABASE gpuops")

    def stop(self) -> None:
        subprocess.run(self._as_user(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"),
                       capture_output=True, check=False, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def conn_str(self) -> str:
        return f"postgres://terraform:{PASSWORD}@127.0.0.1:{self.port}/gpuops?sslmode=disable"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "terraform", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True, text=True, check=False, timeout=60, env={**os.environ, "PGPASSWORD": PASSWORD})
        assert result.returncode == 0, result.stderr
        return result.stdout

    def state(self) -> dict:
        """The state Terraform's pg backend keeps for the default workspace."""
        rows = self.psql("SELECT data FROM terraform_remote_state.states WHERE name = 'default'", "gpuops")
        assert rows.strip(), "no state in PostgreSQL"
        return json.loads(rows)


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres):
    root = tmp_path_factory.mktemp("pgdeploy")
    dep = Deployment(root, prefix=PREFIX)
    backend = root / "backend.json"
    backend.write_text(json.dumps({"provision_terraform_backend": {"type": "pg", "config": {"conn_str": postgres.conn_str}},
                                   "provision_pod_count": 1}))
    backend.chmod(0o600)
    dep.extra = [*dep.extra, "-e", f"@{backend}"]
    yield dep
    if dep.api_key_file.exists():
        dep.playbook("teardown.yml", check=False)
    dep.stop()


def _tf_dir(dep: Deployment) -> Path:
    return dep.state_dir / "local" / "terraform"


def _backups(dep: Deployment) -> list[Path]:
    return sorted((_tf_dir(dep) / "backups").glob("terraform.tfstate.*"))


def test_the_terraform_binary_has_the_pg_backend(tmp_path):
    (tmp_path / "main.tf").write_text('terraform {\n  backend "pg" {}\n}\n')
    result = run([str(VENV_BIN / "terraform"), f"-chdir={tmp_path}", "validate", "-no-color"],
                 env={**os.environ, "TF_DATA_DIR": str(tmp_path / "data")}, check=False)
    assert "Unsupported backend type" not in result.stderr + result.stdout, result.stderr


def test_provision_keeps_the_state_in_postgresql(deployment, postgres):
    result = deployment.playbook("provision.yml")
    assert recap(result.stdout)["localhost"]["failed"] == 0
    assert PASSWORD not in result.stdout + result.stderr

    pods = deployment.api().get("/pods").json()["pods"]
    assert [p["name"] for p in pods] == [f"{PREFIX}-0"]
    deployment.seen_ids.update(p["id"] for p in pods)
    # The state is in PostgreSQL, with this pod, and in no local file.
    state = postgres.state()
    ids = [i["attributes"]["id"] for r in state["resources"] if r["type"] == "runpod_pod" for i in r["instances"]]
    assert ids == [pods[0]["id"]]
    tf = _tf_dir(deployment)
    assert not (tf / "terraform.tfstate").exists()
    assert not list((tf / "module").glob("*.tfstate*"))
    assert json.loads((tf / "backend.json").read_text())["type"] == "pg"
    # Terraform's record of the backend holds the password: only this user reads it.
    assert stat.S_IMODE((tf / "data" / "terraform.tfstate").stat().st_mode) == 0o600
    # A versioned local copy of what the backend holds, and of the key pair and the id.
    backups = _backups(deployment)
    assert backups and json.loads(backups[-1].read_text())["lineage"] == state["lineage"]
    assert backups[-1].name.endswith(f".{state['serial']}")
    assert stat.S_IMODE((tf / "backups").stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (tf / "backups").rglob("*") if p.is_file())
    assert len(list((tf / "backups" / "ssh").glob("id_ed25519.*.pub"))) == 1
    assert len(list((tf / "backups").glob("deployment-id.*"))) == 1


def test_the_inventory_reads_the_backend(deployment):
    inventory = json.loads(deployment.inventory_list().stdout)
    assert inventory["gpu_pods"]["hosts"] == [f"{PREFIX}-0"]


def test_a_second_provision_changes_nothing(deployment, postgres):
    serial = postgres.state()["serial"]
    backups = _backups(deployment)
    result = deployment.playbook("provision.yml")
    assert all(counts["changed"] == 0 for counts in recap(result.stdout).values()), changed_tasks(result.stdout)
    assert postgres.state()["serial"] == serial
    assert _backups(deployment) == backups


def _terraform_env(dep: Deployment) -> dict[str, str]:
    return {**os.environ, "TF_DATA_DIR": str(_tf_dir(dep) / "data"), "TF_IN_AUTOMATION": "1",
            "TF_CLI_CONFIG_FILE": str(dep.state_dir / "localcloud" / "terraform.rc"),
            "RUNPOD_API_KEY_FILE": str(dep.api_key_file),
            "RUNPOD_API_BASE_URL": f"http://127.0.0.1:{dep.port}"}


def test_an_apply_while_another_holds_the_lock_fails_and_changes_nothing(deployment, postgres):
    """A second Terraform applies while the lock is held: Terraform's lock error, nothing created."""
    tf = _tf_dir(deployment)
    serial = postgres.state()["serial"]
    key = (deployment.state_dir / "local" / "ssh" / "id_ed25519.pub").read_text().strip()
    # An operator's apply that waits for its approval holds the state's lock all the while.
    holder = subprocess.Popen(
        [str(VENV_BIN / "terraform"), f"-chdir={tf / 'module'}", "apply", "-no-color",
         "-var", "pod_count=2", "-var", f"name_prefix={PREFIX}", "-var", f"ssh_public_key={key}",
         "-var", "image=runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=_terraform_env(deployment))
    try:
        # The prompt ends without a newline: read what comes, as it comes.
        seen = ""
        deadline = time.monotonic() + 120
        while "Enter a value:" not in seen and time.monotonic() < deadline and holder.poll() is None:
            if select.select([holder.stdout], [], [], 1)[0]:
                seen += os.read(holder.stdout.fileno(), 65536).decode("utf-8", errors="replace")
        assert "Enter a value:" in seen, seen[-3000:]
        # The lock is PostgreSQL's advisory lock on the workspace's row.
        assert postgres.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted", "gpuops").strip() != "0"

        result = deployment.playbook("provision.yml", check=False)
        out = " ".join(result.stdout.split())
        assert result.returncode != 0
        assert "Error acquiring the state lock" in out, result.stdout[-4000:]
        assert "This run created no pod" in out
        assert PASSWORD not in result.stdout + result.stderr
        assert [p["name"] for p in deployment.api().get("/pods").json()["pods"]] == [f"{PREFIX}-0"]
        assert postgres.state()["serial"] == serial
    finally:
        if holder.poll() is None:
            holder.communicate(b"no\n", timeout=120)
    assert holder.returncode != 0  # "Apply cancelled."
    # The lock is free again: the next run goes through and changes nothing.
    again = deployment.playbook("provision.yml")
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), changed_tasks(again.stdout)


def test_teardown_destroys_the_pod_through_the_backend(deployment, postgres):
    result = deployment.playbook("teardown.yml")
    assert recap(result.stdout)["localhost"]["failed"] == 0
    assert "No pod of deployment gpuopspg is left on local (1 destroyed by id)" in " ".join(result.stdout.split())
    assert [p for p in deployment.api().get("/pods").json()["pods"] if p["status"] != "TERMINATED"] == []
    state = postgres.state()
    assert [r for r in state["resources"] if r["type"] == "runpod_pod"] == []
    assert not (_tf_dir(deployment) / "terraform.tfstate").exists()
    # The state before the destroy is kept.
    before = [json.loads(p.read_text()) for p in _backups(deployment)]
    assert any(r["type"] == "runpod_pod" and r["instances"] for b in before for r in b["resources"])
