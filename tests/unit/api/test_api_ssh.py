"""Reading job output over SSH against a real (in-process) SSH server: pinned host keys only."""

from __future__ import annotations

import asyncio
import posixpath
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from gpuops_api.errors import UpstreamError
from gpuops_api.upstreams.ssh import SshTail, Tail

ALIAS = "runpod-testpod0000"


class _Server(paramiko.ServerInterface):
    """Accepts one client key and runs exec requests with sh on this machine."""

    def __init__(self, client_key: paramiko.PKey) -> None:
        self.client_key = client_key
        self.commands: list[str] = []

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == "root" and key == self.client_key
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands.append(command.decode())
        threading.Thread(target=self._run, args=(channel, command.decode()), daemon=True).start()
        return True

    @staticmethod
    def _run(channel: paramiko.Channel, command: str) -> None:
        done = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30, check=False)
        channel.sendall(done.stdout)
        channel.sendall_stderr(done.stderr)
        channel.send_exit_status(done.returncode)
        channel.close()


class SshServer:
    def __init__(self, host_key: paramiko.PKey, client_key: paramiko.PKey) -> None:
        self.host_key = host_key
        self.interface = _Server(client_key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.transports: list[paramiko.Transport] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            try:
                transport.start_server(server=self.interface)
            except (paramiko.SSHException, EOFError):
                continue

    def close(self) -> None:
        self.sock.close()
        for transport in self.transports:
            transport.close()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, object]:
    host_key = paramiko.ECDSAKey.generate()
    client_key = paramiko.ECDSAKey.generate()
    client_key.write_private_key_file(str(tmp_path / "id_ecdsa"))
    return {"host": host_key, "client": client_key, "client_file": tmp_path / "id_ecdsa"}


@pytest.fixture
def server(keys: dict) -> Iterator[SshServer]:
    ssh_server = SshServer(keys["host"], keys["client"])
    yield ssh_server
    ssh_server.close()


def known_hosts(path: Path, alias: str, key: paramiko.PKey, hashed: bool = True) -> Path:
    name = paramiko.HostKeys.hash_host(alias) if hashed else alias
    path.write_text(f"{name} {key.get_name()} {key.get_base64()}\n")
    return path


def tail(keys: dict, known: Path, server: SshServer, path: str, lines: int, alias: str = ALIAS,
         as_user: str = "root", within: str | None = None) -> Tail | None:
    """The reader's tail; the job's directory is the file's own unless `within` names another."""
    reader = SshTail("root", keys["client_file"], known, timeout=5)
    return asyncio.run(reader.tail("127.0.0.1", server.port, alias, path, lines, as_user,
                                   within if within is not None else posixpath.dirname(path)))


@pytest.mark.parametrize("hashed", [True, False], ids=["hashed", "plain"])
def test_tail_through_the_pinned_alias(tmp_path: Path, keys: dict, server: SshServer, hashed: bool) -> None:
    out = tmp_path / "slurm 7.out"
    out.write_text("".join(f"line {i}\n" for i in range(1, 11)))
    known = known_hosts(tmp_path / "known_hosts", ALIAS, keys["host"], hashed)
    assert tail(keys, known, server, str(out), 3) == Tail("line 8\nline 9\nline 10\n", 3, True)
    assert tail(keys, known, server, str(out), 10) == Tail(out.read_text(), 10, False)
    assert tail(keys, known, server, str(out), 50) == Tail(out.read_text(), 10, False)
    assert tail(keys, known, server, str(tmp_path / "missing.out"), 5) is None
    assert "'" in server.interface.commands[0]  # the path is quoted for the shell


def test_the_file_is_read_as_the_jobs_user_and_never_through_a_link(tmp_path: Path, keys: dict,
                                                                     server: SshServer) -> None:
    """The job owns its directory: a link to a key, or a file its user cannot read, yields nothing."""
    known = known_hosts(tmp_path / "known_hosts", ALIAS, keys["host"])
    secret = tmp_path / "munge.key"
    secret.write_text("secret\n")
    secret.chmod(0o600)
    link = tmp_path / "slurm-9.out"
    link.symlink_to(secret)
    assert tail(keys, known, server, str(link), 5) is None
    assert tail(keys, known, server, str(secret), 5) == Tail("secret\n", 1, False)
    # The same file, as a user who cannot read it (the test runs as root, as the pods' sshd user does).
    assert tail(keys, known, server, str(secret), 5, as_user="nobody") is None
    assert all("exec setpriv --reuid=" in command for command in server.interface.commands)


