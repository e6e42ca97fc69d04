"""A backend without containers: pods are records only (fast; for client scale tests).

Pods get distinct fake host ports, private addresses and (with global
networking) global addresses, so clients see the same shapes as with the
Docker backend, but nothing listens on them.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Iterator

from localcloud.backends.base import PodBackend, Runtime
from localcloud.config import DEFAULT_HOST_PORT_RANGE
from localcloud.ports import PortAllocator
from localcloud.records import PodRecord

_PRIVATE_NET = ipaddress.ip_network("10.88.0.0/16")
_GLOBAL_NET = ipaddress.ip_network("10.65.0.0/16")


class _Addresses:
    """Distinct addresses from one network; thread-safe."""

    def __init__(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self._hosts: Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address] = network.hosts()
        self._taken: set[str] = set()
        self._lock = threading.Lock()

    def reserve(self, address: str | None) -> None:
        if address:
            with self._lock:
                self._taken.add(address)

    def release(self, address: str | None) -> None:
        with self._lock:
            self._taken.discard(address or "")

    def new(self) -> str:
        with self._lock:
            for host in self._hosts:
                if str(host) not in self._taken:
                    self._taken.add(str(host))
                    return str(host)
        raise RuntimeError("memory backend ran out of addresses")


class MemoryBackend(PodBackend):
    """Pods exist only as records; lifecycle calls just keep ports and addresses consistent."""

    name = "memory"

    def __init__(self, host_port_range: tuple[int, int] = DEFAULT_HOST_PORT_RANGE) -> None:
        self._ports = PortAllocator(*host_port_range, probe_host=None)
        self._private = _Addresses(_PRIVATE_NET)
        self._global = _Addresses(_GLOBAL_NET)

    def adopt(self, records: Iterable[PodRecord]) -> None:
        """Reserve the ports and addresses of recovered pods."""
        for record in records:
            self._ports.reserve(record.host_ports.values())
            self._private.reserve(record.private_ip)
            self._global.reserve(record.global_ip)

    def resolve_image(self, image: str) -> str:
        """Any image is fine: nothing is run."""
        return image

    def recreate(self, record: PodRecord, *, start: bool) -> Runtime:
        """Hand out ports for the (possibly changed) port list, and addresses."""
        wanted = {str(p) for p in record.tcp_ports()}
        self._ports.release(port for key, port in record.host_ports.items() if key not in wanted)
        ports: dict[str, int] = {}
        for port in record.tcp_ports():
            current = record.host_ports.get(str(port))
            ports[str(port)] = current if current is not None else self._ports.allocate()
        global_ip = record.global_ip
        if record.global_networking and global_ip is None:
            global_ip = self._global.new()
        elif not record.global_networking and global_ip is not None:
            self._global.release(global_ip)
            global_ip = None
        return Runtime(ports, record.private_ip or self._private.new(), global_ip)

    def stop(self, record: PodRecord) -> None:
        """Nothing to stop."""

    def kill(self, record: PodRecord) -> None:
        """Nothing runs, so nothing to kill."""

    def remove(self, record: PodRecord) -> None:
        """Free the pod's ports and addresses."""
        self._ports.release(record.host_ports.values())
        self._private.release(record.private_ip)
        self._global.release(record.global_ip)

    def cut_network(self, record: PodRecord) -> None:
        """Only the record's ``network_cut`` flag changes."""

    def restore_network(self, record: PodRecord) -> None:
        """Only the record's ``network_cut`` flag changes."""
