"""Pods as Docker containers reachable over SSH; the one place that talks to Docker.

Each pod is a container ``gpuops-pod-<id>`` (``init=True``, hostname = pod id,
never privileged). Its tcp ports are published on 127.0.0.1 only, on host
ports chosen before the container is created (see ``localcloud.ports``) so
that ``RUNPOD_TCP_PORT_22`` can be in its environment. A pod with
``mounts.persistent`` gets a named volume at its path that survives
restarts, as RunPod's persistent mount does; everything else (the container
disk) is fresh at every start, because every start creates a new container
from the image, as on RunPod.

Networks, as on RunPod, where a pod is reachable only on its published ports
unless it has global networking:

- every pod joins the cloud's pod network (``--network``), a bridge created
  with ``com.docker.network.bridge.enable_icc=false``: pods on it cannot
  reach each other, only the host's published ports reach them;
- a pod with global networking also joins ``<network>-global`` with the
  alias ``<podId>.runpod.internal``; only pods on that network resolve and
  reach the name.

Containers carry the labels ``io.gpuops.localcloud=1``,
``io.gpuops.pod-id=<id>``, ``io.gpuops.localcloud.cloud=<cloud id>`` and the
pod record as JSON, so a restarted server finds and re-adopts them.

Network cut: the container is disconnected from its networks. That is the
mechanism checked on Docker 20.10 to really cut TCP: Docker drops the
published port bindings with the network endpoint (connecting to the host
port is refused, open connections are closed). Reconnecting restores them.
``docker pause`` does not cut anything: the kernel still completes TCP
handshakes for a frozen container. To keep a pod's addresses across cuts and
restarts, the networks are created with explicit subnets and every pod gets
pinned addresses from them (``ipv4_address``).
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import shlex
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from localcloud.backends.base import (
    BackendError,
    BackendUnavailable,
    LogLine,
    Observed,
    PodBackend,
    Runtime,
    internal_dns,
    runpod_environment,
)
from localcloud.catalog import GPU_TYPES
from localcloud.config import DEFAULT_HOST_PORT_RANGE, DEFAULT_PYTORCH_STANDIN_IMAGE
from localcloud.errors import BadRequest
from localcloud.ports import PortAllocator, PortsExhausted
from localcloud.records import PodRecord

log = logging.getLogger(__name__)

LABEL_MANAGED = "io.gpuops.localcloud"
LABEL_POD_ID = "io.gpuops.pod-id"
LABEL_CLOUD = "io.gpuops.localcloud.cloud"
LABEL_RECORD = "io.gpuops.localcloud.record"
#: On a network: its subnet was given explicitly, so pod addresses can be pinned.
LABEL_PINNED_SUBNET = "io.gpuops.localcloud.pinned-subnet"
#: The bridge option that, set to "false", stops containers on the bridge reaching each other.
ICC_OPTION = "com.docker.network.bridge.enable_icc"
#: Images named so run the pytorch stand-in when the engine lacks them (never the default image).
PYTORCH_IMAGE_PREFIX = "runpod/pytorch:"

PUBLISH_HOST = "127.0.0.1"
_START_ATTEMPTS = 5
_RUNNING_STATES = {"running", "paused", "restarting"}


def container_name(pod_id: str) -> str:
    """Return the container name of a pod."""
    return f"gpuops-pod-{pod_id}"


def volume_name(pod_id: str) -> str:
    """Return the name of a pod's persistent volume."""
    return f"gpuops-pod-{pod_id}-volume"


def global_network_name(network: str) -> str:
    """Return the name of the global network that goes with pod network ``network``."""
    return f"{network}-global"


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


#: The host's firewall rules that keep it off a pod network except on 22/tcp.
_FIREWALL_COMMENT = "gpuops-localcloud"


def _host_rules(subnet: str) -> list[list[str]]:
    """iptables rules (OUTPUT) for ``subnet``: the control host reaches pods only on their published port, 22/tcp.

    On RunPod a pod is reachable from outside only on its published ports. A
    Docker bridge puts this host on the pods' subnet, so without these rules
    it could open any port a pod listens on. Docker's proxy for the published
    127.0.0.1 ports connects to the pod's port 22 from here, which stays open.
    """
    # New connections only: answers to what pods open towards this host pass.
    common = ["-d", subnet, "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", _FIREWALL_COMMENT]
    return [
        [*common, "-p", "tcp", "!", "--dport", "22", "-j", "REJECT", "--reject-with", "tcp-reset"],
        [*common, "-p", "udp", "-j", "REJECT"],
    ]


