# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run and supervise autossh tunnels for gpuops.platform.

One tunnel is one autossh process (``-M 0``: ssh's ServerAlive messages
detect a dead link, autossh restarts ssh) whose ssh child holds the local
listeners. Its files live in a state directory, named after the tunnel:

``<name>.json``
    the configuration the tunnel was started with (compared on every run),
``<name>.pid``
    autossh's pid (``AUTOSSH_PIDFILE``), daemon supervisor only,
``<name>.lock``
    held while a module run inspects or changes the tunnel,
``<name>.log``
    autossh's log (``AUTOSSH_LOGFILE``) and ssh's standard error.

Two supervisors keep autossh running:

``DaemonSupervisor``
    double fork + ``setsid``, a clean environment, output to the log; the
    process outlives the Ansible run. autossh itself restarts ssh.
``SystemdSupervisor``
    a ``gpuops-tunnel-<name>.service`` unit (system or user manager) with
    ``Restart=always``, for hosts where systemd is PID 1.

Every process of a tunnel (autossh and its ssh children) carries the
environment variable ``GPUOPS_TUNNEL=<state_dir>/<name>``, so that leftovers,
for example an ssh whose autossh was killed, can be found in ``/proc`` and
stopped. Private to the collection: the interface may change without notice.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import re
import shlex
import signal
import socket
import sys
import time
import typing as t

from dataclasses import dataclass


TAG_VARIABLE = "GPUOPS_TUNNEL"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_HOST_PATTERN = re.compile(r"^[A-Za-z0-9_.:%\[\]-]+$")
_USER_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
_SAFE_UNIT_ARG = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_LOG_ROTATE_BYTES = 1024 * 1024
_LOG_TAIL_BYTES = 4000

# ssh's messages that no retry can fix: autossh would loop on them forever.
HOST_KEY_PATTERNS = (
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "Host key verification failed",
    "has changed and you have requested strict checking",
)
FATAL_PATTERNS = (
    ("Permission denied (", "the pod refused the SSH key (check private_key and the pod's authorized_keys)"),
    ("Could not request local forwarding", "ssh could not open a local listener (is the port in use?)"),
    ("cannot listen to port", "ssh could not open a local listener (is the port in use?)"),
    ("Bad configuration option", "ssh rejected its options"),
    ("command-line line", "ssh rejected its options"),
    ("Bad local forwarding specification", "ssh rejected a forward"),
    ("Bad remote forwarding specification", "ssh rejected a reverse forward"),
    ("no such identity", "the private key file does not exist"),
)


class TunnelError(Exception):
    """A tunnel could not be inspected, started or stopped; ``message`` says what to do."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail


class HostKeyChanged(TunnelError):
    """The host presented a key that differs from the one pinned in known_hosts."""


# -- validation -----------------------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise ValueError(
            "name %r is not a valid tunnel name: use 1 to 100 of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
            % (name,))
    return name


def check_bind_address(address: t.Any) -> str:
    """The listener's address, normalised; refuses wildcards and anything that is not an IP address."""
    text = "" if address is None else str(address).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text in ("", "*"):
        raise ValueError(
            "bind_address %r would listen on every interface, which exposes the pod's services to the network; "
            "use a loopback address such as 127.0.0.1 or ::1, or one specific address of this host" % (address,))
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            "bind_address %r is not an IP address; use a loopback address such as 127.0.0.1 or ::1, or one specific "
            "address of this host" % (address,)) from None
    if ip.is_unspecified:
        raise ValueError(
            "bind_address %s would listen on every interface, which exposes the pod's services to the network; "
            "use a loopback address such as 127.0.0.1 or ::1, or one specific address of this host" % text)
    return str(ip)


