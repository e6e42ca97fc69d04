"""The local cloud with the Docker backend, end to end: a real server, real pods, real SSH.

Needs a Docker engine and the pod image ``gpuops/pod:bookworm``. Skipped only
when Docker is unreachable; a missing pod image fails with the command to
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
from localcloud.backends.docker import LABEL_CLOUD, connect_docker, container_name
from localcloud.config import DEFAULT_POD_IMAGE, Settings
from tests.integration.helpers import REPO, free_port, localcloud_api

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

READY_DELAY = 1.0
WAIT_S = 90.0
RUNPOD_IMAGE = "runpod/pytorch:2.1.0-py3.10-cuda11.8.0-devel-ubuntu22.04"


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
        """POST /v1/pods with PUBLIC_KEY set; return the pod."""
        body = {
            "name": "it-pod",
            "imageName": RUNPOD_IMAGE,
            "gpuTypeIds": ["NVIDIA GeForce RTX 4090"],
            "gpuCount": 2,
            "ports": ["22/tcp", "8888/http"],
            "env": {"PUBLIC_KEY": key.public_line},
            "volumeInGb": 5,
            **overrides,
        }
        resp = self.api.post("/pods", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def wait_ready(self, pod_id: str) -> dict[str, Any]:
        """Poll GET /v1/pods/{id} until it has portMappings, as clients must on RunPod."""

        def ready() -> dict[str, Any] | None:
            pod = self.api.get(f"/pods/{pod_id}").json()
            return pod if pod.get("portMappings") else None

        return wait_for(f"pod {pod_id} to get portMappings", ready)

    def internals(self, pod_id: str) -> dict[str, Any]:
        """GET /_localcloud/pods/{id}."""
        resp = self.api.get(f"http://127.0.0.1:{self.port}/_localcloud/pods/{pod_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def fault(self, pod_id: str, action: str) -> dict[str, Any]:
        """POST /_localcloud/pods/{id}/ACTION."""
        resp = self.api.post(f"http://127.0.0.1:{self.port}/_localcloud/pods/{pod_id}/{action}")
        assert resp.status_code == 200, resp.text
        return resp.json()


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
    """Shell command, run in a pod: print the SSH banner of target:22 or 'unreachable'."""
    return (
        "python3 -c \"import socket,sys\ntry:\n s=socket.create_connection(('" + target + "',22),3);"
        "s.settimeout(3);print(s.recv(7).decode())\nexcept OSError: print('unreachable')\""
    )


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    """The Docker engine (skip if unreachable); the pod image must exist."""
    try:
        client = connect_docker()
    except BackendUnavailable as exc:
        pytest.skip(f"Docker is unreachable: {exc}")
    try:
        client.images.get(DEFAULT_POD_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the pod image {DEFAULT_POD_IMAGE} is missing; build it with 'make setup' (images/pod)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def key() -> SshKey:
    """A fresh ed25519 key pair for PUBLIC_KEY."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return SshKey(paramiko.Ed25519Key.from_private_key(io.StringIO(pem)), public.decode() + " gpuops-it")


def _cleanup(docker_client: docker.DockerClient, cloud: Cloud) -> None:
    """Whatever the test did: no container or network of this cloud survives."""
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
    for network in docker_client.networks.list(names=[cloud.network]):
        network.remove()


def _running_cloud(docker_client: docker.DockerClient, state_dir: Path) -> Iterator[Cloud]:
    port = free_port()
    network = f"gpuops-lc-it-{secrets.token_hex(4)}"
    cloud = Cloud(state_dir, port, network, api=None)  # type: ignore[arg-type]
    try:
        started = cloud.cli("start")
        assert started["changed"] is True
        assert started["url"] == f"http://127.0.0.1:{port}/v1"
        cloud.api = localcloud_api(port, Path(started["api_key_file"]))
        yield cloud
    finally:
        if cloud.api is not None:
            cloud.api.close()
        _cleanup(docker_client, cloud)


