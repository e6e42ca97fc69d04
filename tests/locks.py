"""The repository's pinned locks (scripts/lock.sh): pip-compile's format with hashes.

Each requirement is ``name==version``, optionally ``; marker``, then one or
more ``--hash=sha256:<hex>`` options on continuation lines. pip's own parser
is not a public API, so this reads the subset pip-compile writes and refuses
anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Every lock of the repository and the .in file it is compiled from.
LOCKS = {
    "requirements.txt": "requirements.in",
    "requirements-ansible-core-2.20.txt": "requirements-ansible-core.in",
    "requirements-ansible-core-2.21.txt": "requirements-ansible-core.in",
    "app/api/requirements.txt": "app/api/requirements.in",
    "awx/ee/requirements.txt": "awx/ee/requirements.in",
    "scripts/lock-tools.txt": "scripts/lock-tools.in",
}
_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(;[^\\]*)?$")
_HASH = re.compile(r"^--hash=sha256:(?P<hex>[0-9a-f]{64})$")


def normalise(name: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Pin:
    name: str
    version: str
    hashes: list[str] = field(default_factory=list)


def read(path: Path | str) -> dict[str, Pin]:
    """The lock at PATH (relative to the repository) as {normalised name: Pin}."""
    text = (REPO / path).read_text()
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current.strip())
    pins: dict[str, Pin] = {}
    for entry in logical:
        head, *options = entry.split(" --hash=")
        match = _REQUIREMENT.match(head.strip())
        if not match:
            raise ValueError(f"{path}: not a pinned requirement: {entry!r}")
        pin = Pin(match["name"], match["version"])
        for option in options:
            digest = _HASH.match("--hash=" + option.strip())
            if not digest:
                raise ValueError(f"{path}: {pin.name}: not a sha256 hash option: {option!r}")
            pin.hashes.append(digest["hex"])
        pins[normalise(pin.name)] = pin
    return pins


def versions(path: Path | str) -> dict[str, str]:
    """The lock at PATH as {normalised name: version}."""
    return {name: pin.version for name, pin in read(path).items()}