def _iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)


def isolate_from_host(subnet: str) -> None:
    """Add the host rules for ``subnet`` (idempotent); BackendUnavailable when the firewall cannot be set."""
    for rule in _host_rules(subnet):
        if _iptables("-C", "OUTPUT", *rule).returncode == 0:
            continue
        added = _iptables("-I", "OUTPUT", *rule)
        if added.returncode != 0:
            raise BackendUnavailable(
                f"cannot keep this host off the pod network {subnet} with iptables ({added.stderr.strip()}): "
                "the local cloud needs root and iptables, as Docker itself does"
            )


def unisolate_from_host(subnet: str) -> None:
    """Remove the host rules for ``subnet`` (what is not there is fine)."""
    for rule in _host_rules(subnet):
        while _iptables("-C", "OUTPUT", *rule).returncode == 0:
            _iptables("-D", "OUTPUT", *rule)


def _subnet(net: Network) -> str | None:
    return ((net.attrs.get("IPAM", {}).get("Config") or [{}])[0] or {}).get("Subnet")


def purge_cloud(client: docker.DockerClient, cloud_id: str, network: str) -> list[str]:
    """Remove every container and volume of cloud ``cloud_id``, and its networks if nobody uses them.

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
    for name in (network, global_network_name(network)):
        try:
            net = client.networks.get(name)
        except NotFound:
            continue
        net.reload()
        if (net.attrs.get("Labels") or {}).get(LABEL_MANAGED) == "1" and not net.attrs.get("Containers"):
            subnet = _subnet(net)
            net.remove()
            if subnet:
                unisolate_from_host(subnet)
            removed.append(f"network {name}")
    return removed


class _ManagedNetwork:
    """One bridge network of the cloud, created on first use, with pinned addresses."""

    def __init__(self, client: docker.DockerClient, name: str, cloud_id: str, *, icc: bool) -> None:
        self._client = client
        self.name = name
        self._cloud_id = cloud_id
        self._icc = icc
        self._ips: set[str] = set()
        self._lock = threading.Lock()
        self._network: Network | None = None

    def get(self) -> Network:
        """Return the network, creating it on first use, with this host kept off it but for 22/tcp."""
        with self._lock:
            if self._network is None:
                net = self._get_or_create()
                net.reload()
                subnet = _subnet(net)
                if subnet:
                    isolate_from_host(subnet)
                self._network = net
            return self._network

    def reserve(self, address: str | None) -> None:
        if address:
            with self._lock:
                self._ips.add(address)

    def release(self, address: str | None) -> None:
        with self._lock:
            self._ips.discard(address or "")

    def _icc_ok(self, net: Network) -> bool:
        options = net.attrs.get("Options") or {}
        return self._icc or options.get(ICC_OPTION) == "false"

    def _get_or_create(self) -> Network:
        try:
            net = self._client.networks.get(self.name)
        except NotFound:
            return self._create()
        net.reload()
        if self._icc_ok(net):
            return net
        # A network from an older localcloud lets pods reach each other: replace it if it is ours and empty.
        if (net.attrs.get("Labels") or {}).get(LABEL_MANAGED) == "1" and not net.attrs.get("Containers"):
            net.remove()
            log.info("network replaced to isolate pods", extra={"fields": {"network": self.name}})
            return self._create()
        raise BackendUnavailable(
            f"Docker network {self.name} lets containers reach each other ({ICC_OPTION} is not false), so pods "
            "would not be isolated as on RunPod; it was made by an older localcloud or another program. Run "
            "'python -m localcloud stop --purge' for the cloud that uses it, or choose another --network"
        )

    def _create(self) -> Network:
        labels = {LABEL_MANAGED: "1", LABEL_CLOUD: self._cloud_id}
        options = {} if self._icc else {ICC_OPTION: "false"}
        # Let Docker choose a subnet that does not clash with the host's, then
        # re-create the network with that subnet given explicitly: only then
        # does Docker accept pinned container addresses on it. The probe has a
        # name of its own: another local cloud looking for the network (which
        # replaces one it finds unpinned) must never see, or remove, it.
        probe = self._client.networks.create(f"{self.name}-probe-{uuid.uuid4().hex[:12]}", driver="bridge",
                                             labels={LABEL_MANAGED: "1", LABEL_CLOUD: self._cloud_id})
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
            net = self._client.networks.create(
                self.name, driver="bridge", labels=labels, ipam=ipam, options=options or None
            )
        except APIError as exc:
            if exc.status_code != 409:
                raise BackendError(f"cannot create network {self.name}: {exc.explanation}") from exc
            return self._client.networks.get(self.name)
        log.info("network created", extra={"fields": {"network": self.name, "subnet": subnet, "icc": self._icc}})
        return net

    def pinned(self) -> bool:
        """Return True if container addresses can be pinned on this network."""
        net = self.get()
        net.reload()
        return (net.attrs.get("Labels") or {}).get(LABEL_PINNED_SUBNET) == "1"

    def allocate(self) -> str | None:
        """Return a free address on the network (None if addresses cannot be pinned)."""
        net = self.get()
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
        raise BackendError(f"no free address left on network {self.name} ({subnet})")

    def connect(self, container: str, *, aliases: list[str], address: str | None) -> None:
        """Connect ``container`` with ``aliases`` (and the pinned ``address``); already connected is fine."""
        try:
            self.get().connect(container, aliases=aliases, ipv4_address=address if self.pinned() else None)
        except APIError as exc:
            if "already exists" not in str(exc):
                raise BackendError(f"cannot connect {container} to {self.name}: {exc.explanation}") from exc

    def disconnect(self, container: str) -> None:
        """Disconnect ``container``; not connected is fine."""
        try:
            self.get().disconnect(container)
        except APIError as exc:
            if "is not connected" not in str(exc):
                raise BackendError(f"cannot disconnect {container} from {self.name}: {exc.explanation}") from exc


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
        pytorch_standin_image: str = DEFAULT_PYTORCH_STANDIN_IMAGE,
        host_port_range: tuple[int, int] = DEFAULT_HOST_PORT_RANGE,
        client: docker.DockerClient | None = None,
        stop_timeout: int = 5,
    ) -> None:
        self._client = client or connect_docker()
        self._cloud_id = cloud_id
        self._default_image = default_image
        self._pytorch_standin = pytorch_standin_image
        self._stop_timeout = stop_timeout
        self._ports = PortAllocator(*host_port_range, probe_host=PUBLISH_HOST)
        self.pods_network = _ManagedNetwork(self._client, network, cloud_id, icc=False)
        self.global_network = _ManagedNetwork(self._client, global_network_name(network), cloud_id, icc=True)

    # -- lifecycle -------------------------------------------------------

    def adopt(self, records: Iterable[PodRecord]) -> None:
        """Reserve recovered pods' host ports and addresses."""
        for record in records:
            self._ports.reserve(record.host_ports.values())
            self.pods_network.reserve(record.private_ip)
            self.global_network.reserve(record.global_ip)

    def _has_image(self, image: str) -> bool:
        try:
            self._client.images.get(image)
        except ImageNotFound:
            return False
        except APIError as exc:
            raise BackendError(f"cannot look up image {image!r}: {exc.explanation}") from exc
        return True

    def resolve_image(self, image: str) -> str:
        """Run ``image`` if the engine has it; else the pytorch stand-in (for runpod/pytorch:*) or the default.

        Nothing can be pulled, so images the engine lacks are replaced; the
        API still shows the requested image. A ``runpod/pytorch:*`` image runs
        the stand-in or nothing: the plain default image lacks the traits of
        RunPod's image that configuration depends on (the Python without the
        APT bindings, NVIDIA's CUDA source, the start script), so running it
        instead would let a test pass that fails on RunPod. Without the
        stand-in the create (or change) is refused, saying how to build it.
        """
        if self._has_image(image):
            return image
        if image.startswith(PYTORCH_IMAGE_PREFIX):
            if not self._has_image(self._pytorch_standin):
                raise BadRequest(
                    f"image {image!r} runs the local cloud's stand-in of RunPod's PyTorch image, "
                    f"{self._pytorch_standin!r}, and the local Docker engine does not have it: build it with "
                    f"scripts/setup.sh standin (the step standin of make setup; images/runpod-pytorch-standin), "
                    f"then create the pod again. The local cloud never runs another image in its place."
                )
            candidate = self._pytorch_standin
        elif self._has_image(self._default_image):
            candidate = self._default_image
        else:
            raise BadRequest(
                f"image {image!r} is not in the local Docker engine and neither is the default pod image "
                f"{self._default_image!r}; build the pod image first (images/pod) or pass --pod-image-default"
            )
        log.info("image substituted", extra={"fields": {"requested": image, "running": candidate}})
        return candidate

    def recreate(self, record: PodRecord, *, start: bool) -> Runtime:
        """Replace the container with a fresh one (fresh container disk; the persistent volume stays)."""
        self._remove_container(record.id)
        self._ports.release(record.host_ports.values())
        new_ip = record.private_ip is None
        private_ip = record.private_ip or self.pods_network.allocate()
        global_ip = record.global_ip
        new_global = False
        if record.global_networking and global_ip is None:
            global_ip, new_global = self.global_network.allocate(), True
        elif not record.global_networking and global_ip is not None:
            self.global_network.release(global_ip)
            global_ip = None
        try:
            return self._create_with_ports(
                record.model_copy(update={"private_ip": private_ip, "global_ip": global_ip}), start=start
            )
        except BackendError:
            if new_ip:
                self.pods_network.release(private_ip)
            if new_global:
                self.global_network.release(global_ip)
            raise

    def stop(self, record: PodRecord) -> None:
        """Stop the container (SIGTERM, then SIGKILL after the stop timeout)."""
        container = self._container(record.id)
        if container is not None:
            self._call(container.stop, record.id, "stop", timeout=self._stop_timeout)

    def kill(self, record: PodRecord) -> None:
        """SIGKILL the container."""
        container = self._container(record.id)
        if container is None:
            return
        try:
            container.kill()
        except APIError as exc:
            if exc.status_code != 409:  # 409: not running
                raise BackendError(f"cannot kill pod {record.id}: {exc.explanation}") from exc

    def remove(self, record: PodRecord) -> None:
        """Remove the container and the persistent volume."""
        self._remove_container(record.id)
        try:
            self._client.volumes.get(volume_name(record.id)).remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            log.warning("volume not removed", extra={"fields": {"pod_id": record.id, "error": str(exc)}})
        self._ports.release(record.host_ports.values())
        self.pods_network.release(record.private_ip)
        self.global_network.release(record.global_ip)

    def cut_network(self, record: PodRecord) -> None:
        """Disconnect the container from its networks (drops its published ports too)."""
        if self._container(record.id) is None:
            raise BackendError(f"pod {record.id} has no container")
        self.pods_network.disconnect(container_name(record.id))
        if record.global_ip:
            self.global_network.disconnect(container_name(record.id))

    def restore_network(self, record: PodRecord) -> None:
        """Reconnect the container with its aliases and pinned addresses (published ports come back)."""
        if self._container(record.id) is None:
            raise BackendError(f"pod {record.id} has no container")
        name = container_name(record.id)
        self.pods_network.connect(name, aliases=[record.id], address=record.private_ip)
        if record.global_ip:
            self.global_network.connect(name, aliases=[internal_dns(record.id)], address=record.global_ip)

    def logs(self, record: PodRecord, *, tail: int, since: datetime | None) -> list[LogLine]:
        """Return the container's stdout/stderr lines (``docker logs --timestamps``)."""
        container = self._container(record.id)
        if container is None or tail == 0:
            return []
        kwargs: dict[str, Any] = {"timestamps": True, "tail": tail}
        if since is not None:
            kwargs["since"] = since
        try:
            raw = container.logs(**kwargs)
        except APIError as exc:
            raise BackendError(f"cannot read the logs of pod {record.id}: {exc.explanation}") from exc
        lines: list[LogLine] = []
        for text in raw.decode("utf-8", errors="replace").splitlines():
            stamp, _, line = text.partition(" ")
            lines.append(LogLine(_parse_docker_ts(stamp), line))
        return lines

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
        """Remove all of this cloud's containers, volumes and (if unused) its networks."""
        return purge_cloud(self._client, self._cloud_id, self.pods_network.name)

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
        if not record.persistent_path:
            return None
        name = volume_name(record.id)
        try:
            self._client.volumes.get(name)
        except NotFound:
            self._client.volumes.create(
                name, labels={LABEL_MANAGED: "1", LABEL_CLOUD: self._cloud_id, LABEL_POD_ID: record.id}
            )
        return name

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
            runtime = Runtime(host_ports, record.private_ip, record.global_ip)
            if not start:
                return runtime
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
            if record.private_ip is None:
                container.reload()
                networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
                address = (networks.get(self.pods_network.name) or {}).get("IPAddress") or None
                runtime = Runtime(host_ports, address, record.global_ip)
            return runtime
        raise BackendError(f"cannot publish ports of pod {record.id} after {_START_ATTEMPTS} tries: {last_error}")

    def _create_container(self, record: PodRecord) -> Container:
        net = self.pods_network.get()
        volume = self._ensure_volume(record)
        labels = {
            LABEL_MANAGED: "1",
            LABEL_POD_ID: record.id,
            LABEL_CLOUD: self._cloud_id,
            LABEL_RECORD: record.model_dump_json(exclude={"events"}),
        }
        pinned = self.pods_network.pinned()
        endpoint = self._client.api.create_endpoint_config(
            aliases=[record.id], ipv4_address=record.private_ip if pinned else None
        )
        try:
            container = self._client.containers.create(
                record.runtime_image,
                command=shlex.split(record.args) or None,
                name=container_name(record.id),
                hostname=record.id,
                init=True,
                privileged=False,
                environment=runpod_environment(record, self.public_ip),
                labels=labels,
                ports={f"{port}/tcp": (PUBLISH_HOST, host_port) for port, host_port in record.host_ports.items()},
                network=net.name,
                networking_config={net.name: endpoint},
                volumes={volume: {"bind": record.persistent_path, "mode": "rw"}} if volume else None,
            )
        except APIError as exc:
            raise BackendError(f"cannot create container for pod {record.id}: {exc.explanation}") from exc
        try:
            container.put_archive("/", simulated_gpus_archive(record))
        except APIError as exc:
            self._call(container.remove, record.id, "remove", force=True)
            raise BackendError(f"cannot give pod {record.id} its simulated GPUs: {exc.explanation}") from exc
        if record.global_ip is not None or record.global_networking:
            try:
                self.global_network.connect(
                    container.name, aliases=[internal_dns(record.id)], address=record.global_ip
                )
            except BackendError:
                self._call(container.remove, record.id, "remove", force=True)
                raise
        return container


