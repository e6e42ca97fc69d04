"""Alerts that reach someone: the stack's Alertmanager, a webhook route and the API's GET /api/v1/alerts.

The stack (playbooks/stack.yml, the observability role alone, as in
test_stack.py) is deployed in its own Compose project, on free ports, with
two fake pods of which one has no "tunnel" (nothing listens on its port):
its GPU exporter is down, and the shipped rule GpuopsGpuExporterDown (up == 0
on the gpu job, for 1 minute) fires. Alertmanager routes it to a webhook
receiver (a tiny HTTP server of this test, with a bearer token read from a
file) and the gpuops API, run from app/api against that Alertmanager, lists
it. Prometheus evaluates every 2 s and Alertmanager waits 1 s per group, so
the alert arrives about 70 s after the deployment. Everything the test
started is removed whatever fails. About 3 minutes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.helpers import REPO, docker_available, free_port, recap
from tests.integration.test_stack import PODS, SLURM_PAGE, Stack, dcgm_page, listeners, loopback, serve, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (scripts/setup.sh)"),
]

#: The pod whose tunnel is down in this test (no server on its port).
DOWN_POD = "itpod-1"
RECEIVER = "it-hook"


class Webhook:
    """A receiver of Alertmanager's webhook: keeps every POST (its Authorization header and JSON body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str | None, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append((self.headers.get("Authorization"), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def alerts(self, name: str) -> list[tuple[str | None, dict, dict]]:
        """(Authorization, notification, alert) for every alert named `name` received so far."""
        return [(auth, note, alert) for auth, note in self.received for alert in note.get("alerts", [])
                if alert.get("labels", {}).get("alertname") == name]


def start_api(directory: Path, alertmanager_url: str, prometheus_url: str) -> tuple[subprocess.Popen, str, str]:
    """The gpuops API (python -m gpuops_api from app/api) on a free port; returns (process, base URL, token)."""
    directory.mkdir()
    token = secrets.token_urlsafe(32)
    (directory / "api_token").write_text(token + "\n")
    (directory / "slurm_jwt_hs256.key").write_bytes(secrets.token_bytes(64))
    (directory / "cloud_api_key").write_text("unused\n")
    port = free_port()
    config = {
        "listen_host": "127.0.0.1", "listen_port": port, "token_file": str(directory / "api_token"),
        "cloud": "local", "prometheus_url": prometheus_url, "alertmanager_url": alertmanager_url,
        # Nothing answers there: this test reads alerts only.
        "slurmrestd_url": f"http://127.0.0.1:{free_port()}", "cloud_api_url": f"http://127.0.0.1:{free_port()}/v2",
        "slurm_jwt_key_file": str(directory / "slurm_jwt_hs256.key"),
        "cloud_api_key_file": str(directory / "cloud_api_key"),
        "pods_file": str(directory / "pods.json"),
        "ssh_private_key_file": str(directory / "id_ed25519"), "ssh_known_hosts_file": str(directory / "known_hosts"),
    }
    (directory / "api.yml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "GPUOPS_API_CONFIG": str(directory / "api.yml"), "PYTHONPATH": str(REPO / "app" / "api")}
    log = (directory / "api.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "gpuops_api"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the API answering /healthz", lambda: process.poll() is None
                 and httpx.get(f"{base}/healthz", timeout=2).status_code == 200, 30)
    except AssertionError:
        process.kill()
        raise AssertionError("the API did not start:\n" + (directory / "api.log").read_text()) from None
    return process, base, token


def inspect_service(stack: Stack, service: str) -> dict:
    for container in stack.containers():
        info = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True,
                                         check=True).stdout)[0]
        if info["Config"]["Labels"].get("com.docker.compose.service") == service:
            return info
    raise AssertionError(f"no {service} container in project {stack.project}")