@pytest.fixture(scope="module")
def cloud(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """One local cloud shared by the tests of this module."""
    yield from _running_cloud(docker_client, tmp_path_factory.mktemp("localcloud") / "state")


# -- tests -----------------------------------------------------------------------


def test_pods_answer_ssh_with_runpod_env_and_reach_each_other(
    cloud: Cloud, key: SshKey, docker_client: docker.DockerClient
) -> None:
    first = cloud.create_pod(key, name="first")
    second = cloud.create_pod(key, name="second")
    assert first["portMappings"] is None  # initialising, as on RunPod
    first, second = cloud.wait_ready(first["id"]), cloud.wait_ready(second["id"])
    assert first["publicIp"] == "127.0.0.1"
    port = first["portMappings"]["22"]

    env = pod_env(port, key)
    assert env["RUNPOD_POD_ID"] == first["id"]
    assert env["RUNPOD_POD_HOSTNAME"] == first["id"]
    assert env["RUNPOD_PUBLIC_IP"] == "127.0.0.1"
    assert env["RUNPOD_TCP_PORT_22"] == str(port)
    assert env["RUNPOD_GPU_COUNT"] == "2"
    assert env["RUNPOD_CPU_COUNT"] == str(first["vcpuCount"])
    assert env["RUNPOD_MEM_GB"] == str(first["memoryInGb"])
    assert env["RUNPOD_DC_ID"] == "LOCAL-1"
    assert env["GPUOPS_LOCALCLOUD"] == "1"
    assert env["GPUOPS_SIM_GPU_TYPE"] == "NVIDIA GeForce RTX 4090"
    assert env["GPUOPS_SIM_GPU_COUNT"] == "2"
    assert "RUNPOD_API_KEY" not in env
    assert ssh(port, key, "hostname").strip() == first["id"]

    second_ip = cloud.internals(second["id"])["private_ip"]
    assert ssh(port, key, reach_cmd(second["id"])).strip() == "SSH-2.0"
    assert ssh(port, key, reach_cmd(second_ip)).strip() == "SSH-2.0"
    assert ssh(second["portMappings"]["22"], key, reach_cmd(first["id"])).strip() == "SSH-2.0"

    container = docker_client.containers.get(container_name(first["id"]))
    bindings = container.attrs["HostConfig"]["PortBindings"]
    assert bindings == {"22/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    published = [b for spec in container.attrs["NetworkSettings"]["Ports"].values() for b in (spec or [])]
    assert published and all(b["HostIp"] == "127.0.0.1" for b in published)
    assert container.attrs["HostConfig"]["Init"] is True
    assert container.attrs["HostConfig"]["Privileged"] is False
    assert container.attrs["Config"]["Hostname"] == first["id"]
    assert container.labels["io.gpuops.localcloud"] == "1"
    assert container.labels["io.gpuops.pod-id"] == first["id"]
    assert json.loads(container.labels["io.gpuops.localcloud.record"])["id"] == first["id"]
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [cloud.network]
    assert container.image.tags == [DEFAULT_POD_IMAGE]  # RunPod image names run the local pod image


def test_stop_and_start_through_the_api(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key)["id"])
    ssh(pod["portMappings"]["22"], key, "echo kept > /workspace/mark")
    stopped = cloud.api.post(f"/pods/{pod['id']}/stop").json()
    assert stopped["desiredStatus"] == "EXITED"
    assert docker_client.containers.get(container_name(pod["id"])).status == "exited"
    expect_tcp(pod["portMappings"]["22"], "refused")
    assert cloud.api.post(f"/pods/{pod['id']}/start").json()["desiredStatus"] == "RUNNING"
    again = cloud.wait_ready(pod["id"])
    assert ssh(again["portMappings"]["22"], key, "cat /workspace/mark").strip() == "kept"


def test_server_restart_keeps_the_pods(cloud: Cloud, key: SshKey) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key)["id"])
    before = {p["id"]: p["desiredStatus"] for p in cloud.api.get("/pods").json()}
    assert cloud.cli("stop")["changed"] is True
    expect_tcp(pod["portMappings"]["22"], "ssh")  # pods outlive the server
    restarted = cloud.cli("start")
    assert restarted["changed"] is True
    assert {p["id"]: p["desiredStatus"] for p in cloud.api.get("/pods").json()} == before
    assert cloud.wait_ready(pod["id"])["portMappings"] == pod["portMappings"]
    assert ssh(pod["portMappings"]["22"], key, "hostname").strip() == pod["id"]


