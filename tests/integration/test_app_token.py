"""The app role's API token on this machine (issue 12): generated, shown as a file path only, rotated with one
command, and taken up by a running API without a restart.

No Docker and no pod: the API runs as a process (python -m gpuops_api, as in its
image) against closed upstream ports, the web app is a tiny HTTP server with a
/config.js. The role's own tasks write the tokens (tasks_from: token), its verify
entry point prints what the deploy prints, playbooks/rotate_token.yml rotates,
playbooks/summary.yml prints the summary; no output may contain a token's value.
About 30 s.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.helpers import REPO, VENV_BIN, free_port, recap, run, wait_for

pytestmark = [pytest.mark.integration]

ROLE = REPO / "collections/ansible_collections/gpuops/platform/roles/app"
#: Only this machine (the checkout's inventory would ask the cloud for pods).
LOCALHOST = ["-i", "localhost,", "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={VENV_BIN}/python",
             "-e", f"gpuops_root={REPO}"]


class _ConfigJs(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b'window.GPUOPS_CONFIG = {"apiBase": "http://127.0.0.1"};\n'
        self.send_response(200 if self.path == "/config.js" else 404)
        self.send_header("Content-Type", "application/javascript")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Deployment:
    tmp: Path
    stack: Path
    api_port: int
    web_port: int
    outputs: list[str]

    @property
    def token_file(self) -> Path:
        return self.stack / "api" / "token"

    @property
    def metrics_token_file(self) -> Path:
        return self.stack / "prometheus" / "secrets" / "api-metrics-token"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def playbook(self, playbook: str | Path, *extra: str) -> str:
        result = run([str(VENV_BIN / "ansible-playbook"), *LOCALHOST, str(playbook),
                      "-e", f"gpuops_state_dir={self.tmp / 'state'}", "-e", f"app_stack_dir={self.stack}",
                      "-e", f"app_api_port={self.api_port}",
                      "-e", f"app_web_port={self.web_port}", *extra], timeout=300)
        output = result.stdout + result.stderr
        # Ansible folds long message lines: compare with whitespace runs made single spaces.
        flat = " ".join(output.split())
        self.outputs += [output, flat, flat.replace(" ", "")]
        return output

    def get(self, path: str, token: str | None = None, host: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        if host is not None:
            headers["Host"] = host
        return httpx.get(self.api + path, headers=headers, timeout=10)


def flat(output: str) -> str:
    """Ansible folds long message lines: the output with every whitespace run made one space."""
    return " ".join(output.split())


def _api_config(tmp: Path, stack: Path, port: int) -> Path:
    """The API's configuration in the role's shape (api.yml.j2), with host paths and closed upstream ports."""
    (tmp / "secrets").mkdir()
    (tmp / "secrets" / "jwt.key").write_bytes(os.urandom(64))
    (tmp / "secrets" / "cloud_api_key").write_text("integration-test-key\n")
    closed = f"http://127.0.0.1:{free_port()}"
    config = {
        "listen_host": "127.0.0.1", "listen_port": port,
        "token_file": str(stack / "api" / "token"),
        "metrics_token_file": str(stack / "prometheus" / "secrets" / "api-metrics-token"),
        "cors_origins": [], "trusted_hosts": [], "cloud": "local",
        "prometheus_url": closed, "grafana_url": None, "slurmrestd_url": closed, "slurm_api_version": None,
        "slurm_user": "root", "slurm_jwt_key_file": str(tmp / "secrets" / "jwt.key"),
        "cloud_api_url": f"{closed}/v2", "cloud_api_key_file": str(tmp / "secrets" / "cloud_api_key"),
        "pods_file": str(tmp / "pods.json"),
        "ssh_private_key_file": str(tmp / "id_ed25519"), "ssh_known_hosts_file": str(tmp / "known_hosts"),
        "ssh_user": "root", "job_output_dir": "/var/lib/gpuops/jobs/api", "upstream_timeout_seconds": 2,
    }
    path = tmp / "api.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("app-token")
    web = ThreadingHTTPServer(("127.0.0.1", 0), _ConfigJs)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    deploy = Deployment(tmp, tmp / "stack", free_port(), web.server_address[1], [])
    # The role's token step, as the deploy runs it (secrets.yml imports it): the first run generates both files.
    (tmp / "token.yml").write_text(yaml.safe_dump([{
        "name": "The app role's tokens", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Tokens", "ansible.builtin.include_role": {"name": "gpuops.platform.app",
                                                                       "tasks_from": "token"}}]}]))
    deploy.playbook(tmp / "token.yml")
    log = (tmp / "api.log").open("w")
    api = subprocess.Popen([sys.executable, "-m", "gpuops_api"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                           env={**os.environ, "PYTHONPATH": str(REPO / "app/api"),
                                "GPUOPS_API_CONFIG": str(_api_config(tmp, deploy.stack, deploy.api_port))})
    try:
        def healthy() -> bool:
            assert api.poll() is None, f"the API exited {api.returncode}: {(tmp / 'api.log').read_text()[-3000:]}"
            try:
                return deploy.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the API", healthy, timeout=60, interval=0.5)
        yield deploy
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(timeout=10)
        except subprocess.TimeoutExpired:
            api.kill()
        web.shutdown()
        log.close()
        # No playbook run may have printed a token that ever existed in the files.
        for output in deploy.outputs:
            for name in ("api-token-values", "metrics-token-values"):
                for value in getattr(deploy, name, []):
                    assert value not in output, f"a token value was printed:\n{output}"


def _remember(deploy: Deployment) -> tuple[str, str]:
    """The current tokens, remembered so that the fixture checks every output for them at the end."""
    api, metrics = deploy.token_file.read_text().strip(), deploy.metrics_token_file.read_text().strip()
    for name, value in (("api-token-values", api), ("metrics-token-values", metrics)):
        values = getattr(deploy, name, [])
        values.append(value)
        setattr(deploy, name, values)
    return api, metrics


def _never_printed(deploy: Deployment, *values: str) -> None:
    for output in deploy.outputs:
        for value in values:
            assert len(value) >= 32
            assert value not in output, f"a token value was printed:\n{output}"


def test_the_tokens_are_generated_private_and_never_printed(deployment: Deployment) -> None:
    api, metrics = _remember(deployment)
    assert deployment.token_file.stat().st_mode & 0o777 == 0o600
    assert deployment.token_file.parent.stat().st_mode & 0o777 == 0o700
    assert deployment.metrics_token_file.stat().st_mode & 0o777 == 0o644
    assert api != metrics
    _never_printed(deployment, api, metrics)


def test_the_deploy_prints_the_token_file_not_the_token(deployment: Deployment) -> None:
    api, metrics = _remember(deployment)
    (deployment.tmp / "verify.yml").write_text(yaml.safe_dump([{
        "name": "The app role's tokens and verify step", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": step, "ansible.builtin.include_role": {"name": "gpuops.platform.app", "tasks_from": step}}
                  for step in ("token", "verify")]}]))
    # The first deployment of a stack (the token is generated in this very run) and a later one.
    fresh = deployment.tmp / "fresh-stack"
    for run_number in (1, 2):
        output = deployment.playbook(deployment.tmp / "verify.yml", "-e", f"app_stack_dir={fresh}")
        token_file = fresh / "api" / "token"
        generated = token_file.read_text().strip()
        assert recap(output)["localhost"]["failed"] == 0
        assert generated not in output and generated not in flat(output).replace(" ", "")
        intro = "A new API token was generated: " if run_number == 1 else "API token: "
        assert f"{intro}{token_file} (mode 0600" in flat(output)
        # No suggested command carries the token (a process's argv is readable by every local user).
        assert "#token=" not in output and "$(cat" not in output
        assert "playbooks/rotate_token.yml" in flat(output)
        if run_number == 2:
            assert recap(output)["localhost"]["changed"] == 0  # generated once
    assert deployment.token_file.read_text().strip() == api
    _never_printed(deployment, api, metrics)


def test_the_summary_prints_the_token_file_not_the_token(deployment: Deployment) -> None:
    api, metrics = _remember(deployment)
    output = deployment.playbook(REPO / "playbooks/summary.yml", "-e", f"observability_stack_dir={deployment.stack}",
                                 "-e", "gpuops_cloud=local")
    assert f"(API token in {deployment.token_file})" in flat(output)
    _never_printed(deployment, api, metrics)


def test_a_rotation_takes_effect_in_the_running_api_without_a_restart(deployment: Deployment) -> None:
    old, metrics = _remember(deployment)
    assert deployment.get("/api/v1/info", old).status_code == 200
    inode = deployment.token_file.stat().st_ino
    output = deployment.playbook(REPO / "playbooks/rotate_token.yml")
    new, metrics_after = _remember(deployment)
    assert recap(output)["localhost"]["failed"] == 0
    assert f"New API token in {deployment.token_file} (mode 0600)" in flat(output)
    assert new != old and len(new) >= 32
    assert metrics_after == metrics  # the metrics-only token is separate
    # Written to a new file renamed over the old one, still 0600.
    assert deployment.token_file.stat().st_ino != inode
    assert deployment.token_file.stat().st_mode & 0o777 == 0o600
    assert not [p.name for p in deployment.token_file.parent.iterdir() if p.name != "token"]
    # The same API process: the old token is refused at once, the new one works.
    refused = deployment.get("/api/v1/info", old)
    assert refused.status_code == 401 and "rotated" in refused.json()["detail"]
    assert deployment.get("/api/v1/info", new).status_code == 200
    assert deployment.get("/metrics", metrics).status_code == 200
    _never_printed(deployment, old, new, metrics)


def test_the_metrics_token_rotates_on_its_own(deployment: Deployment) -> None:
    api, old_metrics = _remember(deployment)
    output = deployment.playbook(REPO / "playbooks/rotate_token.yml", "-e", "rotate=metrics")
    api_after, new_metrics = _remember(deployment)
    assert f"New metrics-only token in {deployment.metrics_token_file}" in flat(output)
    assert api_after == api and new_metrics != old_metrics
    assert deployment.metrics_token_file.stat().st_mode & 0o777 == 0o644
    assert deployment.get("/metrics", old_metrics).status_code == 401
    assert deployment.get("/metrics", new_metrics).status_code == 200
    assert deployment.get("/api/v1/info", new_metrics).status_code == 401
    assert deployment.get("/api/v1/info", api).status_code == 200
    _never_printed(deployment, api, old_metrics, new_metrics)


def test_an_unknown_rotate_choice_is_refused_and_changes_nothing(deployment: Deployment) -> None:
    api, metrics = _remember(deployment)
    stamps = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in (deployment.token_file, deployment.metrics_token_file)]
    result = run([str(VENV_BIN / "ansible-playbook"), *LOCALHOST, str(REPO / "playbooks/rotate_token.yml"), "-e", f"app_stack_dir={deployment.stack}",
                  "-e", f"gpuops_state_dir={deployment.tmp / 'state'}", "-e", "rotate=everything"], check=False, timeout=300)
    assert result.returncode != 0
    assert "rotate=everything is not one of api (the default), metrics, all" in result.stdout
    assert [(p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (deployment.token_file, deployment.metrics_token_file)] == stamps
    assert deployment.get("/api/v1/info", api).status_code == 200


def test_the_running_api_refuses_foreign_hosts_and_tells_anonymous_readiness_booleans(deployment: Deployment) -> None:
    api, _ = _remember(deployment)
    assert deployment.get("/healthz", host="evil.example").status_code == 400
    assert deployment.get("/api/v1/info", api, host=f"evil.example:{deployment.api_port}").status_code == 400
    assert deployment.get("/healthz", host=f"localhost:{deployment.api_port}").status_code == 200
    anonymous = deployment.get("/readyz")
    assert anonymous.status_code == 503  # the upstreams are closed ports
    body = anonymous.json()
    assert body["ready"] is False and set(body["upstreams"]) >= {"prometheus", "slurmrestd", "cloud"}
    assert all(check == {"ok": False} for check in body["upstreams"].values()), body
    detailed = deployment.get("/readyz", api).json()
    assert all(check["detail"] for check in detailed["upstreams"].values())
    docs = deployment.get("/docs")
    assert docs.status_code == 200 and not re.search(r"https?:", docs.text)
    assert deployment.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_no_task_reads_a_token_file_to_print_it() -> None:
    # The deploy's only reads of secret files are for copying them (no_log); none names the API tokens.
    for path in [*ROLE.rglob("*.yml"), *(REPO / "playbooks").glob("*.yml"), *REPO.glob("*.yml")]:
        text = path.read_text()
        for match in re.finditer(r"(slurp:|lookup\(['\"](?:ansible\.builtin\.)?file['\"])[^\n]*(\n[^\n]*){0,3}", text):
            assert "token" not in match.group(0).lower(), f"{path}: {match.group(0)}"
