"""What every benchmark shares: timing, statistics, result tables, printing, errors."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.integration.helpers import recap


class BenchError(RuntimeError):
    """A benchmark could not measure what it measures (a failed playbook, a missing pod...)."""


@dataclass
class Table:
    """One Markdown table of a benchmark's figures, with notes printed under it."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "headers": self.headers, "rows": self.rows, "notes": self.notes}


@dataclass
class Result:
    """What one benchmark returns: raw data for the JSON file and tables for latest.md."""

    data: dict[str, Any]
    tables: list[Table]


_SECRETS = (
    re.compile(r"(#?token=)[^\s'\",]+"),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+"),
)


def redact(text: str) -> str:
    """Hide the API token (printed once by site.yml's summary) and bearer keys in output we show."""
    for pattern in _SECRETS:
        text = pattern.sub(r"\1<redacted>", text)
    return text


def say(message: str) -> None:
    """Print a progress line at once (runs take minutes)."""
    print(message, flush=True)


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and the samples themselves (seconds, rounded to ms)."""
    values = [round(value, 3) for value in samples]
    if not values:
        return {"median_s": None, "min_s": None, "max_s": None, "samples_s": []}
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": min(values),
        "max_s": max(values),
        "samples_s": values,
    }


def stat_row(label: str, stats: dict[str, Any], *extra: Any) -> list[Any]:
    """A table row: label, median, min, max (seconds), then any extra cells."""
    return [label, fmt_s(stats["median_s"]), fmt_s(stats["min_s"]), fmt_s(stats["max_s"]), *extra]


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    """Run action(); return its value and the wall-clock seconds it took."""
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def recap_counts(output: str) -> dict[str, Any]:
    """ansible-playbook's PLAY RECAP: per host, and changed/failed/unreachable summed over hosts."""
    hosts = recap(output)
    totals = {key: sum(counts.get(key, 0) for counts in hosts.values()) for key in ("ok", "changed", "failed", "unreachable")}
    return {"hosts": hosts, **totals}


# The profiling callbacks' recaps (bench/profile.py) follow the PLAY RECAP: hundreds of lines
# that would push the failure out of an error message's tail.
_PROFILE_RECAP = re.compile(r"^(?:TASKS|ROLES) RECAP \*{3,}", re.MULTILINE)


def check_playbook(result: subprocess.CompletedProcess, what: str) -> dict[str, Any]:
    """Fail with the end of its output unless the playbook succeeded; return its recap counts."""
    counts = recap_counts(result.stdout)
    if result.returncode != 0 or counts["failed"] or counts["unreachable"]:
        profile_recap = _PROFILE_RECAP.search(result.stdout)
        stdout = result.stdout[:profile_recap.start()] if profile_recap else result.stdout
        raise BenchError(
            f"{what} failed (exit {result.returncode}, failed={counts['failed']}, unreachable={counts['unreachable']})\n"
            f"--- end of stdout\n{redact(stdout[-4000:])}\n--- end of stderr\n{redact(result.stderr[-2000:])}"
        )
    return counts


def stderr_note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
