"""Running the server in the background: start, stop, status, and the files that track it.

``start`` spawns ``python -m localcloud serve`` in a new session (setsid),
with output appended to ``<state-dir>/server.log``, and waits until
``/healthz`` answers from that very process. The server itself writes
``server.pid`` and ``server.json`` (how it was started) and removes them when
it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localcloud.auth import ensure_api_key
from localcloud.backends.base import BackendUnavailable
from localcloud.config import Settings
from localcloud.ports import port_is_free
from localcloud.store import StateError, StateStore

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_POLL_S = 0.1


class DaemonError(Exception):
    """Starting, stopping or purging failed; the message says why and what to do."""


@dataclass(frozen=True)
class ServerInfo:
    """What ``server.json`` records about the running server."""

    pid: int
    url: str
    host: str
    port: int
    backend: str
    network: str
    ssh_ready_delay: float
    pod_image_default: str
    pytorch_standin_image: str = ""


# -- files written by the serving process ------------------------------------


def write_server_files(settings: Settings) -> None:
    """Record this process as the server of ``settings.state_dir``."""
    info = ServerInfo(
        pid=os.getpid(),
        url=settings.url,
        host=settings.host,
        port=settings.port,
        backend=settings.backend,
        network=settings.network,
        ssh_ready_delay=settings.ssh_ready_delay,
        pod_image_default=settings.pod_image_default,
        pytorch_standin_image=settings.pytorch_standin_image,
    )
    settings.server_file.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    settings.pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")


def remove_server_files(settings: Settings, pid: int) -> None:
    """Remove ``server.pid``/``server.json`` if they still name ``pid``."""
    if read_pid(settings) == pid:
        settings.pid_file.unlink(missing_ok=True)
        settings.server_file.unlink(missing_ok=True)


def read_pid(settings: Settings) -> int | None:
    """Return the pid in ``server.pid``, or None."""
    try:
        return int(settings.pid_file.read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


def read_server_info(settings: Settings) -> ServerInfo | None:
    """Return what ``server.json`` says, or None."""
    try:
        return ServerInfo(**json.loads(settings.server_file.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None


# -- process checks -----------------------------------------------------------


def is_server_process(pid: int) -> bool:
    """Return True if ``pid`` is alive (not a zombie) and is a ``localcloud serve`` process."""
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and b"localcloud" in cmdline and b"serve" in cmdline


def health(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """Return the JSON of ``GET /healthz`` at host:port, or None if nothing healthy answers."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{f'[{probe_host}]' if ':' in probe_host else probe_host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") == "ok" else None