def test_interrupt_kills_the_pod(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key, interruptible=True)["id"])
    port = pod["portMappings"]["22"]
    expect_tcp(port, "ssh")
    assert cloud.fault(pod["id"], "interrupt")["desired_status"] == "EXITED"
    seen = cloud.api.get(f"/pods/{pod['id']}").json()
    assert seen["desiredStatus"] == "EXITED"
    assert seen["publicIp"] is None
    assert seen["portMappings"] is None
    assert docker_client.containers.get(container_name(pod["id"])).status == "exited"
    expect_tcp(port, "refused")


def test_network_cut_and_restore(cloud: Cloud, key: SshKey) -> None:
    victim = cloud.wait_ready(cloud.create_pod(key, name="victim")["id"])
    peer = cloud.wait_ready(cloud.create_pod(key, name="peer")["id"])
    port, peer_port = victim["portMappings"]["22"], peer["portMappings"]["22"]
    address = cloud.internals(victim["id"])["private_ip"]
    expect_tcp(port, "ssh")

    assert cloud.fault(victim["id"], "network/cut")["network_cut"] is True
    expect_tcp(port, "refused")
    assert ssh(peer_port, key, reach_cmd(victim["id"])).strip() == "unreachable"
    assert ssh(peer_port, key, reach_cmd(address)).strip() == "unreachable"

    assert cloud.fault(victim["id"], "network/restore")["network_cut"] is False
    assert ssh(port, key, "hostname").strip() == victim["id"]
    assert ssh(peer_port, key, reach_cmd(victim["id"])).strip() == "SSH-2.0"
    assert cloud.internals(victim["id"])["private_ip"] == address


def test_patch_env_recreates_the_container(cloud: Cloud, key: SshKey, docker_client: docker.DockerClient) -> None:
    pod = cloud.wait_ready(cloud.create_pod(key)["id"])
    old_container = docker_client.containers.get(container_name(pod["id"])).id
    resp = cloud.api.patch(f"/pods/{pod['id']}", json={"env": {"PUBLIC_KEY": key.public_line, "EXTRA": "yes"}})
    assert resp.status_code == 200, resp.text
    new_container = docker_client.containers.get(container_name(pod["id"]))
    assert new_container.id != old_container
    assert "EXTRA=yes" in new_container.attrs["Config"]["Env"]
    ready = cloud.wait_ready(pod["id"])
    # Like RunPod's images, the pod image exports only RUNPOD_*/GPUOPS_* to SSH sessions.
    pid1_env = ssh(ready["portMappings"]["22"], key, "tr '\\0' '\\n' < /proc/1/environ")
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
        ports = {p["portMappings"]["22"] for p in ready}
        addresses = {cloud.internals(p["id"])["private_ip"] for p in ready}
        assert len(ports) == len(addresses) == 4
        for port in ports:  # portMappings come before sshd is up, as on RunPod: wait for the banner
            expect_tcp(port, "ssh", WAIT_S)
        codes = list(pool.map(lambda p: cloud.api.delete(f"/pods/{p['id']}").status_code, created))
    assert codes == [204] * 4
    names = {container_name(p["id"]) for p in created}
    assert not names & {c.name for c in docker_client.containers.list(all=True)}


def test_stop_purge_leaves_nothing(docker_client: docker.DockerClient, key: SshKey, tmp_path: Path) -> None:
    clouds = _running_cloud(docker_client, tmp_path / "state")
    cloud = next(clouds)
    try:
        cloud.create_pod(key)
        cloud.create_pod(key)
        purged = cloud.cli("stop", "--purge")
        assert purged["changed"] is True
        assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_CLOUD}={cloud.cloud_id}"}) == []
        assert docker_client.volumes.list(filters={"label": f"{LABEL_CLOUD}={cloud.cloud_id}"}) == []
        assert docker_client.networks.list(names=[cloud.network]) == []
        assert not (cloud.state_dir / "state.json").exists()
        assert not (cloud.state_dir / "api_key").exists()
        assert cloud.cli("status")["running"] is False
    finally:
        clouds.close()
