"""The command line: argument errors, and start/status/stop of a real background server (memory backend)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.cli import main

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "localcloud", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def json_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["start", "--port", "0"], "port 0 is outside 1-65535"),
        (["start", "--port", "http"], "'http' is not a port number"),
        (["start", "--ssh-ready-delay", "-1"], "must be a finite number >= 0"),
        (["start", "--ssh-ready-delay", "soon"], "is not a number of seconds"),
        (["start", "--backend", "kubernetes"], "invalid choice: 'kubernetes'"),
        (["start", "--network", "bad name"], "not a valid Docker network name"),
        (["start", "--timeout", "0"], "the timeout must be > 0"),
        (["launch"], "invalid choice: 'launch'"),
        ([], "the following arguments are required"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit, match="exists and is not a directory"):
        main(["status", "--state-dir", str(target)])


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Arguments of a memory-backend cloud on a free port; stopped and purged afterwards."""
    state_dir = tmp_path / "lc"
    args = ["--backend", "memory", "--state-dir", str(state_dir), "--port", str(free_port())]
    yield {"args": args, "state_dir": state_dir}
    run_cli("stop", "--purge", *args)


def test_start_status_stop_cycle(cloud: dict[str, Any]) -> None:
    args, state_dir = cloud["args"], cloud["state_dir"]
    assert json_of(run_cli("status", *args))["running"] is False

    started = json_of(run_cli("start", *args))
    assert started["changed"] is True
    port = args[args.index("--port") + 1]
    assert started["url"] == f"http://127.0.0.1:{port}/v2"
    assert started["state_dir"] == str(state_dir)
    assert started["api_key_file"] == str(state_dir / "api_key")
    assert (state_dir / "server.pid").read_text().strip() == str(started["pid"])

    again = json_of(run_cli("start", *args))
    assert again["changed"] is False
    assert again["pid"] == started["pid"]

    status = json_of(run_cli("status", *args))
    assert status["running"] is True
    assert status["healthy"] is True
    assert status["pid"] == started["pid"]
    assert status["pods"] == 0

    stopped = json_of(run_cli("stop", *args))
    assert stopped["changed"] is True
    assert stopped["pid"] == started["pid"]
    assert not (state_dir / "server.pid").exists()
    assert json_of(run_cli("stop", *args))["changed"] is False
    assert json_of(run_cli("status", *args))["running"] is False


def test_server_log_is_json_and_holds_no_api_key(cloud: dict[str, Any]) -> None:
    args, state_dir = cloud["args"], cloud["state_dir"]
    json_of(run_cli("start", *args))
    json_of(run_cli("stop", *args))
    key = (state_dir / "api_key").read_text().strip()
    lines = (state_dir / "server.log").read_text().splitlines()
    assert lines
    assert all(json.loads(line)["msg"] for line in lines)
    assert key not in "\n".join(lines)


def test_start_with_other_settings_while_running_fails(cloud: dict[str, Any]) -> None:
    args = cloud["args"]
    json_of(run_cli("start", *args))
    other = [*args, "--port", str(free_port())]
    proc = run_cli("start", *other)
    assert proc.returncode == 1
    assert "already runs" in proc.stderr
    assert "stop" in proc.stderr


def test_port_taken_by_another_program_fails_clearly(cloud: dict[str, Any]) -> None:
    args = cloud["args"]
    port = int(args[args.index("--port") + 1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        proc = run_cli("start", *args)
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use by another program" in proc.stderr
    assert proc.stdout == ""


def test_unreachable_docker_fails_clearly(tmp_path: Path) -> None:
    proc = run_cli(
        "start",
        "--backend",
        "docker",
        "--state-dir",
        str(tmp_path / "lc"),
        "--port",
        str(free_port()),
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"},
    )
    assert proc.returncode == 1
    assert "Docker is not reachable" in proc.stderr
    assert "--backend memory" in proc.stderr
    assert not (tmp_path / "lc" / "server.pid").exists()


def test_environment_variables_choose_state_dir_and_port(tmp_path: Path) -> None:
    port = free_port()
    env = {"GPUOPS_LOCALCLOUD_STATE_DIR": str(tmp_path / "from-env"), "GPUOPS_LOCALCLOUD_PORT": str(port)}
    status = json_of(run_cli("status", env=env))
    assert status["state_dir"] == str(tmp_path / "from-env")
    assert status["url"] == f"http://127.0.0.1:{port}/v2"


def test_purge_removes_state_but_not_foreign_files(cloud: dict[str, Any]) -> None:
    args, state_dir = cloud["args"], cloud["state_dir"]
    json_of(run_cli("start", *args))
    (state_dir / "terraform.rc").write_text("provider_installation {}\n")
    purged = json_of(run_cli("stop", "--purge", *args))
    assert purged["changed"] is True
    assert not (state_dir / "api_key").exists()
    assert not (state_dir / "server.pid").exists()
    assert (state_dir / "terraform.rc").exists()