def test_a_link_on_the_way_to_the_file_is_never_followed(tmp_path: Path, keys: dict, server: SshServer) -> None:
    """The job's directory itself, or a directory in it, replaced by a link (to where another job's output or a
    key is) yields nothing, although the file at the end of the link is a regular file the user can read."""
    known = known_hosts(tmp_path / "known_hosts", ALIAS, keys["host"])
    elsewhere = tmp_path / "other-job"
    elsewhere.mkdir()
    (elsewhere / "slurm-9.out").write_text("the other job's output\n")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "job-a").symlink_to(elsewhere)
    path = str(jobs / "job-a" / "slurm-9.out")
    assert tail(keys, known, server, path, 5, within=str(jobs / "job-a")) is None
    # A directory below the job's directory replaced by a link.
    (jobs / "job-b").mkdir()
    (jobs / "job-b" / "logs").symlink_to(elsewhere)
    below = str(jobs / "job-b" / "logs" / "slurm-9.out")
    assert tail(keys, known, server, below, 5, within=str(jobs / "job-b")) is None
    # The same file at its own path is read: it is the link that is refused.
    assert tail(keys, known, server, str(elsewhere / "slurm-9.out"), 5) == Tail("the other job's output\n", 1, False)


def test_a_file_outside_the_jobs_directory_is_not_read_on_the_pod(tmp_path: Path, keys: dict,
                                                                  server: SshServer) -> None:
    """The pod confines the read to the job's directory too, whatever path it is handed."""
    known = known_hosts(tmp_path / "known_hosts", ALIAS, keys["host"])
    (tmp_path / "job-a").mkdir()
    other = tmp_path / "job-b" / "slurm-3.out"
    other.parent.mkdir()
    other.write_text("job b\n")
    assert tail(keys, known, server, str(other), 5, within=str(tmp_path / "job-a")) is None
    # A sibling whose name starts with the directory's is outside it, too.
    assert tail(keys, known, server, str(other), 5, within=str(tmp_path / "job-")) is None
    assert tail(keys, known, server, str(other), 5, within=str(tmp_path / "job-b")) == Tail("job b\n", 1, False)


def test_a_path_cannot_inject_commands(tmp_path: Path, keys: dict, server: SshServer) -> None:
    known = known_hosts(tmp_path / "known_hosts", ALIAS, keys["host"])
    marker = tmp_path / "injected"
    assert tail(keys, known, server, f"/nonexistent; touch {marker}", 5) is None
    assert not marker.exists()


def test_a_different_host_key_is_refused(tmp_path: Path, keys: dict, server: SshServer) -> None:
    known = known_hosts(tmp_path / "known_hosts", ALIAS, paramiko.ECDSAKey.generate())
    before = known.read_text()
    with pytest.raises(UpstreamError, match="does not match the one pinned") as err:
        tail(keys, known, server, "/etc/hostname", 5)
    assert err.value.upstream == "ssh"
    assert known.read_text() == before
    assert not server.interface.commands


def test_an_unknown_alias_is_refused_before_connecting(tmp_path: Path, keys: dict, server: SshServer) -> None:
    known = known_hosts(tmp_path / "known_hosts", "runpod-otherpod", keys["host"])
    with pytest.raises(UpstreamError, match=f"no host key for {ALIAS}"):
        tail(keys, known, server, "/etc/hostname", 5)
    assert not server.transports


def test_a_key_pinned_only_for_the_address_is_not_enough(tmp_path: Path, keys: dict, server: SshServer) -> None:
    # known_hosts entries count under the pod's alias only, never under host:port.
    known = known_hosts(tmp_path / "known_hosts", f"[127.0.0.1]:{server.port}", keys["host"])
    with pytest.raises(UpstreamError, match=f"no host key for {ALIAS}"):
        tail(keys, known, server, "/etc/hostname", 5)


def test_a_refused_client_key_is_an_upstream_error(tmp_path: Path, keys: dict, server: SshServer) -> None:
    known = known_hosts(tmp_path / "known_hosts", ALIAS, keys["host"])
    paramiko.ECDSAKey.generate().write_private_key_file(str(keys["client_file"]))
    with pytest.raises(UpstreamError, match="refused the SSH key"):
        tail(keys, known, server, "/etc/hostname", 5)


def test_nobody_listening_is_an_upstream_error(tmp_path: Path, keys: dict) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    known = known_hosts(tmp_path / "known_hosts", ALIAS, keys["host"])
    reader = SshTail("root", keys["client_file"], known, timeout=2)
    with pytest.raises(UpstreamError, match="cannot connect"):
        asyncio.run(reader.tail("127.0.0.1", port, ALIAS, "/etc/hostname", 5, "root", "/etc"))
