"""Logs are JSON lines and keep secrets out: no API key, PUBLIC_KEY only as a fingerprint."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.logs import JsonFormatter, env_summary, public_key_fingerprint


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("localcloud")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_pod_creation_logs_fingerprint_not_key(
    log_lines: io.StringIO, client: Any, pod_body: dict[str, Any], state_dir: Path
) -> None:
    pod_body["env"]["DB_PASSWORD"] = "hunter2"  # noqa: S105 - a fake secret that must not be logged
    client.post("/v2/pods", json=pod_body)
    text = log_lines.getvalue()
    entries = [json.loads(line) for line in text.splitlines()]
    created = next(e for e in entries if e["msg"] == "pod created")
    public_key = pod_body["env"]["PUBLIC_KEY"]
    assert created["public_key_fingerprints"] == [public_key_fingerprint(public_key)]
    assert created["env_names"] == ["DB_PASSWORD", "PUBLIC_KEY"]
    assert public_key.split()[1] not in text
    assert "hunter2" not in text
    assert (state_dir / "api_key").read_text().strip() not in text


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    key = tmp_path / "id"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    listed = subprocess.run([keygen, "-lf", f"{key}.pub"], capture_output=True, text=True, check=True)
    assert public_key_fingerprint(Path(f"{key}.pub").read_text()) == listed.stdout.split()[1]


def test_env_summary_without_public_key() -> None:
    assert env_summary({"B": "2", "A": "1"}) == {"env_names": ["A", "B"]}
