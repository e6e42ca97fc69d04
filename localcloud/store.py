"""Persistence of pod records and the account's SSH keys in ``<state-dir>/state.json``.

Every change rewrites the whole file atomically: the text goes to a
temporary file in the same folder, is flushed to disk, then replaces
``state.json`` with ``os.replace``, so a crash leaves either the old or the
new state, never a torn file. Each record's JSON is cached so a write costs
one join, not a re-serialisation of every pod (1000 pods stay cheap).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from pydantic import ValidationError

from localcloud.records import PodRecord, StateFile

STATE_VERSION = 2


class StateError(Exception):
    """The state file cannot be used (corrupt, from an older localcloud, or of another backend)."""


class StateStore:
    """Reads and writes the pod records of one state directory."""

    def __init__(self, path: Path, backend: str) -> None:
        self.path = path
        self.backend = backend
        #: Each pod's serialised ``"id":{...}`` member of the "pods" object.
        self._entries: dict[str, str] = {}
        self._ssh_keys: list[str] = []
        self._lock = threading.Lock()

    def load(self) -> dict[str, PodRecord]:
        """Read ``state.json`` (missing means no pods) and return the records by id."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            version = json.loads(text).get("version")
        except (ValueError, AttributeError):
            version = None
        if version is not None and version != STATE_VERSION:
            raise StateError(
                f"{self.path} was written by an older localcloud (state version {version}, RunPod REST v1 "
                f"records; this one needs version {STATE_VERSION}); run 'python -m localcloud stop --purge' "
                "for that state dir, or use another --state-dir"
            )
        try:
            state = StateFile.model_validate_json(text)
        except ValidationError as exc:
            raise StateError(
                f"{self.path} is not a valid localcloud state file ({exc.error_count()} errors, first: "
                f"{exc.errors()[0]['msg']}); move it away or run 'python -m localcloud stop --purge'"
            ) from exc
        if state.backend != self.backend:
            raise StateError(
                f"{self.path} holds pods of the {state.backend!r} backend, not {self.backend!r}; "
                f"use --backend {state.backend}, another --state-dir, or 'stop --purge' first"
            )
        with self._lock:
            self._entries = {pod_id: self._entry(rec) for pod_id, rec in state.pods.items()}
            self._ssh_keys = list(state.ssh_keys)
        return dict(state.pods)

    def ssh_keys(self) -> list[str]:
        """Return the account's registered SSH keys (as last loaded or stored)."""
        with self._lock:
            return list(self._ssh_keys)

    def put_ssh_keys(self, keys: list[str]) -> None:
        """Replace the account's SSH keys and write the file."""
        with self._lock:
            self._ssh_keys = list(keys)
            self._write()

    def put(self, record: PodRecord) -> None:
        """Store (insert or replace) one record and write the file."""
        with self._lock:
            self._entries[record.id] = self._entry(record)
            self._write()

    def put_many(self, records: list[PodRecord]) -> None:
        """Store several records with one write."""
        with self._lock:
            for record in records:
                self._entries[record.id] = self._entry(record)
            self._write()

    def remove(self, pod_id: str) -> None:
        """Forget one record and write the file."""
        with self._lock:
            self._entries.pop(pod_id, None)
            self._write()

    @staticmethod
    def _entry(record: PodRecord) -> str:
        return f"{json.dumps(record.id)}:{record.model_dump_json()}"

    def _write(self) -> None:
        pods = ",".join(self._entries.values())
        text = (
            f'{{"version":{STATE_VERSION},"backend":{json.dumps(self.backend)},'
            f'"ssh_keys":{json.dumps(self._ssh_keys)},"pods":{{{pods}}}}}'
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
