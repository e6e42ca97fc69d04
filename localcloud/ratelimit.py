"""Rate limiting as RunPod announces it: per-key quotas per minute, hour and day.

Every authenticated ``/v2`` answer carries (IETF ratelimit-headers draft,
as RunPod sends them)::

    RateLimit: "minute";r=59;t=42, "hour";r=2999;t=1800, "day";r=49999;t=45000
    RateLimit-Policy: "minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400

``r`` is the remaining count, ``t`` the seconds until the window resets,
``q`` the quota, ``w`` the window length. A request over a quota answers 429
with ``Retry-After`` (seconds until that window resets). Windows are fixed
and aligned to the epoch. Fault injection (``faults.py``) can force 429s
without exhausting a quota.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOWS: tuple[tuple[str, int], ...] = (("minute", 60), ("hour", 3600), ("day", 86400))


@dataclass(frozen=True)
class Decision:
    """The outcome of one request's check."""

    allowed: bool
    #: Seconds to wait when not allowed (the exceeded window's reset).
    retry_after: int
    #: The ``RateLimit`` header value.
    state: str


class RateLimiter:
    """Counts requests per fixed window; thread-safe."""

    def __init__(self, quotas: tuple[int, int, int], now: Callable[[], float] = time.time) -> None:
        if len(quotas) != len(WINDOWS) or any(q < 1 for q in quotas):
            raise ValueError(f"rate limits must be {len(WINDOWS)} positive numbers (minute, hour, day)")
        self._quotas = quotas
        self._now = now
        self._counts: dict[str, tuple[int, int]] = {}  # window name -> (window start, count)
        self._lock = threading.Lock()

    @property
    def policy(self) -> str:
        """The ``RateLimit-Policy`` header value."""
        return ", ".join(f'"{name}";q={quota};w={length}' for (name, length), quota in zip(WINDOWS, self._quotas))

    def hit(self) -> Decision:
        """Count one request; say whether it is within every quota."""
        now = self._now()
        with self._lock:
            parts, exceeded = [], 0
            for (name, length), quota in zip(WINDOWS, self._quotas):
                start = int(now // length) * length
                window_start, count = self._counts.get(name, (start, 0))
                if window_start != start:
                    count = 0
                reset = max(1, math.ceil(start + length - now))
                if count >= quota:
                    exceeded = max(exceeded, reset)
                parts.append((name, start, count, quota, reset))
            if not exceeded:
                parts = [(n, s, c + 1, q, r) for n, s, c, q, r in parts]
            for name, start, count, _, _ in parts:
                self._counts[name] = (start, count)
        state = ", ".join(f'"{n}";r={max(q - c, 0)};t={r}' for n, _, c, q, r in parts)
        return Decision(allowed=not exceeded, retry_after=exceeded, state=state)

    def peek(self) -> str:
        """Return the ``RateLimit`` value without counting a request."""
        now = self._now()
        with self._lock:
            parts = []
            for (name, length), quota in zip(WINDOWS, self._quotas):
                start = int(now // length) * length
                window_start, count = self._counts.get(name, (start, 0))
                used = count if window_start == start else 0
                parts.append(f'"{name}";r={max(quota - used, 0)};t={max(1, math.ceil(start + length - now))}')
        return ", ".join(parts)
