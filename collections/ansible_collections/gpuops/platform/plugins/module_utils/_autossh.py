# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""autossh tunnels for gpuops.platform.autossh_tunnel (private to the collection).

A tunnel is one ``autossh -M 0`` (ssh's ServerAlive messages detect a dead link, autossh restarts ssh), in its own
background mode (``-f``) or under an external supervisor, with ``AUTOSSH_PIDFILE`` either way. Its files are
``<state_dir>/<name>.json`` (its configuration), ``.pid``, ``.lock`` and ``.log`` (autossh's and ssh's, ``ssh -E``).
Its processes carry ``GPUOPS_TUNNEL=<state_dir>/<name>`` in their environment: a pid is the tunnel's only when it does.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import json
import os
import re
import shlex
import signal
import socket
import time
import typing as t

from dataclasses import dataclass


TAG_VARIABLE = "GPUOPS_TUNNEL"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_HOST = re.compile(r"^[A-Za-z0-9_.:%-]+$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
_SSH_CHILD = re.compile(r"autossh\[(\d+)\]: ssh child pid is (\d+)")
_WILDCARD = ("bind_address %r would listen on every interface, which exposes the pod's services to the network; "
             "use a loopback address such as 127.0.0.1 or ::1, or one specific address of this host")
# (option, listening port, target host, target port) of the forwards (ssh -L) and of the reverse forwards (ssh -R)
_KEYS = {False: ("forwards", "local_port", "remote_host", "remote_port"),
         True: ("reverse_forwards", "remote_port", "local_host", "local_port")}
LOG_TAIL = 4000
LOG_WINDOW = 64 * 1024

# ssh's messages that no retry can fix: autossh would loop on them forever.
HOST_KEY_PATTERNS = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed",
                     "has changed and you have requested strict checking")
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
        self.message, self.log_tail = message, log_tail


# Validation (the argument spec has checked types and keys).
def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValueError("name %r is not a valid tunnel name: use 1 to 100 of a-z, 0-9, '_', '.', '-', starting with "
                         "a letter or digit" % (name,))
    return name


def _unbracket(text: str) -> str:
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


def check_bind_address(address: t.Any) -> str:
    """The listener's address, normalised; refuses wildcards and anything that is not an IP address."""
    text = _unbracket("" if address is None else str(address).strip())
    if text in ("", "*"):
        raise ValueError(_WILDCARD % (address,))
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError("bind_address %r is not an IP address; use a loopback address such as 127.0.0.1 or ::1, or "
                         "one specific address of this host" % (address,)) from None
    if ip.is_unspecified:
        raise ValueError(_WILDCARD % (text,))
    return str(ip)


def check_port(port: int, what: str) -> int:
    if not 1 <= port <= 65535:
        raise ValueError("%s must be between 1 and 65535, got %r" % (what, port))
    return port


def check_host(host: str, what: str = "host") -> str:
    """A host name or IP address (IPv6 with or without brackets; returned without them)."""
    text = _unbracket((host or "").strip())
    valid = bool(_HOST.match(text)) and not text.startswith("-")
    if valid and ":" in text:
        try:
            ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            valid = False
    if not valid:
        raise ValueError("%s %r is not a host name or IP address" % (what, host))
    return text


def check_user(user: str) -> str:
    if not _USER.match(user or ""):
        raise ValueError("user %r is not a valid user name" % (user,))
    return user


def parse_forwards(items: t.Sequence[t.Mapping[str, t.Any]] | None, reverse: bool = False) -> tuple[dict, ...]:
    """Forwards (ssh -L) or reverse forwards (ssh -R), checked and with their defaults; one listener per port."""
    what, listen, host, target = _KEYS[reverse]
    result: list[dict] = []
    seen: dict[tuple[str, int], int] = {}
    for i, item in enumerate(items or ()):
        where = "%s[%d]" % (what, i)
        try:
            bind = check_bind_address(item.get("bind_address", "127.0.0.1"))
        except ValueError as err:
            raise ValueError("%s: %s%s" % (where, err, " (on the pod)" if reverse else "")) from None
        fwd = {"bind_address": bind, listen: check_port(item[listen], "%s.%s" % (where, listen)),
               host: check_host(item.get(host) or "127.0.0.1", "%s.%s" % (where, host)),
               target: check_port(item[target], "%s.%s" % (where, target))}
        if (bind, fwd[listen]) in seen:
            raise ValueError("%s[%d] and %s both listen on %s:%d%s" % (
                what, seen[(bind, fwd[listen])], where, _bracket(bind), fwd[listen], " on the pod" if reverse else ""))
        seen[(bind, fwd[listen])] = i
        result.append(fwd)
    return tuple(result)


def _bracket(address: str) -> str:
    return "[%s]" % address if ":" in address else address


def forward_spec(fwd: t.Mapping[str, t.Any]) -> str:
    """The argument of ssh's -L (a forward) or -R (a reverse forward)."""
    listen, host, target = _KEYS["local_host" in fwd][1:]
    return "%s:%d:%s:%d" % (_bracket(fwd["bind_address"]), fwd[listen], _bracket(fwd[host]), fwd[target])


@dataclass(frozen=True)
class TunnelSpec:
    """Everything that decides how autossh runs."""

    name: str
    host: str
    forwards: tuple[dict, ...]
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
    reverse_forwards: tuple[dict, ...] = ()
    strict_host_key_checking: bool = False  # True: the key must be pinned already; False: pinned on first contact
    log_path: str | None = None  # ssh -E

    def command(self, background: bool = False) -> list[str]:
        """autossh's command line (``background``: its own -f); no secret is ever part of it."""
        args = [self.autossh_path] + (["-f"] if background else []) + ["-M", "0", "-N", "-T", "-F", "none"]
        options = ["BatchMode=yes", "StrictHostKeyChecking=%s" % ("yes" if self.strict_host_key_checking else "accept-new"),
                   "UserKnownHostsFile=%s" % self.known_hosts, "UpdateHostKeys=no"]
        options += ["HostKeyAlias=%s" % self.host_key_alias] if self.host_key_alias else []
        options += ["IdentitiesOnly=yes", "IdentityAgent=none"] if self.private_key else []
        options += ["ServerAliveInterval=%d" % self.server_alive_interval,
                    "ServerAliveCountMax=%d" % self.server_alive_count_max,
                    "ExitOnForwardFailure=%s" % ("yes" if self.exit_on_forward_failure else "no"), "ConnectTimeout=15",
                    "ControlMaster=no", "ControlPath=none", "GatewayPorts=no"]
        # VERBOSE: ssh logs each login ("Authenticated to ..."), which tells that it is connected.
        options += ["LogLevel=VERBOSE"] if self.log_path else []
        args += [arg for option in options for arg in ("-o", option)]
        args += ["-i", self.private_key] if self.private_key else []
        args += ["-E", self.log_path] if self.log_path else []
        args += ["-p", str(self.port), "-l", self.user]
        for flag, forwards in (("-L", self.forwards), ("-R", self.reverse_forwards)):
            for fwd in forwards:
                args += [flag, forward_spec(fwd)]
        return args + [self.host]

    def environment(self, tag: str, log_path: str, pid_path: str | None = None) -> dict[str, str]:
        """autossh's whole environment: nothing of the caller's (which may hold API keys) leaks into it."""
        env = {"AUTOSSH_PATH": self.ssh_path, "AUTOSSH_LOGFILE": log_path, TAG_VARIABLE: tag, "LANG": "C",
               # Restart ssh even when its very first connection fails (the pod may still be booting).
               "AUTOSSH_GATETIME": "0",
               "AUTOSSH_POLL": str(self.retry_max_interval),
               "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"}
        return dict(env, AUTOSSH_PIDFILE=pid_path) if pid_path else env

    def describe(self) -> str:
        return "%s@%s:%d%s" % (self.user, self.host, self.port, " (%s)" % self.host_key_alias if self.host_key_alias else "")


class TunnelFiles:
    """The state files of one tunnel."""

    def __init__(self, state_dir: str, name: str) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.tag = os.path.join(self.state_dir, name)
        self.config, self.pid, self.lock, self.log = (self.tag + ext for ext in (".json", ".pid", ".lock", ".log"))

    def ensure_dir(self) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)

    def read_config(self) -> dict | None:
        try:
            with open(self.config, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            data = "%s: %s" % (self.config, err)
        # An unreadable record counts as "different": the tunnel is restarted and the file rewritten.
        return data if isinstance(data, dict) else {"unreadable": "%s" % (data,)}

    def write_config(self, config: dict) -> None:
        tmp = "%s.tmp.%d" % (self.config, os.getpid())
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
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
        return os.path.getsize(self.log) if os.path.exists(self.log) else 0

    def read_log(self, offset: int = 0, limit: int = LOG_TAIL) -> str:
        """The log from ``offset`` (from the start, if it shrank), at most its last ``limit`` bytes."""
        try:
            with open(self.log, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(offset if offset <= size else 0, size - limit))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def rotate_log(self) -> None:
        """Keep one previous log of at most about 1 MiB: a long outage logs a few lines per attempt."""
        if self.log_size() > 1024 * 1024:
            os.replace(self.log, self.log + ".1")

    def remove(self) -> None:
        for path in (self.config, self.pid, self.log, self.log + ".1"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


class Lock:
    """An exclusive ``flock`` on the tunnel's lock file, so that two runs never race on one tunnel."""

    def __init__(self, path: str, timeout: float = 60, clock: t.Callable[[], float] = time.monotonic,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        self.path, self.timeout, self.clock, self.sleep = path, timeout, clock, sleep
        self.remove_on_exit = False  # set by a run that removes the tunnel
        self.fd = -1

    def __enter__(self) -> "Lock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = self.clock() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if self.clock() >= deadline:
                    os.close(self.fd)
                    raise TunnelError("another run holds the lock %s for more than %d s; wait for it to finish"
                                      % (self.path, self.timeout)) from None
            self.sleep(0.2)

    def __exit__(self, *exc: t.Any) -> None:
        if self.remove_on_exit and os.path.exists(self.path):
            os.unlink(self.path)
        os.close(self.fd)


def render_config(config: dict | None, compact_command: bool = False) -> str:
    """The configuration as text, for the config file and (with the command on one line) for diff mode."""
    if not config:
        return ""
    if compact_command and isinstance(config.get("command"), list):
        config = dict(config, command=" ".join(shlex.quote(str(arg)) for arg in config["command"]))
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _proc(pid: int, name: str) -> bytes | None:
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as handle:
            return handle.read()
    except OSError:
        return None


def is_tunnel(pid: int | None, tag: str | None = None) -> bool:
    """``pid`` runs (no zombie) and, with ``tag``, carries it: not a pid reused by another program. Pid only without /proc."""
    if not pid or pid <= 1:
        return False
    if not os.path.isdir("/proc/self"):
        try:
            os.kill(pid, 0)
        except OSError as err:
            return err.errno == errno.EPERM  # it runs, as another user
        return True
    stat = _proc(pid, "stat")
    if not stat or stat[stat.rfind(b")") + 2:][:1] in (b"Z", b"X"):
        return False
    return not tag or ("%s=%s" % (TAG_VARIABLE, tag)).encode() in (_proc(pid, "environ") or b"").split(b"\0")


def wait_until(done: t.Callable[[], t.Any], timeout: float, clock: t.Callable[[], float] = time.monotonic,
               sleep: t.Callable[[float], None] = time.sleep, interval: float = 0.05) -> bool:
    """As ansible.builtin.wait_for: poll ``done()`` until it is true (True) or ``timeout`` seconds passed (False)."""
    deadline = clock() + timeout
    while not done():
        if clock() >= deadline:
            return False
        sleep(interval)
    return True


def terminate(pids: list[int], clock: t.Callable[[], float], sleep: t.Callable[[float], None]) -> bool:
    """SIGTERM, then SIGKILL what still runs 5 s later; True when something ran."""
    pids = [pid for pid in dict.fromkeys(pids) if is_tunnel(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        wait_until(lambda: not any(map(is_tunnel, pids)), 5, clock, sleep)
    return bool(pids)


def port_in_use(address: str, port: int) -> bool:
    """Whether something listens on address:port (bound as ssh binds: SO_REUSEADDR, so TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def connected(log: str) -> bool:
    """Whether the log's last ssh logged in and has not exited since (autossh's lines and ssh's own)."""
    login = log.rfind("Authenticated to ")
    return login > log.rfind("starting ssh (count ") and login > log.rfind("ssh exited")


def diagnose(log: str) -> tuple[str, str] | None:
    """(kind, explanation) for a log excerpt that shows a failure no retry can fix; None otherwise."""
    for pattern in HOST_KEY_PATTERNS:
        if pattern in log:
            return "host_key", pattern
    return next((("fatal", explanation) for pattern, explanation in FATAL_PATTERNS if pattern in log), None)


def host_key_message(spec: TunnelSpec, outcome: str = "The tunnel was stopped") -> str:
    alias = spec.host_key_alias or ("[%s]:%d" % (spec.host, spec.port) if spec.port != 22 else spec.host)
    return (
        "host key verification failed: %s:%d presented a host key that differs from the one pinned for %s in %s. "
        "The pod was replaced, or someone is intercepting the connection. %s. If the pod was re-created on purpose, "
        "remove the old key with `ssh-keygen -R %s -f %s` and run again; otherwise investigate before trusting the host"
        % (spec.host, spec.port, alias, spec.known_hosts, outcome, alias, spec.known_hosts))


class DaemonSupervisor:
    """autossh in its own background mode (-f) with AUTOSSH_PIDFILE; restarted by the next run if it dies.

    status() and processes() also find an autossh that an external supervisor runs with the same environment (in the
    foreground, it writes the same pidfile)."""

    def __init__(self, files: TunnelFiles, run: t.Callable[[list[str]], tuple[int, str, str]],
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep) -> None:
        # run(argv) -> (rc, stdout, stderr), from "/" with umask 077: the module's run_command.
        self.files, self.run, self.clock, self.sleep = files, run, clock, sleep

    def environment(self, spec: TunnelSpec) -> dict[str, str]:
        return spec.environment(self.files.tag, self.files.log, self.files.pid)

    def status(self) -> tuple[bool, int | None]:
        """(running, autossh's pid)."""
        pid = self.files.read_pid()
        return (True, pid) if is_tunnel(pid, self.files.tag) else (False, None)

    def processes(self) -> list[int]:
        """autossh and its last ssh (from autossh's log), those that run: an ssh outlives an autossh killed by SIGKILL."""
        pid = self.files.read_pid()
        ssh = [int(child) for parent, child in _SSH_CHILD.findall(self.files.read_log(0, LOG_WINDOW)) if int(parent) == pid]
        return [p for p in ([pid] + ssh[-1:] if pid else []) if is_tunnel(p, self.files.tag)]

    def start(self, spec: TunnelSpec) -> int:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.files.pid)
        # A clean environment (env -i): only what the tunnel needs, and its tag.
        env = ["%s=%s" % item for item in sorted(self.environment(spec).items())]
        rc, out, err = self.run(["env", "-i"] + env + spec.command(background=True))
        output = (out or "") + (err or "")
        if rc != 0:
            raise TunnelError("autossh exited right after it started (exit status %d): %s"
                              % (rc, output.strip()), output + self.files.read_log())
        if not wait_until(self.files.read_pid, 5, self.clock, self.sleep):
            raise TunnelError("autossh did not write its pidfile %s within 5 s" % self.files.pid,
                              output + self.files.read_log())
        return self.files.read_pid() or 0

    def stop(self) -> bool:
        """Stop autossh (which stops its ssh), and an ssh left behind; True when something ran."""
        stopped = terminate(self.processes(), self.clock, self.sleep)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.files.pid)
        return stopped
