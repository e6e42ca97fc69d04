"""Pending faults: what the next requests or creates will suffer (set through ``/_localcloud/faults``).

Each fault is a counter consumed by the requests it hits, so a test says
"the next 3 requests are rate limited" and the fourth succeeds. Faults live
in memory only: a server restart clears them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class RequestFault:
    """The next ``count`` matching ``/v2`` requests answer ``status`` (429 with ``retry_after``, or 403)."""

    count: int
    retry_after: int = 1
    #: Only requests with this method (e.g. "POST"); None: any.
    method: str | None = None
    #: Only requests whose path starts with this (e.g. "/v2/pods"); None: any.
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Return True if a request with ``method`` and ``path`` is hit."""
        return (
            self.count > 0
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or path.startswith(self.path))
        )

    def as_json(self) -> dict[str, object]:
        """Return the fault as the API shows it."""
        return {"count": self.count, "retryAfter": self.retry_after, "method": self.method, "path": self.path}


class Faults:
    """Every pending fault; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self.rate_limit = RequestFault(0)
            self.forbidden = RequestFault(0)
            self.capacity = 0
            self.provisioning = 0

    def set_rate_limit(self, fault: RequestFault) -> None:
        """Make the next matching requests answer 429."""
        with self._lock:
            self.rate_limit = fault

    def set_forbidden(self, fault: RequestFault) -> None:
        """Make the next matching requests answer 403."""
        with self._lock:
            self.forbidden = fault

    def set_capacity(self, count: int) -> None:
        """Make the next ``count`` creates fail for lack of capacity."""
        with self._lock:
            self.capacity = count

    def set_provisioning(self, count: int) -> None:
        """Make the next ``count`` created pods stay in PROVISIONING."""
        with self._lock:
            self.provisioning = count

    def take_request_fault(self, method: str, path: str) -> tuple[int, int] | None:
        """Consume one request fault matching the request: (status, retry_after), or None."""
        with self._lock:
            for status, fault in ((429, self.rate_limit), (403, self.forbidden)):
                if fault.matches(method, path):
                    fault.count -= 1
                    return status, fault.retry_after
        return None

    def take_capacity(self) -> bool:
        """Consume one capacity fault; True if this create must fail."""
        with self._lock:
            if self.capacity > 0:
                self.capacity -= 1
                return True
            return False

    def take_provisioning(self) -> bool:
        """Consume one stuck-provisioning fault; True if this pod must stay PROVISIONING."""
        with self._lock:
            if self.provisioning > 0:
                self.provisioning -= 1
                return True
            return False

    def as_json(self) -> dict[str, object]:
        """Return the pending faults as the API shows them."""
        with self._lock:
            return {
                "rateLimit": self.rate_limit.as_json(),
                "forbidden": self.forbidden.as_json(),
                "capacity": {"count": self.capacity},
                "provisioning": {"count": self.provisioning},
            }
