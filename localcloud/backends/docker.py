"""Pods as Docker containers reachable over SSH; the one place that talks to Docker.

Each pod is a container ``gpuops-pod-<id>`` (``init=True``, hostname = pod id,
never privileged) on the cloud's private bridge network, where other pods
reach it by IP, by pod id and by container name. Its tcp ports are published
on 127.0.0.1 only, on host ports chosen before the container is created (see
``localcloud.ports``) so that ``RUNPOD_TCP_PORT_22`` can be in its
environment. A pod with ``volumeInGb > 0`` gets a named volume mounted at
``volumeMountPath`` that survives resets, as RunPod's pod volume does.

Containers carry the labels ``io.gpuops.localcloud=1``,
``io.gpuops.pod-id=<id>``, ``io.gpuops.localcloud.cloud=<cloud id>`` and the
pod record as JSON, so a restarted server finds and re-adopts them.

Network cut: the container is disconnected from the private network. That
is the mechanism checked on Docker 20.10 to really cut TCP: Docker drops the
published port bindings with the network endpoint (connecting to the host
port is refused, open connections are closed) and the pod vanishes from the
private network. Reconnecting restores both. ``docker pause`` does not cut
anything: the kernel still completes TCP handshakes for a frozen container
and only the banner never comes. To keep the pod's address across the cut,
the network is created with an explicit subnet and every pod gets a pinned
address from it (``ipv4_address``), which also survives stop/start.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from localcloud.backends.base import BackendError, BackendUnavailable, Observed, PodBackend, Runtime, runpod_environment
from localcloud.config import DEFAULT_HOST_PORT_RANGE
from localcloud.errors import BadRequest
from localcloud.ports import PortAllocator, PortsExhausted
from localcloud.records import PodRecord

log = logging.getLogger(__name__)

LABEL_MANAGED = "io.gpuops.localcloud"
LABEL_POD_ID = "io.gpuops.pod-id"
LABEL_CLOUD = "io.gpuops.localcloud.cloud"
LABEL_RECORD = "io.gpuops.localcloud.record"
#: On the network: its subnet was given explicitly, so pod addresses can be pinned.
LABEL_PINNED_SUBNET = "io.gpuops.localcloud.pinned-subnet"

PUBLISH_HOST = "127.0.0.1"
_START_ATTEMPTS = 5
_RUNNING_STATES = {"running", "paused", "restarting"}


def container_name(pod_id: str) -> str:
    """Return the container name of a pod."""
    return f"gpuops-pod-{pod_id}"


def volume_name(pod_id: str) -> str:
    """Return the name of a pod's volume."""
    return f"gpuops-pod-{pod_id}-volume"


