"""Reading the tail of a file on a pod over SSH (paramiko), with the pod's pinned host key.

Host keys are looked up in the deployment's known_hosts under the alias
runpod-<pod id> (the HostKeyAlias that Ansible and the tunnels use). A pod
whose key is unknown or different is refused; nothing is ever added to
known_hosts.
"""

from __future__ import annotations

import shlex
import socket
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import paramiko

from ..errors import UpstreamError

#: The exit status of the remote command when the file does not exist.
_MISSING = 66
#: At most this many bytes of output are read (the tail of a file of very long lines).
MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Tail:
    text: str
    lines: int
    truncated: bool


class SshTail:
    def __init__(self, user: str, key_file: Path, known_hosts_file: Path, timeout: float) -> None:
        self.user = user
        self.key_file = key_file
        self.known_hosts_file = known_hosts_file
        self.timeout = timeout

    async def tail(self, host: str, port: int, alias: str, path: str, lines: int, as_user: str,
                   within: str) -> Tail | None:
        """The last `lines` lines of `path` (absolute, normalised) on host:port, read as `as_user` (never root),
        or None when the file does not exist, is not a regular file, that user cannot read it, or it is reached
        through a link (the file itself or any directory on its path, `within` included) or is not inside
        `within`."""
        return await anyio.to_thread.run_sync(self._tail, host, port, alias, path, lines, as_user, within)

    def _known_client(self, host: str, port: int, alias: str) -> paramiko.SSHClient:
        known = paramiko.HostKeys()
        try:
            known.load(str(self.known_hosts_file))
        except (OSError, paramiko.SSHException) as err:
            raise UpstreamError("ssh", f"cannot read known_hosts {self.known_hosts_file}: {err}") from None
        keys = known.lookup(alias)
        if not keys:
            raise UpstreamError("ssh", f"no host key for {alias} in {self.known_hosts_file}: refusing to connect to "
                                       f"{host}:{port} (run the provision playbook, which pins the pods' keys)")
        client = paramiko.SSHClient()
        # The pinned keys, under the name paramiko checks for this address; anything else is refused.
        server_name = host if port == 22 else f"[{host}]:{port}"
        for key_type in keys.keys():
            client.get_host_keys().add(server_name, key_type, keys[key_type])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        return client

    def _tail(self, host: str, port: int, alias: str, path: str, lines: int, as_user: str,
              within: str) -> Tail | None:
        client = self._known_client(host, port, alias)
        where = f"{alias} ({host}:{port})"
        try:
            pkey = paramiko.PKey.from_path(self.key_file)
        except (OSError, paramiko.SSHException, ValueError) as err:
            raise UpstreamError("ssh", f"cannot load the SSH key {self.key_file}: {err}") from None
        try:
            client.connect(host, port=port, username=self.user, pkey=pkey, timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout, channel_timeout=self.timeout,
                           look_for_keys=False, allow_agent=False)
            return self._run_tail(client, path, lines, as_user, within)
        except paramiko.BadHostKeyException:
            raise UpstreamError("ssh", f"the host key of {where} does not match the one pinned in "
                                       f"{self.known_hosts_file}: refusing to connect") from None
        except paramiko.AuthenticationException:
            raise UpstreamError("ssh", f"{where} refused the SSH key {self.key_file}") from None
        except paramiko.SSHException as err:
            raise UpstreamError("ssh", f"SSH to {where} failed: {err}") from None
        except (OSError, EOFError) as err:
            reason = "timed out" if isinstance(err, socket.timeout) else (str(err) or err.__class__.__name__)
            raise UpstreamError("ssh", f"cannot connect to {where} over SSH: {reason}") from None
        finally:
            client.close()

    def _run_tail(self, client: paramiko.SSHClient, path: str, lines: int, as_user: str,
                  within: str) -> Tail | None:
        quoted = shlex.quote(path)
        user = shlex.quote(as_user)
        # As the job's user (setpriv, util-linux): the job owns its directory, so root must never open what
        # it put there. Only a file inside the job's directory ($2) is read, and a link or anything but a
        # regular file counts as missing, and so does a file reached through a link on the way (the job's
        # directory itself, or one in it, replaced by a link): the file is opened once, and what was opened
        # must have $1 as its real path (the kernel's name for the open file, /proc/<pid>/fd/3, has every
        # link resolved), so nothing swapped in between the checks and the read is read either. `tail` reads
        # that open file. One line more than asked for says whether the file has more.
        inner = shlex.quote(
            f'case "$1" in "$2"/*) ;; *) exit {_MISSING} ;; esac; '
            f'[ -f "$1" ] && [ ! -L "$1" ] && [ -r "$1" ] || exit {_MISSING}; '
            f'command exec 3<"$1" || exit {_MISSING}; '
            f'[ "$(readlink /proc/$$/fd/3)" = "$1" ] && [ -f /proc/$$/fd/3 ] || exit {_MISSING}; '
            f'exec tail -n {lines + 1} <&3 3<&-')
        command = (f"group=$(id -g -- {user}) || exit {_MISSING}; "
                   f"exec setpriv --reuid={user} --regid=\"$group\" --init-groups --reset-env -- "
                   f"sh -c {inner} sh {quoted} {shlex.quote(within)}")
        transport = client.get_transport()
        if transport is None:
            raise paramiko.SSHException("no transport")
        channel = transport.open_session(timeout=self.timeout)
        channel.settimeout(self.timeout)
        channel.exec_command(command)
        chunks: list[bytes] = []
        size = 0
        cut = False
        while True:
            chunk = channel.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BYTES:
                cut = True
                break
        if cut:
            channel.close()
            data = b"".join(chunks)[-MAX_BYTES:]
            data = data.split(b"\n", 1)[1] if b"\n" in data else data
            status = 0
        else:
            status = channel.recv_exit_status()
            data = b"".join(chunks)
        if status == _MISSING:
            return None
        if status != 0:
            error = channel.recv_stderr(4096).decode("utf-8", "replace").strip()
            raise paramiko.SSHException(f"tail exited {status}: {error or 'no message'}")
        text = data.decode("utf-8", "replace")
        rows = text.splitlines(keepends=True)
        truncated = cut or len(rows) > lines
        rows = rows[-lines:]
        return Tail(text="".join(rows), lines=len(rows), truncated=truncated)
