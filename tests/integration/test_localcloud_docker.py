"""The local cloud with the Docker backend, end to end: a real server, real pods, real SSH.

Needs a Docker engine, the pod image ``gpuops/pod:bookworm`` and the stand-in
of RunPod's PyTorch image ``gpuops/runpod-pytorch-standin:latest``. Skipped
only when Docker is unreachable; a missing image fails with the command to
build it.
"""

from __future__ import annotations

import io
import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from docker.errors import NotFound

from localcloud.backends.base import BackendUnavailable
from localcloud.backends.docker import ICC_OPTION, LABEL_CLOUD, connect_docker, container_name, global_network_name
from localcloud.config import DEFAULT_POD_IMAGE, DEFAULT_PYTORCH_STANDIN_IMAGE, Settings
from tests.integration.helpers import REPO, free_port, localcloud_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

READY_DELAY = 1.0
WAIT_S = 90.0
RUNPOD_IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"


# -- helpers ---------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last result: {last!r}")


def tcp_outcome(port: int) -> str:
    """Connect to 127.0.0.1:port: 'refused', 'ssh' (an SSH banner came) or 'silent'."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.settimeout(5)
            try:
                banner = sock.recv(64)
            except OSError:
                return "silent"
            return "ssh" if banner.startswith(b"SSH-") else "silent"
    except ConnectionRefusedError:
        return "refused"


def expect_tcp(port: int, outcome: str, timeout: float = 30.0) -> None:
    """Wait until connecting to 127.0.0.1:port gives ``outcome`` (see tcp_outcome)."""
    wait_for(f"port {port} to be {outcome!r}", lambda: tcp_outcome(port) == outcome, timeout)


@dataclass
class SshKey:
    """A throwaway ed25519 key pair."""

    private: paramiko.Ed25519Key
    public_line: str


@dataclass
class Cloud:
    """A running local cloud (docker backend) and how to reach it."""

    state_dir: Path
    port: int
    network: str
    api: httpx.Client

    @property
    def args(self) -> list[str]:
        """The CLI options naming this cloud."""
        return [
            "--backend",
            "docker",
            "--state-dir",
            str(self.state_dir),
            "--port",
            str(self.port),
            "--network",
            self.network,
            "--ssh-ready-delay",
            str(READY_DELAY),
        ]

    @property
    def cloud_id(self) -> str:
        """The label value of this cloud's containers."""
        return Settings(state_dir=self.state_dir).cloud_id

    def cli(self, command: str, *extra: str) -> dict[str, Any]:
        """Run ``python -m localcloud COMMAND`` for this cloud; return its JSON line."""
        proc = subprocess.run(
            [sys.executable, "-m", "localcloud", command, *self.args, *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"localcloud {command} failed:\n{proc.stderr}"
        return json.loads(proc.stdout)

    def create_pod(self, key: SshKey, **overrides: Any) -> dict[str, Any]:
        """POST /v2/pods with startSsh (the account's registered key); return the pod."""
        body = {
            "name": "it-pod",
            "image": RUNPOD_IMAGE,
            "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 2},
            "ports": ["22/tcp", "8888/http"],
            "startSsh": True,
            "mounts": {"persistent": {"size": 10, "path": "/workspace"}},
            **overrides,
        }
        resp = self.api.post("/pods", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def action(self, pod_id: str, action: str) -> dict[str, Any]:
        """POST /v2/pods/{id}/action; return the pod."""
        resp = self.api.post(f"/pods/{pod_id}/action", json={"action": action})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_ready(self, pod_id: str) -> dict[str, Any]:
        """Poll GET /v2/pods/{id} until it is RUNNING with ssh.direct, as clients must on RunPod."""

        def ready() -> dict[str, Any] | None:
            pod = self.api.get(f"/pods/{pod_id}").json()
            return pod if pod.get("status") == "RUNNING" and pod["ssh"]["direct"] else None

        return wait_for(f"pod {pod_id} to be RUNNING with ssh.direct", ready)

    def internals(self, pod_id: str) -> dict[str, Any]:
        """GET /_localcloud/pods/{id}."""
        resp = self.api.get(f"http://127.0.0.1:{self.port}/_localcloud/pods/{pod_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def fault(self, pod_id: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /_localcloud/pods/{id}/ACTION."""
        resp = self.api.post(f"http://127.0.0.1:{self.port}/_localcloud/pods/{pod_id}/{action}", json=body or {})
        assert resp.status_code == 200, resp.text
        return resp.json()


def ssh_port(pod: dict[str, Any]) -> int:
    """The host port of a ready pod's ssh.direct."""
    return int(pod["ssh"]["direct"]["port"])


def ssh(port: int, key: SshKey, command: str) -> str:
    """Run ``command`` as root over SSH on 127.0.0.1:port (retrying until sshd answers); return stdout."""

    def attempt() -> str:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - throwaway pod and key
        try:
            client.connect(
                "127.0.0.1",
                port=port,
                username="root",
                pkey=key.private,
                look_for_keys=False,
                allow_agent=False,
                timeout=5,
                banner_timeout=5,
                auth_timeout=5,
            )
            _, stdout, stderr = client.exec_command(command, timeout=30)
            status = stdout.channel.recv_exit_status()
            out = stdout.read().decode()
            if status != 0:
                raise AssertionError(f"{command!r} exited {status}: {stderr.read().decode()}")
            return out or "\n"
        finally:
            client.close()

    return wait_for(f"SSH on port {port}", attempt)


def pod_env(port: int, key: SshKey) -> dict[str, str]:
    """The environment an SSH session on the pod sees."""
    return dict(line.split("=", 1) for line in ssh(port, key, "printenv").splitlines() if "=" in line)


def reach_cmd(target: str) -> str:
    """Shell command, run in a pod: print the SSH banner of target:22, 'unresolvable' or 'unreachable'."""
    return (
        "python3 -c \"import socket\ntry:\n socket.getaddrinfo('" + target + "',22)\nexcept OSError:"
        " print('unresolvable'); raise SystemExit\ntry:\n s=socket.create_connection(('" + target + "',22),3);"
        "s.settimeout(3);print(s.recv(7).decode())\nexcept OSError: print('unreachable')\""
    )


def in_pod(docker_client: docker.DockerClient, pod_id: str, command: str) -> str:
    """Run a shell command in a pod's container (docker exec, as root); return its output."""
    code, out = docker_client.containers.get(container_name(pod_id)).exec_run(["sh", "-c", command])
    assert code == 0, f"{command!r} in pod {pod_id} exited {code}: {out.decode()}"
    return out.decode().strip()


def reaches(docker_client: docker.DockerClient, pod_id: str, target: str) -> str:
    """What pod ``pod_id`` gets when it connects to ``target``:22 (see reach_cmd)."""
    return in_pod(docker_client, pod_id, reach_cmd(target))


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    """The Docker engine (skip if unreachable); the pod image and the PyTorch image's stand-in must exist."""
    try:
        client = connect_docker()
    except BackendUnavailable as exc:
        pytest.skip(f"Docker is unreachable: {exc}")
    for image, step in ((DEFAULT_POD_IMAGE, "images"), (DEFAULT_PYTORCH_STANDIN_IMAGE, "standin")):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"the image {image} is missing; build it with scripts/setup.sh {step} (make setup)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def key() -> SshKey:
    """A fresh ed25519 key pair, registered with the cloud's account for startSsh."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return SshKey(paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), public.decode() + " gpuops-it")


def _cleanup(docker_client: docker.DockerClient, cloud: Cloud) -> None:
    """Whatever the test did: no container, volume or network of this cloud survives."""
    subprocess.run(
        [sys.executable, "-m", "localcloud", "stop", "--purge", *cloud.args],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_CLOUD}={cloud.cloud_id}"}):
        container.remove(force=True)
    for volume in docker_client.volumes.list(filters={"label": f"{LABEL_CLOUD}={cloud.cloud_id}"}):
        volume.remove(force=True)
    for network in docker_client.networks.list(names=[cloud.network, global_network_name(cloud.network)]):
        network.remove()


def _running_cloud(docker_client: docker.DockerClient, state_dir: Path, key: SshKey) -> Iterator[Cloud]:
    port = free_port()
    network = f"gpuops-lc-it-{secrets.token_hex(4)}"
    cloud = Cloud(state_dir, port, network, api=None)  # type: ignore[arg-type]
    try:
        started = cloud.cli("start")
        assert started["changed"] is True
        assert started["url"] == f"http://127.0.0.1:{port}/v2"
        cloud.api = localcloud_api(port, Path(started["api_key_file"]))
        assert cloud.api.put("/account/ssh-keys", json={"keys": [key.public_line]}).status_code == 200
        yield cloud
    finally:
        if cloud.api is not None:
            cloud.api.close()
        _cleanup(docker_client, cloud)


@pytest.fixture(scope="module")
def cloud(
    docker_client: docker.DockerClient, key: SshKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cloud]:
    """One local cloud shared by the tests of this module."""
    yield from _running_cloud(docker_client, tmp_path_factory.mktemp("localcloud") / "state", key)


# -- tests -----------------------------------------------------------------------


def test_pods_answer_ssh_with_runpod_env(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    pod = cloud.create_pod(key, name="first")
    assert pod["status"] in ("PROVISIONING", "STARTING") and pod["ssh"]["direct"] is None  # as on RunPod
    pod = cloud.wait_ready(pod["id"])
    port = ssh_port(pod)
    assert pod["ssh"]["direct"]["host"] == "127.0.0.1"
    assert pod["image"] == RUNPOD_IMAGE

    env = pod_env(port, key)  # startSsh put the registered key into PUBLIC_KEY
    assert env["RUNPOD_POD_ID"] == pod["id"]
    assert env["RUNPOD_POD_HOSTNAME"] == pod["id"]
    assert env["RUNPOD_PUBLIC_IP"] == "127.0.0.1"
    assert env["RUNPOD_TCP_PORT_22"] == str(port)
    assert env["RUNPOD_GPU_COUNT"] == "2"
    assert env["RUNPOD_DC_ID"] == pod["dataCenterId"] == "US-TX-3"
    assert "RUNPOD_API_KEY" not in env
    assert not [name for name in env if name.startswith("GPUOPS_")]  # RunPod sets no such variable
    # The rented GPUs, simulated: injected into the container whatever the image, as a GPU runtime would.
    gpus = json.loads(ssh(port, key, "cat /etc/gpuops-localcloud/simulated-gpus.json"))
    assert gpus == {"simulated": True, "podId": pod["id"], "gpuTypeId": "NVIDIA GeForce RTX 4090", "count": 2,
                    "memoryInGb": 24}
    assert ssh(port, key, "hostname").strip() == pod["id"]

    container = docker_client.containers.get(container_name(pod["id"]))
    bindings = container.attrs["HostConfig"]["PortBindings"]
    assert bindings == {"22/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    published = [b for spec in container.attrs["NetworkSettings"]["Ports"].values() for b in (spec or [])]
    assert published and all(b["HostIp"] == "127.0.0.1" for b in published)
    assert container.attrs["HostConfig"]["Init"] is True
    assert container.attrs["HostConfig"]["Privileged"] is False
    assert container.attrs["Config"]["Hostname"] == pod["id"]
    assert container.labels["io.gpuops.localcloud"] == "1"
    assert container.labels["io.gpuops.pod-id"] == pod["id"]
    assert json.loads(container.labels["io.gpuops.localcloud.record"])["id"] == pod["id"]
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [cloud.network]
    network = docker_client.networks.get(cloud.network)
    assert network.attrs["Options"][ICC_OPTION] == "false"
    # runpod/pytorch:* runs the stand-in of RunPod's PyTorch image, never the plain default pod image.
    assert container.image.tags == [DEFAULT_PYTORCH_STANDIN_IMAGE]

    # The log streams on while the pod runs (as RunPod's): read until a system line came.
    with cloud.api.stream("GET", f"/pods/{pod['id']}/logs") as logs:
        assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/event-stream")
        assert any('"source": "system"' in line for line in logs.iter_lines())


def test_plain_pods_cannot_reach_each_other(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    first = cloud.wait_ready(cloud.create_pod(key, name="plain-a")["id"])
    second = cloud.wait_ready(cloud.create_pod(key, name="plain-b")["id"])
    expect_tcp(ssh_port(second), "ssh")  # reachable from the control host on its published port
    second_ip = cloud.internals(second["id"])["private_ip"]
    assert second_ip
    assert reaches(docker_client, first["id"], second_ip) == "unreachable"
    assert reaches(docker_client, second["id"], cloud.internals(first["id"])["private_ip"]) == "unreachable"
    blocked = in_pod(docker_client, first["id"], f"timeout 5 bash -c '</dev/tcp/{second_ip}/22' && echo open || echo closed")
    assert blocked.splitlines()[-1] == "closed"


def test_the_control_host_reaches_a_pod_only_on_its_published_port(
    cloud: Cloud, key: SshKey, docker_client: docker.DockerClient
) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key, name="host-view", globalNetworking=True)["id"])
    expect_tcp(ssh_port(pod), "ssh")  # sshd is up (its published 127.0.0.1 port answers)
    # Something on the pod listens on every interface, as slurmd does.
    docker_client.containers.get(container_name(pod["id"])).exec_run(
        ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"], detach=True)
    in_pod(docker_client, pod["id"], "for i in $(seq 150); do python3 -c \"import socket; "
           "socket.create_connection(('127.0.0.1', 8000), 1)\" 2>/dev/null && exit 0; sleep 0.2; done; exit 1")
    internals = cloud.internals(pod["id"])
    for address in (internals["private_ip"], internals["global_ip"]):
        assert address
        with socket.create_connection((address, 22), timeout=5) as conn:  # sshd: the published port
            assert conn.recv(4) == b"SSH-"
        with pytest.raises(ConnectionRefusedError):  # anything else: refused, as RunPod publishes only the ports asked for
            socket.create_connection((address, 8000), timeout=5).close()


def test_global_networking_pods_reach_each_other_by_internal_dns(
    cloud: Cloud, key: SshKey, docker_client: docker.DockerClient
) -> None:
    gn_a = cloud.wait_ready(cloud.create_pod(key, name="gn-a", globalNetworking=True)["id"])
    gn_b = cloud.wait_ready(cloud.create_pod(key, name="gn-b", globalNetworking=True)["id"])
    plain = cloud.wait_ready(cloud.create_pod(key, name="plain-c")["id"])
    networking = gn_b["globalNetworking"]
    assert networking["enabled"] is True
    assert networking["internalDns"] == f"{gn_b['id']}.runpod.internal"
    assert gn_b["dataCenterId"] in {"US-TX-3", "US-KS-2", "US-CA-2", "EU-RO-1", "US-GA-2"}
    assert plain["globalNetworking"] == {"enabled": False}

    wait_for("sshd in gn-b", lambda: tcp_outcome(ssh_port(gn_b)) == "ssh")
    assert reaches(docker_client, gn_a["id"], networking["internalDns"]) == "SSH-2.0"
    assert reaches(docker_client, gn_b["id"], gn_a["globalNetworking"]["internalDns"]) == "SSH-2.0"
    assert reaches(docker_client, gn_a["id"], networking["ip"]) == "SSH-2.0"
    assert reaches(docker_client, plain["id"], networking["internalDns"]) == "unresolvable"
    assert reaches(docker_client, plain["id"], networking["ip"]) == "unreachable"
    container = docker_client.containers.get(container_name(gn_a["id"]))
    assert sorted(container.attrs["NetworkSettings"]["Networks"]) == sorted(
        [cloud.network, global_network_name(cloud.network)]
    )

    # A cut takes a GN pod off the global network too; a restore brings it back.
    cloud.fault(gn_b["id"], "network/cut")
    expect_tcp(ssh_port(gn_b), "refused")
    assert reaches(docker_client, gn_a["id"], networking["internalDns"]) in ("unresolvable", "unreachable")
    cloud.fault(gn_b["id"], "network/restore")
    expect_tcp(ssh_port(gn_b), "ssh")
    assert reaches(docker_client, gn_a["id"], networking["internalDns"]) == "SSH-2.0"
    assert cloud.internals(gn_b["id"])["global_ip"] == networking["ip"]


def test_global_networking_refused_where_not_offered(cloud: Cloud, key: SshKey) -> None:
    body = {"name": "x", "image": "img", "gpu": {"id": "NVIDIA A40"}, "globalNetworking": True, "dataCenterIds": ["EU-SE-1"]}
    resp = cloud.api.post("/pods", json=body)
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/problem+json"
    assert "globalNetworking is not offered" in resp.json()["detail"]


def test_restart_and_stop_start_wipe_the_container_disk_but_keep_the_persistent_mount(
    cloud: Cloud, key: SshKey, docker_client: docker.DockerClient
) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key)["id"])
    ssh(ssh_port(pod), key, "echo kept > /workspace/mark && echo lost > /root/mark")
    old = docker_client.containers.get(container_name(pod["id"])).id

    restarted = cloud.action(pod["id"], "restart")
    assert restarted["startedAt"] > pod["startedAt"]
    again = cloud.wait_ready(pod["id"])
    assert docker_client.containers.get(container_name(pod["id"])).id != old
    assert ssh(ssh_port(again), key, "cat /workspace/mark; ls /root/mark 2>/dev/null || echo wiped").split() == [
        "kept",
        "wiped",
    ]

    ssh(ssh_port(again), key, "echo lost > /root/mark")
    stopped = cloud.action(pod["id"], "stop")
    assert stopped["status"] == "EXITED" and stopped["cost"] == 0
    assert docker_client.containers.get(container_name(pod["id"])).status == "exited"
    expect_tcp(ssh_port(again), "refused")
    assert cloud.action(pod["id"], "start")["status"] in ("STARTING", "RUNNING")
    back = cloud.wait_ready(pod["id"])
    assert back["startedAt"] > restarted["startedAt"]
    assert ssh(ssh_port(back), key, "cat /workspace/mark; ls /root/mark 2>/dev/null || echo wiped").split() == [
        "kept",
        "wiped",
    ]


def test_server_restart_keeps_the_pods(cloud: Cloud, key: SshKey) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key)["id"])
    before = {p["id"]: p["status"] for p in cloud.api.get("/pods").json()["pods"]}
    assert cloud.cli("stop")["changed"] is True
    expect_tcp(ssh_port(pod), "ssh")  # pods outlive the server
    restarted = cloud.cli("start")
    assert restarted["changed"] is True
    assert {p["id"]: p["status"] for p in cloud.api.get("/pods").json()["pods"]} == before
    assert cloud.wait_ready(pod["id"])["ssh"]["direct"] == pod["ssh"]["direct"]
    assert ssh(ssh_port(pod), key, "hostname").strip() == pod["id"]


def test_pytorch_image_without_the_standin_is_refused(
    cloud: Cloud, key: SshKey, docker_client: docker.DockerClient
) -> None:
    """Without the stand-in, runpod/pytorch:* is refused (never the plain default image); other images still run."""
    absent = "gpuops/runpod-pytorch-standin:gpuops-test-absent"
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(absent)
    assert cloud.cli("stop")["changed"] is True
    try:
        assert cloud.cli("start", "--pytorch-standin-image", absent)["changed"] is True
        labelled = {"label": f"{LABEL_CLOUD}={cloud.cloud_id}"}
        before = {c.name for c in docker_client.containers.list(all=True, filters=labelled)}
        pods_before = {p["id"] for p in cloud.api.get("/pods").json()["pods"]}
        answer = cloud.api.post("/pods", json={"name": "no-standin", "image": RUNPOD_IMAGE,
                                               "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1},
                                               "ports": ["22/tcp"], "startSsh": True})
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        detail = answer.json()["detail"]
        assert f"image '{RUNPOD_IMAGE}' runs the local cloud's stand-in of RunPod's PyTorch image, '{absent}'" \
            in detail
        assert "build it with scripts/setup.sh standin" in detail and "never runs another image" in detail
        # Nothing was created: no pod, no container.
        assert {p["id"] for p in cloud.api.get("/pods").json()["pods"]} == pods_before
        assert {c.name for c in docker_client.containers.list(all=True, filters=labelled)} == before
        # Any other image the engine lacks still runs the default pod image.
        other = cloud.create_pod(key, name="plain-image", image="runpod/base:gpuops-test-absent")
        assert other["image"] == "runpod/base:gpuops-test-absent"
        assert docker_client.containers.get(container_name(other["id"])).image.tags == [DEFAULT_POD_IMAGE]
        assert cloud.api.delete(f"/pods/{other['id']}").status_code == 204
    finally:
        cloud.cli("stop")
        cloud.cli("start")


def test_interrupt_and_error_kill_the_pod(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key)["id"])
    port = ssh_port(pod)
    expect_tcp(port, "ssh")
    assert cloud.fault(pod["id"], "interrupt")["state"] == "EXITED"
    seen = cloud.api.get(f"/pods/{pod['id']}").json()
    assert seen["status"] == "EXITED" and seen["ssh"]["direct"] is None
    assert docker_client.containers.get(container_name(pod["id"])).status == "exited"
    expect_tcp(port, "refused")

    cloud.action(pod["id"], "start")
    ready = cloud.wait_ready(pod["id"])
    expect_tcp(ssh_port(ready), "ssh")
    assert cloud.fault(pod["id"], "error", {"detail": "GPU fell off the bus"})["state"] == "ERROR"
    assert cloud.api.get(f"/pods/{pod['id']}").json()["status"] == "ERROR"
    expect_tcp(ssh_port(ready), "refused")


def test_network_cut_and_restore(cloud: Cloud, key: SshKey) -> None:
    victim = cloud.wait_ready(cloud.create_pod(key, name="victim")["id"])
    port = ssh_port(victim)
    address = cloud.internals(victim["id"])["private_ip"]
    expect_tcp(port, "ssh")
    assert cloud.fault(victim["id"], "network/cut")["network_cut"] is True
    expect_tcp(port, "refused")
    assert cloud.fault(victim["id"], "network/restore")["network_cut"] is False
    assert ssh(port, key, "hostname").strip() == victim["id"]
    assert cloud.internals(victim["id"])["private_ip"] == address


def test_patch_env_recreates_the_container(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key)["id"])
    old_container = docker_client.containers.get(container_name(pod["id"])).id
    resp = cloud.api.patch(f"/pods/{pod['id']}", json={"env": {"EXTRA": "yes"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["env"] == {"EXTRA": "yes"}
    new_container = docker_client.containers.get(container_name(pod["id"]))
    assert new_container.id != old_container
    assert "EXTRA=yes" in new_container.attrs["Config"]["Env"]
    ready = cloud.wait_ready(pod["id"])
    # The startSsh key is still injected; the pod image exports only RUNPOD_*/GPUOPS_* to SSH sessions.
    pid1_env = ssh(ssh_port(ready), key, "tr '\\0' '\\n' < /proc/1/environ")
    assert "EXTRA=yes" in pid1_env.splitlines()


def test_delete_removes_the_container(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    pod = cloud.create_pod(key)
    assert cloud.api.delete(f"/pods/{pod['id']}").status_code == 204
    with pytest.raises(NotFound):
        docker_client.containers.get(container_name(pod["id"]))
    with pytest.raises(NotFound):
        docker_client.volumes.get(f"gpuops-pod-{pod['id']}-volume")
    assert cloud.api.get(f"/pods/{pod['id']}").status_code == 404


def test_parallel_creates_and_deletes(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    """Terraform creates and destroys pods in parallel: no port or address may be handed out twice."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(lambda i: cloud.create_pod(key, name=f"par-{i}"), range(4)))
        ready = [cloud.wait_ready(p["id"]) for p in created]
        ports = {ssh_port(p) for p in ready}
        addresses = {cloud.internals(p["id"])["private_ip"] for p in ready}
        assert len(ports) == len(addresses) == 4
        for port in ports:  # ssh.direct comes before sshd is up, as on RunPod: wait for the banner
            expect_tcp(port, "ssh", WAIT_S)
        codes = list(pool.map(lambda p: cloud.api.delete(f"/pods/{p['id']}").status_code, created))
    assert codes == [204] * 4
    names = {container_name(p["id"]) for p in created}
    assert not names & {c.name for c in docker_client.containers.list(all=True)}


def test_stop_purge_leaves_nothing(docker_client: docker.DockerClient, key: SshKey, tmp_path: Path) -> None:
    clouds = _running_cloud(docker_client, tmp_path / "state", key)
    cloud = next(clouds)
    try:
        cloud.create_pod(key)
        cloud.create_pod(key, globalNetworking=True)
        purged = cloud.cli("stop", "--purge")
        assert purged["changed"] is True
        assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_CLOUD}={cloud.cloud_id}"}) == []
        assert docker_client.volumes.list(filters={"label": f"{LABEL_CLOUD}={cloud.cloud_id}"}) == []
        assert docker_client.networks.list(names=[cloud.network, global_network_name(cloud.network)]) == []
        assert not (cloud.state_dir / "state.json").exists()
        assert not (cloud.state_dir / "api_key").exists()
        assert cloud.cli("status")["running"] is False
    finally:
        clouds.close()
