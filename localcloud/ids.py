"""Identifiers that look like RunPod's (lowercase letters and digits)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits

#: Length of a RunPod pod id, e.g. "xedezhzb9la3ye".
POD_ID_LENGTH = 14
#: Length of a RunPod machine id, e.g. "s194cr8pls2z".
MACHINE_ID_LENGTH = 12


def random_id(length: int) -> str:
    """Return ``length`` random lowercase letters and digits, starting with a letter."""
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(_ALPHABET) for _ in range(length - 1))


def new_pod_id() -> str:
    """Return a fresh pod id (14 lowercase alphanumerics)."""
    return random_id(POD_ID_LENGTH)


def new_machine_id() -> str:
    """Return a fresh machine id (12 lowercase alphanumerics)."""
    return random_id(MACHINE_ID_LENGTH)