def connect_docker() -> docker.DockerClient:
    """Return a client of the local Docker engine, or raise BackendUnavailable saying what to do."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (DockerException, OSError) as exc:
        raise BackendUnavailable(
            f"Docker is not reachable ({exc}); start the Docker engine (dockerd) or use --backend memory"
        ) from exc
    return client


def _is_port_conflict(exc: APIError) -> bool:
    text = str(exc).lower()
    return "port is already allocated" in text or "address already in use" in text


def purge_cloud(client: docker.DockerClient, cloud_id: str, network: str) -> list[str]:
    """Remove every container and volume of cloud ``cloud_id``, and ``network`` if nobody uses it.

    Returns what was removed, e.g. ``["container gpuops-pod-abc", "network gpuops-localcloud"]``.
    """
    removed: list[str] = []
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_CLOUD}={cloud_id}"}):
        container.remove(force=True)
        removed.append(f"container {container.name}")
    for volume in client.volumes.list(filters={"label": f"{LABEL_CLOUD}={cloud_id}"}):
        try:
            volume.remove(force=True)
            removed.append(f"volume {volume.name}")
        except APIError as exc:
            log.warning("volume not removed", extra={"fields": {"volume": volume.name, "error": str(exc)}})
    try:
        net = client.networks.get(network)
    except NotFound:
        return removed
    net.reload()
    if (net.attrs.get("Labels") or {}).get(LABEL_MANAGED) == "1" and not net.attrs.get("Containers"):
        net.remove()
        removed.append(f"network {network}")
    return removed


class DockerBackend(PodBackend):
    """Each pod is a container; see the module docstring for the details."""

    name = "docker"
    public_ip = "127.0.0.1"

    def __init__(
        self,
        *,
        network: str,
        cloud_id: str,
        default_image: str,
        host_port_range: tuple[int, int] = DEFAULT_HOST_PORT_RANGE,
        client: docker.DockerClient | None = None,
        stop_timeout: int = 5,
    ) -> None:
        self._client = client or connect_docker()
        self._network_name = network
        self._cloud_id = cloud_id
        self._default_image = default_image
        self._stop_timeout = stop_timeout
        self._ports = PortAllocator(*host_port_range, probe_host=PUBLISH_HOST)
        self._ips: set[str] = set()
        self._lock = threading.Lock()
        self._network: Network | None = None

    # -- network ---------------------------------------------------------

    def network(self) -> Network:
        """Return the cloud's private network, creating it on first use."""
        with self._lock:
            if self._network is None:
                self._network = self._get_or_create_network()
            return self._network

    def _get_or_create_network(self) -> Network:
        try:
            return self._client.networks.get(self._network_name)
        except NotFound:
            pass
        labels = {LABEL_MANAGED: "1", LABEL_CLOUD: self._cloud_id}
        # Let Docker choose a subnet that does not clash with the host's, then
        # re-create the network with that subnet given explicitly: only then
        # does Docker accept pinned container addresses on it.
        probe = self._client.networks.create(self._network_name, driver="bridge", labels=labels)
        try:
            probe.reload()
            config = (probe.attrs.get("IPAM", {}).get("Config") or [{}])[0]
        finally:
            probe.remove()
        subnet, gateway = config.get("Subnet"), config.get("Gateway")
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=gateway)]) if subnet else None
        if ipam:
            labels[LABEL_PINNED_SUBNET] = "1"
        try:
            net = self._client.networks.create(self._network_name, driver="bridge", labels=labels, ipam=ipam)
        except APIError as exc:
            if exc.status_code != 409:
                raise BackendError(f"cannot create network {self._network_name}: {exc.explanation}") from exc
            return self._client.networks.get(self._network_name)
        log.info("network created", extra={"fields": {"network": self._network_name, "subnet": subnet}})
        return net

    def _allocate_ip(self) -> str | None:
        net = self.network()
        net.reload()
        if (net.attrs.get("Labels") or {}).get(LABEL_PINNED_SUBNET) != "1":
            return None
        config = (net.attrs.get("IPAM", {}).get("Config") or [{}])[0]
        subnet = ipaddress.ip_network(config["Subnet"])
        taken = {config.get("Gateway")}
        taken.update(c.get("IPv4Address", "").split("/")[0] for c in (net.attrs.get("Containers") or {}).values())
        with self._lock:
            for host in subnet.hosts():
                address = str(host)
                if host.packed[-1] >= 2 and address not in taken and address not in self._ips:
                    self._ips.add(address)
                    return address
        raise BackendError(f"no free address left on network {self._network_name} ({subnet})")

    # -- lifecycle -------------------------------------------------------

    def adopt(self, records: Iterable[PodRecord]) -> None:
        """Reserve recovered pods' host ports and addresses."""
        for record in records:
            self._ports.reserve(record.host_ports.values())
            if record.private_ip:
                with self._lock:
                    self._ips.add(record.private_ip)

    def resolve_image(self, image_name: str) -> str:
        """Run ``image_name`` if the engine has it, else the default pod image (nothing can be pulled)."""
        for candidate in (image_name, self._default_image):
            try:
                self._client.images.get(candidate)
            except ImageNotFound:
                continue
            except APIError as exc:
                raise BackendError(f"cannot look up image {candidate!r}: {exc.explanation}") from exc
            if candidate != image_name:
                log.info("image substituted", extra={"fields": {"requested": image_name, "running": candidate}})
            return candidate
        raise BadRequest(
            f"imageName: image {image_name!r} is not in the local Docker engine and neither is the default pod "
            f"image {self._default_image!r}; build the pod image first (images/pod) or pass --pod-image-default"
        )

    def create(self, record: PodRecord) -> Runtime:
        """Create and start the pod's container."""
        return self._create(record, start=True)

    def start(self, record: PodRecord) -> Runtime:
        """Start the container; re-create it if it vanished or its host ports were taken meanwhile."""
        container = self._container(record.id)
        if container is None:
            log.warning("container vanished; re-creating", extra={"fields": {"pod_id": record.id}})
            return self._create(record, start=True)
        try:
            container.start()
        except APIError as exc:
            if not _is_port_conflict(exc):
                raise BackendError(f"cannot start pod {record.id}: {exc.explanation}") from exc
            log.warning("host port taken; re-creating", extra={"fields": {"pod_id": record.id}})
            self._remove_container(record.id)
            self._ports.release(record.host_ports.values())
            return self._create(record.model_copy(update={"host_ports": {}}), start=True)
        return Runtime(dict(record.host_ports), record.private_ip)

    def stop(self, record: PodRecord) -> None:
        """Stop the container (SIGTERM, then SIGKILL after the stop timeout)."""
        container = self._container(record.id)
        if container is not None:
            self._call(container.stop, record.id, "stop", timeout=self._stop_timeout)

    def restart(self, record: PodRecord) -> Runtime:
        """Restart the container in place."""
        container = self._container(record.id)
        if container is None:
            return self._create(record, start=True)
        self._call(container.restart, record.id, "restart", timeout=self._stop_timeout)
        return Runtime(dict(record.host_ports), record.private_ip)

    def recreate(self, record: PodRecord, *, start: bool) -> Runtime:
        """Replace the container (fresh container disk; the pod volume stays)."""
        self._remove_container(record.id)
        self._ports.release(record.host_ports.values())
        return self._create(record, start=start)

    def remove(self, record: PodRecord) -> None:
        """Remove the container and the pod volume."""
        self._remove_container(record.id)
        try:
            self._client.volumes.get(volume_name(record.id)).remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            log.warning("volume not removed", extra={"fields": {"pod_id": record.id, "error": str(exc)}})
        self._ports.release(record.host_ports.values())
        with self._lock:
            self._ips.discard(record.private_ip or "")

    def interrupt(self, record: PodRecord) -> None:
        """SIGKILL the container, as a spot preemption would."""
        container = self._container(record.id)
        if container is None:
            return
        try:
            container.kill()
        except APIError as exc:
            if exc.status_code != 409:  # 409: not running
                raise BackendError(f"cannot interrupt pod {record.id}: {exc.explanation}") from exc

    def cut_network(self, record: PodRecord) -> None:
        """Disconnect the container from the private network (drops its published ports too)."""
        if self._container(record.id) is None:
            raise BackendError(f"pod {record.id} has no container")
        try:
            self.network().disconnect(container_name(record.id))
        except APIError as exc:
            if "is not connected" not in str(exc):
                raise BackendError(f"cannot cut the network of pod {record.id}: {exc.explanation}") from exc

    def restore_network(self, record: PodRecord) -> None:
        """Reconnect the container with its alias and pinned address (published ports come back)."""
        if self._container(record.id) is None:
            raise BackendError(f"pod {record.id} has no container")
        net = self.network()
        net.reload()
        pinned = (net.attrs.get("Labels") or {}).get(LABEL_PINNED_SUBNET) == "1"
        try:
            net.connect(
                container_name(record.id),
                aliases=[record.id],
                ipv4_address=record.private_ip if pinned else None,
            )
        except APIError as exc:
            if "already exists" not in str(exc):
                raise BackendError(f"cannot restore the network of pod {record.id}: {exc.explanation}") from exc

    def observe(self, pod_id: str | None = None) -> dict[str, Observed]:
        """Return this cloud's containers by pod id (one list call, no per-container inspect)."""
        labels = [f"{LABEL_CLOUD}={self._cloud_id}"]
        if pod_id:
            labels.append(f"{LABEL_POD_ID}={pod_id}")
        try:
            rows = self._client.api.containers(all=True, filters={"label": labels})
        except (DockerException, OSError) as exc:
            raise BackendError(f"cannot list containers: {exc}") from exc
        seen: dict[str, Observed] = {}
        for row in rows:
            row_labels = row.get("Labels") or {}
            found_id = row_labels.get(LABEL_POD_ID)
            if not found_id:
                continue
            seen[found_id] = Observed(found_id, row.get("State") in _RUNNING_STATES, _record_from_label(row_labels))
        return seen

    def purge(self) -> list[str]:
        """Remove all of this cloud's containers, volumes and (if unused) its network."""
        return purge_cloud(self._client, self._cloud_id, self._network_name)

    def close(self) -> None:
        """Close the Docker client."""
        self._client.close()

    # -- helpers ---------------------------------------------------------

    def _container(self, pod_id: str) -> Container | None:
        try:
            return self._client.containers.get(container_name(pod_id))
        except NotFound:
            return None
        except APIError as exc:
            raise BackendError(f"cannot inspect pod {pod_id}: {exc.explanation}") from exc

    def _remove_container(self, pod_id: str) -> None:
        container = self._container(pod_id)
        if container is not None:
            self._call(container.remove, pod_id, "remove", force=True)

    def _call(self, method: Any, pod_id: str, action: str, **kwargs: Any) -> None:
        try:
            method(**kwargs)
        except NotFound:
            pass
        except APIError as exc:
            raise BackendError(f"cannot {action} pod {pod_id}: {exc.explanation}") from exc

    def _ensure_volume(self, record: PodRecord) -> str | None:
        if record.volume_in_gb <= 0:
            return None
        name = volume_name(record.id)
        try:
            self._client.volumes.get(name)
        except NotFound:
            self._client.volumes.create(
                name, labels={LABEL_MANAGED: "1", LABEL_CLOUD: self._cloud_id, LABEL_POD_ID: record.id}
            )
        return name

    def _create(self, record: PodRecord, *, start: bool) -> Runtime:
        new_ip = record.private_ip is None
        private_ip = record.private_ip or self._allocate_ip()
        try:
            return self._create_with_ports(record.model_copy(update={"private_ip": private_ip}), start=start)
        except BackendError:
            if new_ip and private_ip:
                with self._lock:
                    self._ips.discard(private_ip)
            raise

    def _create_with_ports(self, record: PodRecord, *, start: bool) -> Runtime:
        last_error: Exception | None = None
        for _ in range(_START_ATTEMPTS):
            try:
                host_ports = {
                    str(port): self._ports.allocate(preferred=record.host_ports.get(str(port)))
                    for port in record.tcp_ports()
                }
            except PortsExhausted as exc:
                raise BackendError(str(exc)) from exc
            try:
                container = self._create_container(record.model_copy(update={"host_ports": host_ports}))
            except BackendError:
                self._ports.release(host_ports.values())
                raise
            if not start:
                return Runtime(host_ports, record.private_ip)
            try:
                container.start()
            except APIError as exc:
                self._call(container.remove, record.id, "remove", force=True)
                if not _is_port_conflict(exc):
                    self._ports.release(host_ports.values())
                    raise BackendError(f"cannot start pod {record.id}: {exc.explanation}") from exc
                # Another program took a port between our check and Docker's
                # bind: leave those ports reserved (they are busy), try others.
                last_error = exc
                record = record.model_copy(update={"host_ports": {}})
                continue
            return Runtime(host_ports, record.private_ip or self._container_ip(container))
        raise BackendError(f"cannot publish ports of pod {record.id} after {_START_ATTEMPTS} tries: {last_error}")

    def _container_ip(self, container: Container) -> str | None:
        container.reload()
        networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        return (networks.get(self._network_name) or {}).get("IPAddress") or None

    def _create_container(self, record: PodRecord) -> Container:
        net = self.network()
        volume = self._ensure_volume(record)
        labels = {
            LABEL_MANAGED: "1",
            LABEL_POD_ID: record.id,
            LABEL_CLOUD: self._cloud_id,
            LABEL_RECORD: record.model_dump_json(),
        }
        endpoint = self._client.api.create_endpoint_config(aliases=[record.id], ipv4_address=record.private_ip)
        try:
            return self._client.containers.create(
                record.runtime_image,
                command=record.docker_start_cmd or None,
                entrypoint=record.docker_entrypoint or None,
                name=container_name(record.id),
                hostname=record.id,
                init=True,
                privileged=False,
                environment=runpod_environment(record, self.public_ip),
                labels=labels,
                ports={f"{port}/tcp": (PUBLISH_HOST, host_port) for port, host_port in record.host_ports.items()},
                network=net.name,
                networking_config={net.name: endpoint},
                volumes={volume: {"bind": record.volume_mount_path, "mode": "rw"}} if volume else None,
            )
        except APIError as exc:
            raise BackendError(f"cannot create container for pod {record.id}: {exc.explanation}") from exc


def _record_from_label(labels: dict[str, str]) -> PodRecord | None:
    raw = labels.get(LABEL_RECORD)
    if not raw:
        return None
    try:
        return PodRecord.model_validate(json.loads(raw))
    except ValueError:
        return None
