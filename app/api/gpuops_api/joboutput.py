"""Finished jobs' output, kept on the service plane.

When a job ends, the Epilog of the node that ran its batch script (installed by
the slurm role) sends the job's standard output and error, read as the job's
own user, through the pod's SSH tunnel to ``PUT /api/v1/nodes/{node}/jobs/{id}/output/{stream}``.
Each node proves who it is with a token of its own (``<store>/tokens/<node>``,
written by the slurm role, 0600; a copy sits on the pod, root only, where jobs
cannot read it), and a node may only send the output of a job whose batch host
it was. The files land in ``<store>/jobs/<job id>/`` as ``slurm-<id>.out`` and
``slurm-<id>.err`` with a ``manifest.json``: the API and ``submit_job.yml`` read
finished jobs' output from there, with no SSH to a pod.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Stream = Literal["stdout", "stderr"]
#: A node's name (slurm role: lower-case letters, digits and '-').
NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SUFFIX = {"stdout": "out", "stderr": "err"}


def file_name(job_id: int, stream: Stream) -> str:
    """The name a stream of a job is kept under (the names sbatch gives by default)."""
    return f"slurm-{job_id}.{_SUFFIX[stream]}"


@dataclass(frozen=True)
class Received:
    """What the manifest records of one stream."""

    node: str
    restart_count: int
    bytes: int
    truncated: bool
    received_at: float


class OutputStore:
    """``<root>/tokens/<node>`` (read) and ``<root>/jobs/<job id>/`` (written)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tokens = root / "tokens"
        self.jobs = root / "jobs"

    def node_token_matches(self, node: str, presented: str) -> bool:
        """Whether `presented` is `node`'s token. Unknown node, unreadable or short token: False."""
        if not NODE_NAME.match(node):
            return False
        try:
            token = (self.tokens / node).read_bytes().strip()
        except OSError:
            return False
        if len(token) < 16:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token)

    def job_dir(self, job_id: int) -> Path:
        return self.jobs / str(int(job_id))

    def manifest(self, job_id: int) -> dict[str, dict[str, object]]:
        try:
            data = json.loads((self.job_dir(job_id) / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, job_id: int, stream: Stream, data: bytes, received: Received) -> bool:
        """Keep `data` as the job's `stream`. False (nothing written) when an upload of a later run of the
        job (a higher restart count, after a requeue) is already kept."""
        directory = self.job_dir(job_id)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        manifest = self.manifest(job_id)
        kept = manifest.get(stream)
        if isinstance(kept, dict) and int(str(kept.get("restart_count", -1))) > received.restart_count:
            return False
        _write_atomically(directory / file_name(job_id, stream), data)
        manifest[stream] = asdict(received)
        _write_atomically(directory / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
        return True

    def tail(self, job_id: int, stream: Stream, lines: int, max_bytes: int) -> tuple[str, int, bool] | None:
        """The last `lines` lines of a kept stream (text, lines, truncated), or None when none is kept."""
        path = self.job_dir(job_id) / file_name(job_id, stream)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            cut = size > max_bytes
            if cut:
                handle.seek(size - max_bytes)
            data = handle.read(max_bytes)
        if cut and b"\n" in data:
            data = data.split(b"\n", 1)[1]
        kept = self.manifest(job_id).get(stream)
        cut = cut or (isinstance(kept, dict) and bool(kept.get("truncated")))
        rows = data.decode("utf-8", "replace").splitlines(keepends=True)
        return "".join(rows[-lines:]), len(rows[-lines:]), cut or len(rows) > lines


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