#: Where a local-cloud pod finds the GPUs it rented. On RunPod the NVIDIA
#: container runtime injects the GPUs (device nodes, nvidia-smi, NVML) into
#: any image; the local cloud has no GPU, so it injects this description of
#: simulated ones into every container it creates, whatever the image. Its pod
#: images' stand-in NVIDIA layer (images/nvidia-standin) makes device nodes,
#: nvidia-smi and NVML of them at container start.
SIMULATED_GPUS_FILE = "etc/gpuops-localcloud/simulated-gpus.json"


def simulated_gpus_archive(record: PodRecord) -> bytes:
    """A tar holding ``/etc/gpuops-localcloud/simulated-gpus.json`` for the pod's rented GPUs.

    ``memoryInGb`` is the GPU type's memory in the catalog (``memory`` of ``GET /v2/catalog/gpus``).
    """
    description: dict[str, Any] = {
        "simulated": True, "podId": record.id, "gpuTypeId": record.gpu_type_id, "count": record.gpu_count,
    }
    gpu_type = GPU_TYPES.get(record.gpu_type_id or "")
    if gpu_type is not None:
        description["memoryInGb"] = gpu_type.memory
    body = json.dumps(description, sort_keys=True).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(SIMULATED_GPUS_FILE.rsplit("/", 1)[0])
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        info = tarfile.TarInfo(SIMULATED_GPUS_FILE)
        info.size, info.mode = len(body), 0o644
        tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _parse_docker_ts(stamp: str) -> datetime:
    """Parse Docker's RFC 3339 log timestamp (nanoseconds) into an aware datetime."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    try:
        moment = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)
    micros = int((frac + "000000")[:6]) if frac.isdigit() else 0
    return moment.replace(microsecond=micros)


def _record_from_label(labels: dict[str, str]) -> PodRecord | None:
    raw = labels.get(LABEL_RECORD)
    if not raw:
        return None
    try:
        return PodRecord.model_validate(json.loads(raw))
    except ValueError:
        return None
