"""A backend without containers: pods are records only (fast; for client scale tests).

Pods get distinct fake host ports and private addresses, so clients see the
same shapes as with the Docker backend, but nothing listens on them.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable

from localcloud.backends.base import PodBackend, Runtime
from localcloud.config import DEFAULT_HOST_PORT_RANGE
from localcloud.ports import PortAllocator
from localcloud.records import PodRecord

_PRIVATE_NET = ipaddress.ip_network("10.88.0.0/16")


class MemoryBackend(PodBackend):
    """Pods exist only as records; lifecycle calls just keep ports and addresses consistent."""

    name = "memory"

    def __init__(self, host_port_range: tuple[int, int] = DEFAULT_HOST_PORT_RANGE) -> None:
        self._ports = PortAllocator(*host_port_range, probe_host=None)
        self._ips: set[str] = set()
        self._hosts = _PRIVATE_NET.hosts()
        self._lock = threading.Lock()

    def adopt(self, records: Iterable[PodRecord]) -> None:
        """Reserve the ports and addresses of recovered pods."""
        for record in records:
            self._ports.reserve(record.host_ports.values())
            if record.private_ip:
                with self._lock:
                    self._ips.add(record.private_ip)

    def resolve_image(self, image_name: str) -> str:
        """Any image name is fine: nothing is run."""
        return image_name

    def create(self, record: PodRecord) -> Runtime:
        """Hand out ports and an address."""
        return Runtime(self._assign_ports(record), record.private_ip or self._new_ip())

    def start(self, record: PodRecord) -> Runtime:
        """Nothing to start; keep ports and address."""
        return Runtime(dict(record.host_ports), record.private_ip)

    def stop(self, record: PodRecord) -> None:
        """Nothing to stop."""

    def restart(self, record: PodRecord) -> Runtime:
        """Nothing to restart."""
        return self.start(record)

    def recreate(self, record: PodRecord, *, start: bool) -> Runtime:
        """Re-assign ports for the (possibly changed) port list."""
        wanted = {str(p) for p in record.tcp_ports()}
        self._ports.release(port for key, port in record.host_ports.items() if key not in wanted)
        return Runtime(self._assign_ports(record), record.private_ip or self._new_ip())

    def remove(self, record: PodRecord) -> None:
        """Free the pod's ports and address."""
        self._ports.release(record.host_ports.values())
        with self._lock:
            self._ips.discard(record.private_ip or "")

    def interrupt(self, record: PodRecord) -> None:
        """Nothing runs, so nothing to kill."""

    def cut_network(self, record: PodRecord) -> None:
        """Only the record's ``network_cut`` flag changes."""

    def restore_network(self, record: PodRecord) -> None:
        """Only the record's ``network_cut`` flag changes."""

    def _assign_ports(self, record: PodRecord) -> dict[str, int]:
        ports: dict[str, int] = {}
        for port in record.tcp_ports():
            current = record.host_ports.get(str(port))
            ports[str(port)] = current if current is not None else self._ports.allocate()
        return ports

    def _new_ip(self) -> str:
        with self._lock:
            for host in self._hosts:
                address = str(host)
                if address not in self._ips:
                    self._ips.add(address)
                    return address
        raise RuntimeError("memory backend ran out of private addresses")