def _check_port(value: t.Any, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError("%s %r is not a port number" % (what, value)) from None
    if isinstance(value, bool) or isinstance(value, float) and value != port or not 1 <= port <= 65535:
        raise ValueError("%s must be between 1 and 65535, got %r" % (what, value))
    return port


def check_host(host: str, what: str = "host") -> str:
    """A host name or IP address (IPv6 with or without brackets; returned without them)."""
    text = (host or "").strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text or text.startswith("-") or not _HOST_PATTERN.match(text) or "[" in text or "]" in text:
        raise ValueError("%s %r is not a host name or IP address" % (what, host))
    if ":" in text:
        try:
            ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise ValueError("%s %r is not a host name or IP address" % (what, host)) from None
    return text


def check_user(user: str) -> str:
    if not _USER_PATTERN.match(user or ""):
        raise ValueError("user %r is not a valid user name" % (user,))
    return user


def _bracket(address: str) -> str:
    return "[%s]" % address if ":" in address else address


@dataclass(frozen=True)
class Forward:
    """One local forward: bind_address:local_port on this host to remote_host:remote_port seen from the pod."""

    local_port: int
    remote_port: int
    remote_host: str = "127.0.0.1"
    bind_address: str = "127.0.0.1"

    @classmethod
    def parse(cls, item: t.Mapping[str, t.Any], index: int) -> "Forward":
        what = "forwards[%d]" % index
        if not isinstance(item, t.Mapping):
            raise ValueError("%s must be a dictionary with local_port and remote_port, got %r" % (what, item))
        unknown = sorted(set(item) - {"local_port", "remote_port", "remote_host", "bind_address"})
        if unknown:
            raise ValueError("%s has unknown keys: %s (known: bind_address, local_port, remote_host, remote_port)"
                             % (what, ", ".join(unknown)))
        for key in ("local_port", "remote_port"):
            if item.get(key) is None:
                raise ValueError("%s needs %s" % (what, key))
        remote_host = item.get("remote_host")
        bind = item.get("bind_address")
        return cls(
            local_port=_check_port(item["local_port"], what + ".local_port"),
            remote_port=_check_port(item["remote_port"], what + ".remote_port"),
            remote_host=check_host("127.0.0.1" if remote_host is None else str(remote_host), what + ".remote_host"),
            bind_address=check_bind_address("127.0.0.1" if bind is None else bind),
        )

    def spec(self) -> str:
        """The argument of ssh's -L."""
        return "%s:%d:%s:%d" % (_bracket(self.bind_address), self.local_port, _bracket(self.remote_host), self.remote_port)

    def as_dict(self) -> dict:
        return dict(bind_address=self.bind_address, local_port=self.local_port,
                    remote_host=self.remote_host, remote_port=self.remote_port)


def parse_forwards(items: t.Sequence[t.Mapping[str, t.Any]] | None, allow_empty: bool = False) -> tuple[Forward, ...]:
    if not items:
        if allow_empty:
            return ()
        raise ValueError("forwards is empty: give at least one {local_port, remote_port}, or reverse_forwards")
    forwards = tuple(Forward.parse(item, i) for i, item in enumerate(items))
    seen: dict[tuple[str, int], int] = {}
    for i, fwd in enumerate(forwards):
        key = (fwd.bind_address, fwd.local_port)
        if key in seen:
            raise ValueError("forwards[%d] and forwards[%d] both listen on %s:%d"
                             % (seen[key], i, _bracket(fwd.bind_address), fwd.local_port))
        seen[key] = i
    return forwards


@dataclass(frozen=True)
class ReverseForward:
    """One reverse forward: bind_address:remote_port on the pod to local_host:local_port seen from this host."""

    remote_port: int
    local_port: int
    local_host: str = "127.0.0.1"
    bind_address: str = "127.0.0.1"

    @classmethod
    def parse(cls, item: t.Mapping[str, t.Any], index: int) -> "ReverseForward":
        what = "reverse_forwards[%d]" % index
        if not isinstance(item, t.Mapping):
            raise ValueError("%s must be a dictionary with remote_port and local_port, got %r" % (what, item))
        unknown = sorted(set(item) - {"remote_port", "local_port", "local_host", "bind_address"})
        if unknown:
            raise ValueError("%s has unknown keys: %s (known: bind_address, local_host, local_port, remote_port)"
                             % (what, ", ".join(unknown)))
        for key in ("remote_port", "local_port"):
            if item.get(key) is None:
                raise ValueError("%s needs %s" % (what, key))
        local_host = item.get("local_host")
        bind = item.get("bind_address")
        try:
            bind_address = check_bind_address("127.0.0.1" if bind is None else bind)
        except ValueError as err:
            raise ValueError("%s: %s (on the pod)" % (what, err)) from None
        return cls(
            remote_port=_check_port(item["remote_port"], what + ".remote_port"),
            local_port=_check_port(item["local_port"], what + ".local_port"),
            local_host=check_host("127.0.0.1" if local_host is None else str(local_host), what + ".local_host"),
            bind_address=bind_address,
        )

    def spec(self) -> str:
        """The argument of ssh's -R."""
        return "%s:%d:%s:%d" % (_bracket(self.bind_address), self.remote_port, _bracket(self.local_host), self.local_port)

    def as_dict(self) -> dict:
        return dict(bind_address=self.bind_address, remote_port=self.remote_port,
                    local_host=self.local_host, local_port=self.local_port)


def parse_reverse_forwards(items: t.Sequence[t.Mapping[str, t.Any]] | None) -> tuple[ReverseForward, ...]:
    forwards = tuple(ReverseForward.parse(item, i) for i, item in enumerate(items or ()))
    seen: dict[tuple[str, int], int] = {}
    for i, fwd in enumerate(forwards):
        key = (fwd.bind_address, fwd.remote_port)
        if key in seen:
            raise ValueError("reverse_forwards[%d] and reverse_forwards[%d] both listen on %s:%d on the pod"
                             % (seen[key], i, _bracket(fwd.bind_address), fwd.remote_port))
        seen[key] = i
    return forwards


# -- the tunnel's command ---------------------------------------------------------------


@dataclass(frozen=True)
class TunnelSpec:
    """Everything that decides how autossh runs; equal specs mean an unchanged tunnel."""

    name: str
    host: str
    forwards: tuple[Forward, ...]
    known_hosts: str
    autossh_path: str
    ssh_path: str
    port: int = 22
    user: str = "root"
    private_key: str | None = None
    host_key_alias: str | None = None
    server_alive_interval: int = 10
    server_alive_count_max: int = 3
    exit_on_forward_failure: bool = True
    retry_max_interval: int = 30
    connect_timeout: int = 15
    reverse_forwards: tuple[ReverseForward, ...] = ()
    # True: the host key must already be pinned in known_hosts (by another
    # channel); False: pinned on first contact.
    strict_host_key_checking: bool = False

    def ssh_args(self) -> list[str]:
        """ssh's arguments (after autossh's own ``-M 0``); no secret is ever part of them."""
        args = ["-N", "-T", "-F", "none",
                "-o", "BatchMode=yes",
                # Checked on every (re)connection, never ignored: already pinned
                # (strict), or pinned on first contact.
                "-o", "StrictHostKeyChecking=%s" % ("yes" if self.strict_host_key_checking else "accept-new"),
                "-o", "UserKnownHostsFile=%s" % self.known_hosts,
                "-o", "UpdateHostKeys=no"]
        if self.host_key_alias:
            args += ["-o", "HostKeyAlias=%s" % self.host_key_alias]
        if self.private_key:
            args += ["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", self.private_key]
        args += ["-o", "ServerAliveInterval=%d" % self.server_alive_interval,
                 "-o", "ServerAliveCountMax=%d" % self.server_alive_count_max,
                 "-o", "ExitOnForwardFailure=%s" % ("yes" if self.exit_on_forward_failure else "no"),
                 "-o", "ConnectTimeout=%d" % self.connect_timeout,
                 "-o", "ControlMaster=no", "-o", "ControlPath=none",
                 "-o", "GatewayPorts=no",
                 "-p", str(self.port), "-l", self.user]
        for fwd in self.forwards:
            args += ["-L", fwd.spec()]
        for rev in self.reverse_forwards:
            args += ["-R", rev.spec()]
        args.append(self.host)
        return args

    def command(self) -> list[str]:
        return [self.autossh_path, "-M", "0"] + self.ssh_args()

    def environment(self, tag: str, log_path: str, pid_path: str | None = None) -> dict[str, str]:
        """autossh's whole environment: nothing of the caller's (which may hold API keys) leaks into it."""
        env = {
            "AUTOSSH_PATH": self.ssh_path,
            # Restart ssh even when its very first connection fails (the pod may still be booting).
            "AUTOSSH_GATETIME": "0",
            # Longest pause between two attempts while the pod stays unreachable.
            "AUTOSSH_POLL": str(self.retry_max_interval),
            "AUTOSSH_LOGFILE": log_path,
            "LANG": "C",
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
            TAG_VARIABLE: tag,
        }
        if pid_path:
            env["AUTOSSH_PIDFILE"] = pid_path
        return env

    def describe(self) -> str:
        return "%s@%s:%d%s" % (self.user, self.host, self.port, " (%s)" % self.host_key_alias if self.host_key_alias else "")


def forwards_result(forwards: t.Iterable[Forward | ReverseForward]) -> list[dict]:
    return [fwd.as_dict() for fwd in forwards]


# -- files of a tunnel -------------------------------------------------------------------


class TunnelFiles:
    """The state files of one tunnel."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.name = name
        base = os.path.join(self.state_dir, name)
        self.config = base + ".json"
        self.pid = base + ".pid"
        self.lock = base + ".lock"
        self.log = base + ".log"

    @property
    def tag(self) -> str:
        return os.path.join(self.state_dir, self.name)

    def ensure_dir(self) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)

    def read_config(self) -> dict | None:
        try:
            with open(self.config, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            # An unreadable record counts as "different": the tunnel is restarted and the file rewritten.
            return {"unreadable": "%s: %s" % (self.config, err)}
        return data if isinstance(data, dict) else {"unreadable": "%s: not a JSON object" % self.config}

    def write_config(self, config: dict) -> None:
        tmp = "%s.tmp.%d" % (self.config, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(render_config(config))
        os.replace(tmp, self.config)

    def read_pid(self) -> int | None:
        try:
            with open(self.pid, encoding="ascii") as handle:
                text = handle.read().strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() and int(text) > 1 else None

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def read_log(self, offset: int = 0, limit: int = _LOG_TAIL_BYTES) -> str:
        """The log from ``offset``, at most its last ``limit`` bytes."""
        try:
            with open(self.log, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                start = max(offset, size - limit) if offset <= size else max(0, size - limit)
                handle.seek(start)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def rotate_log(self) -> None:
        """Keep one previous log of at most about 1 MiB: a long outage logs one line per attempt."""
        if self.log_size() > _LOG_ROTATE_BYTES:
            os.replace(self.log, self.log + ".1")

    def remove(self) -> list[str]:
        removed = []
        for path in (self.config, self.pid, self.log, self.log + ".1"):
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
        return removed


class Lock:
    """An exclusive ``flock`` on the tunnel's lock file, so that two runs never race on one tunnel."""

    def __init__(self, path: str, timeout: float = 60, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.path = path
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.fd: int | None = None
        # Set by a run that removes the tunnel, so that nothing of it is left.
        self.remove_on_exit = False

    def __enter__(self) -> "Lock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = self.clock() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if self.clock() >= deadline:
                os.close(self.fd)
                self.fd = None
                raise TunnelError("another run holds the lock %s for more than %d s; wait for it to finish"
                                  % (self.path, self.timeout))
            self.sleep(0.2)

    def __exit__(self, *exc: t.Any) -> None:
        if self.remove_on_exit:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def render_config(config: dict | None, compact_command: bool = False) -> str:
    """The configuration as text, for the config file and (with the command on one line) for diff mode."""
    if not config:
        return ""
    if compact_command and isinstance(config.get("command"), list):
        config = dict(config, command=" ".join(shlex.quote(str(arg)) for arg in config["command"]))
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


# -- processes -------------------------------------------------------------------------------


class ProcessTable:
    """What /proc says about processes and their listening sockets (Linux).

    Without /proc (other systems) only pids can be checked; leftovers cannot be
    found and listeners are probed by connecting to them.
    """

    def __init__(self, root: str = "/proc") -> None:
        self.root = root

    @property
    def available(self) -> bool:
        return os.path.isdir(os.path.join(self.root, "self"))

    def _read(self, pid: int, name: str) -> bytes | None:
        try:
            with open(os.path.join(self.root, str(pid), name), "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def _stat(self, pid: int) -> tuple[str, int] | None:
        """(state, ppid) of a process."""
        data = self._read(pid, "stat")
        if not data:
            return None
        text = data.decode("utf-8", "replace")
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) < 2:
            return None
        return fields[0], int(fields[1])

    def alive(self, pid: int | None) -> bool:
        """The process exists and is not a zombie."""
        if not pid or pid <= 1:
            return False
        if self.available:
            stat = self._stat(pid)
            return stat is not None and stat[0] not in ("Z", "X")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def cmdline(self, pid: int) -> list[str] | None:
        data = self._read(pid, "cmdline")
        if not data:
            return None
        return [part.decode("utf-8", "replace") for part in data.split(b"\0")[:-1]]

    def environ(self, pid: int) -> dict[str, str] | None:
        data = self._read(pid, "environ")
        if data is None:
            return None
        env = {}
        for item in data.split(b"\0"):
            key, sep, value = item.partition(b"=")
            if sep:
                env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        return env

    def pids(self) -> list[int]:
        try:
            return sorted(int(entry) for entry in os.listdir(self.root) if entry.isdigit())
        except OSError:
            return []

    def children(self, pid: int) -> list[int]:
        result = []
        for candidate in self.pids():
            stat = self._stat(candidate)
            if stat and stat[1] == pid and stat[0] not in ("Z", "X"):
                result.append(candidate)
        return result

    def tagged(self, tag: str) -> list[int]:
        """Live processes whose environment carries GPUOPS_TUNNEL=tag (autossh and its ssh children)."""
        if not self.available:
            return []
        needle = ("%s=%s" % (TAG_VARIABLE, tag)).encode()
        result = []
        for pid in self.pids():
            if pid == os.getpid():
                continue
            data = self._read(pid, "environ")
            if data and needle in data.split(b"\0") and self.alive(pid):
                result.append(pid)
        return result

    def is_tunnel(self, pid: int | None, tag: str) -> bool:
        """``pid`` is alive and is a process of this tunnel (not a reused pid)."""
        if not self.alive(pid):
            return False
        if not self.available:
            return True
        env = self.environ(pid)
        return env is not None and env.get(TAG_VARIABLE) == tag

    def _socket_inodes(self, pid: int) -> set[str]:
        inodes = set()
        fd_dir = os.path.join(self.root, str(pid), "fd")
        try:
            entries = os.listdir(fd_dir)
        except OSError:
            return inodes
        for entry in entries:
            try:
                target = os.readlink(os.path.join(fd_dir, entry))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        return inodes

    def listening(self, pids: t.Iterable[int]) -> set[tuple[str, int]]:
        """(address, port) of the TCP sockets in LISTEN state that these processes hold."""
        inodes: set[str] = set()
        for pid in pids:
            inodes |= self._socket_inodes(pid)
        if not inodes:
            return set()
        found = set()
        for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
            data = self._read_net(table)
            for line in data.splitlines()[1:]:
                fields = line.split()
                if len(fields) < 10 or fields[3] != "0A" or fields[9] not in inodes:
                    continue
                hex_addr, hex_port = fields[1].split(":")
                found.add((_proc_address(hex_addr, family), int(hex_port, 16)))
        return found

    def connected(self, pids: t.Iterable[int]) -> bool:
        """Whether these processes hold an established TCP connection (ssh's, to the pod)."""
        inodes: set[str] = set()
        for pid in pids:
            inodes |= self._socket_inodes(pid)
        if not inodes:
            return False
        for table in ("tcp", "tcp6"):
            for line in self._read_net(table).splitlines()[1:]:
                fields = line.split()
                if len(fields) >= 10 and fields[3] == "01" and fields[9] in inodes:
                    return True
        return False

    def _read_net(self, table: str) -> str:
        try:
            with open(os.path.join(self.root, "net", table), encoding="ascii") as handle:
                return handle.read()
        except OSError:
            return ""


def _proc_address(hex_addr: str, family: int) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in host byte order) as text."""
    raw = bytes.fromhex(hex_addr)
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    packed = b"".join(word[::-1] if sys.byteorder == "little" else word for word in words)
    return str(ipaddress.ip_address(socket.inet_ntop(family, packed)))


def port_in_use(address: str, port: int) -> bool:
    """Whether something listens on address:port (the way ssh binds: SO_REUSEADDR, so TIME_WAIT does not count)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except OSError as err:
        return err.errno == errno.EADDRINUSE
    finally:
        sock.close()
    return False


def port_answers(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


# -- starting a daemon -------------------------------------------------------------------------


def spawn_daemon(argv: list[str], env: dict[str, str], log_path: str, cwd: str = "/") -> int:
    """Start ``argv`` detached (double fork, new session, no terminal); returns its pid.

    Standard input is /dev/null, standard output and error append to
    ``log_path``, every other file descriptor is closed (Ansible waits for the
    end of the module's output, so the daemon must not hold it), the working
    directory is ``cwd`` (the module's temporary directory goes away). A pipe
    reports the pid, or why exec failed.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        status = 0
        try:
            os.close(read_end)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.chdir(cwd)
            os.umask(0o077)
            null = os.open(os.devnull, os.O_RDONLY)
            log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.closerange(3, write_end)
            os.closerange(write_end + 1, _max_fd())
            for sig in (signal.SIGPIPE, signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            os.write(write_end, b"pid %d\n" % os.getpid())
            os.execve(argv[0], argv, env)
        except BaseException as err:  # pylint: disable=broad-except
            status = 127
            try:
                os.write(write_end, ("error %s\n" % err).encode("utf-8", "replace"))
            except BaseException:  # pylint: disable=broad-except
                pass
        os._exit(status)
    os.close(write_end)
    try:
        os.waitpid(child, 0)
        chunks = []
        while True:
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
    pid = None
    error = None
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if line.startswith("pid "):
            pid = int(line[4:])
        elif line.startswith("error "):
            error = line[6:]
    if error or pid is None:
        raise TunnelError("cannot start %s: %s" % (argv[0], error or "the daemon did not report its pid"))
    return pid


def _max_fd() -> int:
    try:
        limit = os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        limit = 1024
    return min(limit if limit > 0 else 1024, 65536)


# -- what the log says ---------------------------------------------------------------------------


def diagnose(log: str) -> tuple[str, str] | None:
    """(kind, explanation) for a log excerpt that shows a failure no retry can fix; None otherwise."""
    for pattern in HOST_KEY_PATTERNS:
        if pattern in log:
            return "host_key", pattern
    for pattern, explanation in FATAL_PATTERNS:
        if pattern in log:
            return "fatal", explanation
    return None


def host_key_message(spec: TunnelSpec) -> str:
    alias = spec.host_key_alias or ("[%s]:%d" % (spec.host, spec.port) if spec.port != 22 else spec.host)
    return (
        "host key verification failed: %s:%d presented a host key that differs from the one pinned for %s in %s. "
        "The pod was replaced, or someone is intercepting the connection. The tunnel was stopped. If the pod was "
        "re-created on purpose, remove the old key with `ssh-keygen -R %s -f %s` and run again; otherwise investigate "
        "before trusting the host" % (spec.host, spec.port, alias, spec.known_hosts, alias, spec.known_hosts))


# -- supervisors -------------------------------------------------------------------------------


@dataclass
class Status:
    running: bool
    pid: int | None = None


class DaemonSupervisor:
    """autossh as a detached daemon with a pidfile; restarted by the next module run if it dies."""

    kind = "daemon"

    def __init__(self, files: TunnelFiles, procs: ProcessTable | None = None,
                 spawn: t.Callable[[list[str], dict[str, str], str], int] = spawn_daemon,
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.files = files
        self.procs = procs or ProcessTable()
        self.spawn = spawn
        self.clock = clock
        self.sleep = sleep

    def environment(self, spec: TunnelSpec) -> dict[str, str]:
        return spec.environment(self.files.tag, self.files.log, self.files.pid)

    def status(self) -> Status:
        pid = self.files.read_pid()
        if self.procs.is_tunnel(pid, self.files.tag):
            return Status(True, pid)
        return Status(False, None)

    def leftovers(self) -> list[int]:
        """Processes of this tunnel that no pidfile points to (e.g. ssh after autossh was killed)."""
        return self.procs.tagged(self.files.tag)

    def start(self, spec: TunnelSpec) -> int:
        self.files.ensure_dir()
        self.files.rotate_log()
        try:
            os.unlink(self.files.pid)
        except FileNotFoundError:
            pass
        pid = self.spawn(spec.command(), self.environment(spec), self.files.log)
        # autossh writes AUTOSSH_PIDFILE as it starts; wait for it so that the next run finds it.
        deadline = self.clock() + 5
        while self.files.read_pid() != pid:
            if not self.procs.alive(pid):
                raise TunnelError("autossh exited right after it started", self.files.read_log())
            if self.clock() >= deadline:
                raise TunnelError("autossh (pid %d) did not write its pidfile %s within 5 s" % (pid, self.files.pid),
                                  self.files.read_log())
            self.sleep(0.05)
        return pid

    def stop(self) -> bool:
        """Stop autossh, then any leftover ssh; True when something was running."""
        pid = self.files.read_pid()
        mains = [pid] if pid and self.procs.is_tunnel(pid, self.files.tag) else []
        others = [p for p in self.leftovers() if p not in mains]
        if not self.procs.available:
            others = []
        stopped = terminate(self.procs, mains + others, self.clock, self.sleep, first=mains)
        try:
            os.unlink(self.files.pid)
        except FileNotFoundError:
            pass
        return stopped

    def remove(self) -> None:
        """Nothing besides the state files, which the caller removes."""


def terminate(procs: ProcessTable, pids: list[int], clock: t.Callable[[], float], sleep: t.Callable[[float], None],
              first: list[int] | None = None, grace: float = 5.0) -> bool:
    """SIGTERM ``first`` (autossh stops its ssh), then the rest, then SIGKILL what is still alive."""
    pids = [p for p in dict.fromkeys(pids) if procs.alive(p)]
    if not pids:
        return False
    order = [p for p in (first or []) if p in pids]
    for group in (order, [p for p in pids if p not in order]):
        for pid in group:
            _signal(pid, signal.SIGTERM)
        deadline = clock() + grace
        while any(procs.alive(p) for p in group) and clock() < deadline:
            sleep(0.05)
    for pid in pids:
        if procs.alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = clock() + grace
    while any(procs.alive(p) for p in pids) and clock() < deadline:
        sleep(0.05)
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# -- systemd --------------------------------------------------------------------------------------


def systemd_booted(root: str = "/") -> bool:
    """systemd is PID 1 and running (the test of sd_booted(3), plus PID 1's name where /proc shows it)."""
    if not os.path.isdir(os.path.join(root, "run/systemd/system")):
        return False
    try:
        with open(os.path.join(root, "proc/1/comm"), encoding="utf-8") as handle:
            return handle.read().strip() == "systemd"
    except OSError:
        return True


def systemd_quote(arg: str) -> str:
    """One ExecStart=/Environment= word: systemd's quoting, ``%`` and ``$`` escaped."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if _SAFE_UNIT_ARG.match(arg):
        return text
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def unit_name(name: str) -> str:
    return "gpuops-tunnel-%s.service" % name


def render_unit(spec: TunnelSpec, env: dict[str, str], log_path: str, scope: str) -> str:
    lines = [
        "# Managed by gpuops.platform.autossh_tunnel: local changes are overwritten.",
        "[Unit]",
        "Description=gpuops SSH tunnel %s to %s" % (spec.name, spec.describe().replace("%", "%%")),
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
    ]
    for key in sorted(env):
        lines.append("Environment=%s" % systemd_quote("%s=%s" % (key, env[key])))
    lines += [
        "ExecStart=%s" % " ".join(systemd_quote(arg) for arg in spec.command()),
        # autossh restarts ssh; systemd restarts autossh.
        "Restart=always",
        "RestartSec=5",
        "StandardOutput=append:%s" % log_path.replace("%", "%%"),
        "StandardError=append:%s" % log_path.replace("%", "%%"),
        "",
        "[Install]",
        "WantedBy=%s" % ("multi-user.target" if scope == "system" else "default.target"),
        "",
    ]
    return "\n".join(lines)


class SystemdSupervisor:
    """autossh as a systemd service (system manager as root, the user's manager otherwise)."""

    kind = "systemd"

    def __init__(self, files: TunnelFiles, run: t.Callable[..., tuple[int, str, str]], systemctl: str,
                 scope: str, unit_dir: str, procs: ProcessTable | None = None) -> None:
        self.files = files
        self.run = run
        self.systemctl = systemctl
        self.scope = scope
        self.unit_dir = unit_dir
        self.procs = procs or ProcessTable()

    @property
    def unit(self) -> str:
        return unit_name(self.files.name)

    @property
    def unit_path(self) -> str:
        return os.path.join(self.unit_dir, self.unit)

    def environment(self, spec: TunnelSpec) -> dict[str, str]:
        return spec.environment(self.files.tag, self.files.log)

    def unit_text(self, spec: TunnelSpec) -> str:
        return render_unit(spec, self.environment(spec), self.files.log, self.scope)

    def _ctl(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        cmd = [self.systemctl] + (["--user"] if self.scope == "user" else []) + list(args)
        rc, out, err = self.run(cmd)
        if check and rc != 0:
            raise TunnelError("%s failed (rc %d): %s" % (" ".join(cmd), rc, (err or out).strip()))
        return rc, out, err

    def read_unit(self) -> str | None:
        try:
            with open(self.unit_path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def status(self) -> Status:
        rc, out, _err = self._ctl("show", "--property=ActiveState", "--property=MainPID", self.unit, check=False)
        if rc != 0:
            return Status(False, None)
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        pid = int(props.get("MainPID", "0") or 0)
        running = props.get("ActiveState") in ("active", "activating", "reloading") and pid > 0
        return Status(running, pid if running else None)

    def leftovers(self) -> list[int]:
        return []

    def start(self, spec: TunnelSpec) -> int:
        self.files.ensure_dir()
        self.files.rotate_log()
        os.makedirs(self.unit_dir, mode=0o755, exist_ok=True)
        text = self.unit_text(spec)
        tmp = "%s.tmp.%d" % (self.unit_path, os.getpid())
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.unit_path)
        self._ctl("daemon-reload")
        self._ctl("enable", self.unit)
        self._ctl("restart", self.unit)
        status = self.status()
        if not status.running:
            raise TunnelError("%s did not start; see `systemctl%s status %s`"
                              % (self.unit, " --user" if self.scope == "user" else "", self.unit), self.files.read_log())
        return status.pid or 0

    def stop(self) -> bool:
        running = self.status().running
        if self.read_unit() is not None:
            self._ctl("stop", self.unit, check=False)
        return running

    def remove(self) -> None:
        if self.read_unit() is None:
            return
        self._ctl("disable", self.unit, check=False)
        os.unlink(self.unit_path)
        self._ctl("daemon-reload")