@contextlib.contextmanager
def _start_lock(settings: Settings) -> Iterator[None]:
    with open(settings.state_dir / ".server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- start / stop / status --------------------------------------------------------


def _result(settings: Settings, changed: bool, pid: int | None, url: str, backend: str) -> dict[str, Any]:
    return {
        "changed": changed,
        "pid": pid,
        "url": url,
        "backend": backend,
        "state_dir": str(settings.state_dir),
        "api_key_file": str(settings.api_key_file),
        "log_file": str(settings.log_file),
    }


def start_daemon(settings: Settings, *, timeout: float = 30.0, log_level: str = "info") -> dict[str, Any]:
    """Start the server in the background unless it already runs; return the JSON result."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_api_key(settings.api_key_file)
    with _start_lock(settings):
        running = _running_server(settings, timeout)
        if running is not None:
            return _already_running(settings, running)
        _preflight(settings)
        return _spawn(settings, timeout, log_level)


def _running_server(settings: Settings, timeout: float) -> ServerInfo | None:
    pid = read_pid(settings)
    if pid is None:
        return None
    if not is_server_process(pid):
        settings.pid_file.unlink(missing_ok=True)
        settings.server_file.unlink(missing_ok=True)
        return None
    info = read_server_info(settings)
    if info is None or info.pid != pid:
        raise DaemonError(
            f"a localcloud server (pid {pid}) runs for {settings.state_dir} but {settings.server_file} "
            "does not describe it; run 'python -m localcloud stop' first"
        )
    deadline = time.monotonic() + timeout
    while True:
        answer = health(info.host, info.port)
        if answer and answer.get("pid") == pid:
            return info
        if time.monotonic() >= deadline:
            raise DaemonError(
                f"the localcloud server (pid {pid}) for {settings.state_dir} does not answer on {info.url}; "
                f"see {settings.log_file}, or run 'python -m localcloud stop' and start again"
            )
        time.sleep(_POLL_S)


def _already_running(settings: Settings, info: ServerInfo) -> dict[str, Any]:
    wanted = {"host": settings.host, "port": settings.port, "backend": settings.backend, "network": settings.network}
    actual = {"host": info.host, "port": info.port, "backend": info.backend, "network": info.network}
    diff = [f"{k} {actual[k]} (asked for {wanted[k]})" for k in wanted if wanted[k] != actual[k]]
    if diff:
        raise DaemonError(
            f"localcloud already runs for {settings.state_dir} (pid {info.pid}) with {', '.join(diff)}; "
            "run 'python -m localcloud stop' first to change it"
        )
    return _result(settings, False, info.pid, info.url, info.backend)


def _preflight(settings: Settings) -> None:
    if not port_is_free(settings.host, settings.port):
        other = health(settings.host, settings.port)
        who = f"another localcloud (state dir {other.get('stateDir')})" if other else "another program"
        raise DaemonError(
            f"port {settings.port} on {settings.host} is in use by {who}; choose another --port "
            "(or set GPUOPS_LOCALCLOUD_PORT)"
        )
    try:
        StateStore(settings.state_file, settings.backend).load()
    except StateError as exc:
        raise DaemonError(str(exc)) from exc
    if settings.backend == "docker":
        from localcloud.backends.docker import connect_docker

        try:
            connect_docker().close()
        except BackendUnavailable as exc:
            raise DaemonError(str(exc)) from exc


def serve_command(settings: Settings, log_level: str) -> list[str]:
    """Return the argv of the foreground server for ``settings``."""
    return [
        sys.executable,
        "-m",
        "localcloud",
        "serve",
        "--state-dir",
        str(settings.state_dir),
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--backend",
        settings.backend,
        "--ssh-ready-delay",
        str(settings.ssh_ready_delay),
        "--pod-image-default",
        settings.pod_image_default,
        "--pytorch-standin-image",
        settings.pytorch_standin_image,
        "--network",
        settings.network,
        "--log-level",
        log_level,
    ]


def _spawn(settings: Settings, timeout: float, log_level: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    with open(settings.log_file, "ab") as log:
        proc = subprocess.Popen(
            serve_command(settings, log_level),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd=settings.state_dir,
        )
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise DaemonError(
                f"the localcloud server exited with code {code} while starting; last lines of "
                f"{settings.log_file}:\n{_tail(settings.log_file)}"
            )
        answer = health(settings.host, settings.port)
        if answer and answer.get("pid") == proc.pid:
            proc.returncode = 0  # detached on purpose: no "still running" warning at exit
            return _result(settings, True, proc.pid, settings.url, settings.backend)
        if time.monotonic() >= deadline:
            proc.terminate()
            raise DaemonError(
                f"the localcloud server did not answer on {settings.url} within {timeout:g}s; see {settings.log_file}"
            )
        time.sleep(_POLL_S)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop_daemon(settings: Settings, *, timeout: float = 15.0, purge: bool = False) -> dict[str, Any]:
    """Stop the server if it runs; with ``purge`` also remove its pods, network and state."""
    info = read_server_info(settings)
    pid = read_pid(settings)
    stopped = None
    if pid is not None and is_server_process(pid):
        _terminate(pid, timeout)
        stopped = pid
    settings.pid_file.unlink(missing_ok=True)
    settings.server_file.unlink(missing_ok=True)
    result: dict[str, Any] = {"changed": stopped is not None, "pid": stopped, "state_dir": str(settings.state_dir)}
    if purge:
        removed = _purge(settings, info)
        result["purged"] = removed
        result["changed"] = result["changed"] or bool(removed)
    return result


def _terminate(pid: int, timeout: float) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_server_process(pid):
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5
            while is_server_process(pid):
                if time.monotonic() >= kill_deadline:
                    raise DaemonError(f"the localcloud server (pid {pid}) did not exit after SIGKILL")
                time.sleep(_POLL_S)
            return
        time.sleep(_POLL_S)


def _recorded_backend(settings: Settings, info: ServerInfo | None) -> str:
    if info is not None:
        return info.backend
    try:
        return str(json.loads(settings.state_file.read_text(encoding="utf-8"))["backend"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return settings.backend


def _purge(settings: Settings, info: ServerInfo | None) -> list[str]:
    removed: list[str] = []
    if _recorded_backend(settings, info) == "docker":
        from localcloud.backends.docker import connect_docker, purge_cloud

        try:
            client = connect_docker()
        except BackendUnavailable as exc:
            raise DaemonError(f"cannot purge the pods' containers: {exc}") from exc
        with contextlib.closing(client):
            removed += purge_cloud(client, settings.cloud_id, info.network if info else settings.network)
    leftovers = settings.state_dir.glob(f".{settings.state_file.name}.*")
    for path in (settings.state_file, settings.api_key_file, *leftovers):
        if path.exists():
            path.unlink()
            removed.append(f"file {path}")
    return removed


def server_status(settings: Settings) -> dict[str, Any]:
    """Return whether the server runs and answers, and where."""
    pid = read_pid(settings)
    info = read_server_info(settings)
    running = pid is not None and is_server_process(pid)
    answer = health(info.host, info.port) if running and info else None
    healthy = bool(answer and answer.get("pid") == pid)
    return {
        "running": running,
        "healthy": healthy,
        "pid": pid if running else None,
        "url": info.url if info and running else settings.url,
        "backend": info.backend if info and running else settings.backend,
        "pods": answer.get("pods") if healthy and answer else None,
        "state_dir": str(settings.state_dir),
        "api_key_file": str(settings.api_key_file),
        "log_file": str(settings.log_file),
    }