def test_an_alert_reaches_the_webhook_and_the_api(tmp_path):
    hook = Webhook()
    token_file = tmp_path / "hook-token"
    hook_token = secrets.token_urlsafe(24)
    token_file.write_text(hook_token + "\n")
    token_file.chmod(0o600)
    alertmanager_port = free_port()
    receiver = {"name": RECEIVER, "kind": "webhook", "url": hook.url, "bearer_token_file": str(token_file),
                "matchers": ['severity="critical"']}
    stack = Stack(
        tmp_path,
        observability_alertmanager_port=alertmanager_port,
        observability_scrape_interval="2s",
        observability_alert_group_wait="1s",
        observability_alert_group_interval="5s",
        observability_alert_receivers=[receiver],
    )
    # Every fake pod but DOWN_POD serves its exporter; the fake API serves the Slurm metrics.
    servers = [serve(stack.base + 2 * i, lambda pod=name, gpus=spec[3]: dcgm_page(pod, gpus))
               for i, (name, spec) in enumerate(sorted(PODS.items())) if name != DOWN_POD]
    servers.append(serve(stack.api_port, lambda: SLURM_PAGE))
    api = None
    try:
        # 1. A receiver with mistakes stops the run before anything changes, saying what is wrong.
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"observability_alert_receivers": [
            {"name": "web-app", "kind": "webhook"},
            {"name": "mail", "kind": "email", "smarthost": "smtp.example.org", "from": "a@example.org",
             "to": ["b@example.org"], "auth_password_file": str(tmp_path / "missing")},
        ]}))
        refused = stack.playbook("-e", f"@{bad}", check=False)  # the later -e wins
        assert refused.returncode != 0
        out = refused.stdout
        assert "observability_alert_receivers[0] (web-app)" in out, out[-3000:]
        assert "is reserved for the web app's banner" in out and "webhook needs url" in out
        assert "observability_alert_receivers[1] (mail)" in out
        assert "is not host:port" in out and "give auth_username and auth_password_file together" in out
        assert "is not a file on this machine" in out
        assert not stack.stack_dir.exists() and stack.containers() == []

        # 2. Deploy.
        first = stack.playbook()
        assert recap(first.stdout)["localhost"]["failed"] == 0
        assert hook_token not in first.stdout + first.stderr
        secret = stack.stack_dir / "alertmanager" / "secrets" / f"{RECEIVER}-bearer-token"
        assert secret.stat().st_mode & 0o777 == 0o600 and secret.read_text().strip() == hook_token
        config = (stack.stack_dir / "alertmanager" / "alertmanager.yml").read_text()
        assert hook_token not in config and "/etc/alertmanager/secrets/it-hook-bearer-token" in config
        alerting = yaml.safe_load((stack.stack_dir / "prometheus" / "prometheus.yml").read_text())["alerting"]
        assert alerting["alertmanagers"][0]["static_configs"][0]["targets"] == [f"127.0.0.1:{alertmanager_port}"]

        # 3. Alertmanager runs without privileges, on loopback only.
        info = inspect_service(stack, "alertmanager")
        user = info["Config"]["User"]
        assert user and user.split(":")[0] not in ("", "0", "root"), user
        assert info["HostConfig"]["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in info["HostConfig"]["SecurityOpt"]
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert any(m["Type"] == "volume" and m["Destination"] == "/alertmanager" for m in info["Mounts"])
        ours = listeners(stack)
        assert any(f":{alertmanager_port} " in line for line in ours), ours
        for line in ours:
            assert loopback(line.split()[3]), f"listens beyond loopback: {line}"

        # 4. The tunnel-down alert reaches the webhook: name, labels, the bearer token from the file.
        found = wait_for("GpuopsGpuExporterDown at the webhook", lambda: hook.alerts("GpuopsGpuExporterDown"), 180)
        auth, note, alert = found[0]
        assert auth == f"Bearer {hook_token}"
        assert note["receiver"] == RECEIVER and note["status"] == "firing"
        assert alert["status"] == "firing"
        labels = alert["labels"]
        assert labels["pod"] == DOWN_POD and labels["severity"] == "critical" and labels["job"] == "gpu"
        assert labels["pod_id"] == PODS[DOWN_POD][0] and labels["gpu_type"] == PODS[DOWN_POD][1]
        assert DOWN_POD in alert["annotations"]["summary"]
        # Only the pod that is down.
        assert {a["labels"]["pod"] for _, _, a in hook.alerts("GpuopsGpuExporterDown")} == {DOWN_POD}

        # 5. The API lists it (GET /api/v1/alerts, with its token).
        api, base, token = start_api(tmp_path / "api", f"http://127.0.0.1:{alertmanager_port}",
                                     f"http://127.0.0.1:{stack.prometheus_port}")
        assert httpx.get(f"{base}/api/v1/alerts", timeout=10).status_code == 401
        answer = httpx.get(f"{base}/api/v1/alerts", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        listed = [a for a in answer.json()["alerts"] if a["name"] == "GpuopsGpuExporterDown"]
        assert answer.json()["configured"] is True
        assert [a["labels"]["pod"] for a in listed] == [DOWN_POD]
        # Routed to the webhook (a matching route replaces the root's web-app receiver); listed all the same.
        assert listed[0]["severity"] == "critical" and listed[0]["receivers"] == [RECEIVER]

        # 6. A second run changes nothing.
        second = stack.playbook()
        assert recap(second.stdout)["localhost"]["changed"] == 0, second.stdout[-4000:]

        # 7. Teardown removes Alertmanager and its volume too.
        stack.playbook("-e", "observability_state=absent", "-e", "observability_purge=true")
        assert stack.containers() == [] and stack.volumes() == []
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(10)
            except subprocess.TimeoutExpired:
                api.kill()
        stack.cleanup()
        for server in servers:
            server.shutdown()
        hook.server.shutdown()
