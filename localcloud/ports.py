"""Host port allocation for published pod ports.

Docker can pick a random host port itself, but only when the container
starts, while RunPod's in-pod variable ``RUNPOD_TCP_PORT_22`` must be in the
container's environment from the start. So the local cloud picks the port
before creating the container: a random free port in a range below Linux's
ephemeral range, checked by binding it on 127.0.0.1. Should another program
take it in the short window before Docker binds it, the Docker backend sees
"port is already allocated" at start and retries with a new port.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterable


class PortsExhausted(Exception):
    """No free port is left in the range."""


def port_is_free(host: str, port: int) -> bool:
    """Return True if ``host:port`` can be bound for TCP right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out distinct host ports from ``[low, high)``; thread-safe.

    With ``probe_host`` set, a candidate must also be bindable there (real
    ports); without it, ports are only kept distinct (memory backend).
    """

    def __init__(
        self, low: int, high: int, probe_host: str | None = "127.0.0.1", rng: random.Random | None = None
    ) -> None:
        if not 1 <= low < high <= 65536:
            raise ValueError(f"invalid port range {low}-{high}")
        self._low, self._high = low, high
        self._probe_host = probe_host
        self._rng = rng or random.Random()  # noqa: S311 - spreading ports, not security
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def reserve(self, ports: Iterable[int]) -> None:
        """Mark ports as taken (recovered pods)."""
        with self._lock:
            self._used.update(ports)

    def release(self, ports: Iterable[int]) -> None:
        """Give ports back."""
        with self._lock:
            self._used.difference_update(ports)

    def allocate(self, preferred: int | None = None) -> int:
        """Return a free port, ``preferred`` if it is free, and mark it as taken."""
        with self._lock:
            if preferred is not None and preferred not in self._used and self._usable(preferred):
                self._used.add(preferred)
                return preferred
            size = self._high - self._low
            for _ in range(min(size, 4096)):
                port = self._rng.randrange(self._low, self._high)
                if port not in self._used and self._usable(port):
                    self._used.add(port)
                    return port
            for port in range(self._low, self._high):
                if port not in self._used and self._usable(port):
                    self._used.add(port)
                    return port
        raise PortsExhausted(f"no free host port left in {self._low}-{self._high - 1}")

    def _usable(self, port: int) -> bool:
        return self._probe_host is None or port_is_free(self._probe_host, port)
