# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of gpuops.platform.autossh_tunnel.

The daemon path runs for real (double fork, pidfile, /proc) with a fake
autossh: a small Python program that honours AUTOSSH_PIDFILE, starts a fake
ssh child that listens on the -L ports (or prints what ssh prints when it
fails, as the file ``mode`` next to it says) and restarts it when it exits.
No network and no SSH server are involved. supervisor=external runs the same
fake autossh in the foreground, as a supervisor would (``Env.supervise``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpuops.platform.plugins.module_utils._autossh import TAG_VARIABLE, is_tunnel
from ansible_collections.gpuops.platform.plugins.modules import autossh_tunnel
from ansible_collections.gpuops.platform.tests.unit.plugins.modules.module_harness import ExitJson, FailJson, patch_module_exits


_FAKE_AUTOSSH = r'''#!{python}
"""Stand-in for autossh -f -M 0 ... ssh -E log: detaches as autossh -f does (daemon(3)), writes its pidfile, logs
what autossh 1.4g and OpenSSH 9.2 log (lines recorded from them), runs a fake ssh child that listens on the -L ports
(or fails as the file ``mode`` next to it says), and restarts it when it exits."""
import os, signal, socket, sys, time

here = os.path.dirname(os.path.abspath(__file__))


def mode():
    try:
        with open(os.path.join(here, "mode")) as handle:
            return handle.read().strip()
    except OSError:
        return "ok"


args = sys.argv[1:]
specs = [args[i + 1] for i, arg in enumerate(args) if arg == "-L"]
ssh_log = args[args.index("-E") + 1]
if mode() == "exit":
    sys.stderr.write("fake autossh: giving up at once\n")
    sys.exit(1)
if "-f" in args:
    if os.fork():
        os._exit(0)
    os.setsid()
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
pidfile = os.environ.get("AUTOSSH_PIDFILE")
if pidfile:
    with open(pidfile, "w") as handle:
        handle.write("%d\n" % os.getpid())
child = None


def log(message, path=os.environ["AUTOSSH_LOGFILE"], autossh=True):
    with open(path, "a") as handle:
        if autossh:
            message = "%s autossh[%d]: %s" % (time.strftime("%Y/%m/%d %H:%M:%S"), os.getpid(), message)
        handle.write(message + "\n")


def stop(*_):
    if child:
        try:
            os.kill(child, signal.SIGTERM)
        except OSError:
            pass
    if pidfile and os.path.exists(pidfile):
        os.unlink(pidfile)
    os._exit(0)


signal.signal(signal.SIGTERM, stop)


def fake_ssh():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    current = mode()
    if current == "hostkey":
        log("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nHost key verification failed.", ssh_log, False)
        os._exit(255)
    if current == "unreachable":
        log("ssh: connect to host 127.0.0.1 port 22022: Connection refused", ssh_log, False)
        time.sleep(0.3)
        os._exit(255)
    log('Authenticated to 127.0.0.1 ([127.0.0.1]:22022) using "publickey".', ssh_log, False)
    sockets = []
    for spec in specs:
        if spec.startswith("["):
            bind, rest = spec[1:].split("]:", 1)
        else:
            bind, rest = spec.split(":", 1)
        sock = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, int(rest.split(":", 1)[0])))
        sock.listen(5)
        sockets.append(sock)
    while True:
        time.sleep(1)


count = 0
while True:
    count += 1
    log("starting ssh (count %d)" % count)
    child = os.fork()
    if child == 0:
        try:
            fake_ssh()
        finally:
            os._exit(1)
    log("ssh child pid is %d" % child)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        log("ssh exited on signal %d, restarting ssh" % os.WTERMSIG(status))
    else:
        log("ssh exited with error status %d; restarting ssh" % os.WEXITSTATUS(status))
    time.sleep(0.1)
'''


@pytest.fixture(autouse=True)
def _module_exits(monkeypatch):
    patch_module_exits(monkeypatch)


class Procs:
    """What the tests look at in /proc (the module itself only looks at the pids it knows)."""

    available = os.path.isdir("/proc/self")

    @staticmethod
    def _read(pid: int, name: str) -> bytes:
        try:
            with open("/proc/%d/%s" % (pid, name), "rb") as handle:
                return handle.read()
        except OSError:
            return b""

    def pids(self) -> list[int]:
        return sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())

    def alive(self, pid) -> bool:
        return is_tunnel(pid)

    def is_tunnel(self, pid, tag) -> bool:
        return is_tunnel(pid, tag)

    def environ(self, pid: int) -> dict:
        return dict(item.decode().split("=", 1) for item in self._read(pid, "environ").split(b"\0") if b"=" in item)

    def children(self, pid: int) -> list[int]:
        def ppid(child):
            stat = self._read(child, "stat")
            return int(stat[stat.rfind(b")") + 2:].split()[1]) if stat else None
        return [child for child in self.pids() if ppid(child) == pid and self.alive(child)]

    def tagged(self, tag: str) -> list[int]:
        needle = ("%s=%s" % (TAG_VARIABLE, tag)).encode()
        return [pid for pid in self.pids() if needle in self._read(pid, "environ").split(b"\0") and self.alive(pid)]


PROCS = Procs()
needs_proc = pytest.mark.skipif(not PROCS.available, reason="needs Linux /proc")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, outside the kernel's ephemeral port range: a tunnel's port is freed and
    bound again on a restart, and in between another program's outgoing connection may take a port of that range
    as its own (then "already in use" is the truth, and the test fails for nothing)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            low, high = (int(n) for n in handle.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    candidates = [p for p in range(10000, 65536) if not low <= p <= high]
    for port in random.sample(candidates, 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 outside the ephemeral range %d-%d" % (low, high))


class Env:
    """A fake autossh, a known_hosts directory, a state directory; kills every process it started."""

    def __init__(self, tmp_path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.autossh = self.bin / "autossh"
        self.autossh.write_text(_FAKE_AUTOSSH.format(python=sys.executable))
        self.autossh.chmod(0o755)
        self.ssh = self.bin / "ssh"
        self.ssh.write_text("#!/bin/sh\nexit 255\n")
        self.ssh.chmod(0o755)
        (tmp_path / "ssh").mkdir()
        self.key = tmp_path / "ssh" / "id_ed25519"
        self.key.write_text("not a real key\n")
        self.known_hosts = tmp_path / "ssh" / "known_hosts"
        self.state_dir = tmp_path / "tunnels"
        self.ports = [free_port(), free_port()]
        self.supervised: list[subprocess.Popen] = []

    def mode(self, mode: str) -> None:
        (self.bin / "mode").write_text(mode)

    def args(self, **changes) -> dict:
        args = dict(
            name="t1",
            host="127.0.0.1",
            port=22022,
            private_key=str(self.key),
            known_hosts=str(self.known_hosts),
            host_key_alias="runpod-abc",
            state_dir=str(self.state_dir),
            supervisor="daemon",
            autossh_path=str(self.autossh),
            ssh_path=str(self.ssh),
            forwards=[{"local_port": self.ports[0], "remote_port": 9400}],
            wait_timeout=10,
        )
        args.update(changes)
        return args

    def tag(self, name: str = "t1") -> str:
        return os.path.join(str(self.state_dir), name)

    def processes(self, name: str = "t1") -> list[int]:
        return PROCS.tagged(self.tag(name))

    def supervise(self, result: dict) -> subprocess.Popen:
        """Run the module's command with its environment in the foreground, as a supervisor does; wait for the pidfile."""
        proc = subprocess.Popen(result["command"], env=result["environment"], cwd="/", stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.supervised.append(proc)
        assert wait_for((self.state_dir / "t1.pid").exists)
        return proc

    def cleanup(self) -> None:
        for proc in self.supervised:
            proc.kill()
            proc.wait()
        for name in ("t1", "t2"):
            for pid in self.processes(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def env(tmp_path):
    fake = Env(tmp_path)
    try:
        yield fake
    finally:
        fake.cleanup()


def run_module(args: dict, check: bool = False, diff: bool = False) -> tuple[bool, dict]:
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        try:
            autossh_tunnel.main()
        except ExitJson as done:
            return False, done.args[0]
        except FailJson as failed:
            return True, failed.args[0]
    raise AssertionError("the module neither exited nor failed")


def ok(args: dict, **kwargs) -> dict:
    failed, result = run_module(args, **kwargs)
    assert not failed, result["msg"]
    return result


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# -- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize("changes, message", [
    (dict(name="Bad Name"), "not a valid tunnel name"),
    (dict(forwards=[{"local_port": 1, "remote_port": 2, "bind_address": "0.0.0.0"}]), "every interface"),
    (dict(forwards=[{"local_port": 1, "remote_port": 2, "bind_address": "::"}]), "every interface"),
    (dict(forwards=[{"local_port": 1, "remote_port": 2, "bind_address": "*"}]), "every interface"),
    (dict(forwards=[{"local_port": 1, "remote_port": 2, "bind_address": "localhost"}]), "not an IP address"),
    (dict(forwards=[{"local_port": 70000, "remote_port": 2}]), "between 1 and 65535"),
    (dict(forwards=[]), "forwards is empty"),
    (dict(host="-oProxyCommand=touch /tmp/x"), "is not a host name"),
    (dict(user="-oProxyCommand=x"), "not a valid user name"),
    (dict(port=0), "port must be between 1 and 65535"),
    (dict(server_alive_interval=0), "server_alive_interval must be 1 or more"),
    (dict(wait_timeout=-1), "wait_timeout must be 0 or more"),
    (dict(known_hosts="/nonexistent/dir/known_hosts"), "the directory of known_hosts /nonexistent/dir/known_hosts does not exist"),
    (dict(private_key="/nonexistent/key"), "private_key /nonexistent/key does not exist"),
    (dict(autossh_path="/nonexistent/autossh"), "autossh_path /nonexistent/autossh is not an executable file"),
])
def test_bad_arguments_fail_before_anything_runs(env, changes, message):
    failed, result = run_module(env.args(**changes))
    assert failed, result
    assert message in result["msg"]
    assert not env.state_dir.exists() or not os.listdir(env.state_dir)


def test_present_needs_host_forwards_and_known_hosts(env):
    failed, result = run_module(dict(name="t1", state_dir=str(env.state_dir)))
    assert failed
    assert "host, known_hosts" in result["msg"]
    failed, result = run_module(env.args(forwards=None))
    assert failed
    assert "forwards is empty" in result["msg"] and "or reverse_forwards" in result["msg"]
    failed, result = run_module(env.args(forwards=[], reverse_forwards=[]))
    assert failed
    assert "forwards is empty" in result["msg"]


@pytest.mark.parametrize("reverse, message", [
    ([{"remote_port": 6817, "local_port": 6817, "bind_address": "0.0.0.0"}], "every interface"),
    ([{"remote_port": 6817, "local_port": 1}, {"remote_port": 6817, "local_port": 2}], "both listen on 127.0.0.1:6817"),
    ([{"remote_port": 70000, "local_port": 6817}], "between 1 and 65535"),
])
def test_bad_reverse_forwards_fail_before_anything_runs(env, reverse, message):
    failed, result = run_module(env.args(reverse_forwards=reverse))
    assert failed, result
    assert message in result["msg"]
    assert not env.state_dir.exists() or not os.listdir(env.state_dir)


def test_missing_autossh_is_named(env, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    failed, result = run_module(env.args(autossh_path=None))
    assert failed
    assert "autossh is not installed on this host" in result["msg"]
    assert "apt-get install autossh" in result["msg"]


# -- the daemon lifecycle ------------------------------------------------------------------------


@needs_proc
def test_rhythm_check_apply_again_change_remove(env):
    args = env.args()

    # check mode + diff: would start, changes nothing
    result = ok(args, check=True, diff=True)
    assert result["changed"] is True
    assert result["pid"] is None
    assert result["diff"]["before"] == ""
    assert '"local_port": %d' % env.ports[0] in result["diff"]["after"]
    assert result["diff"]["after"].startswith("# running\n")
    assert not env.state_dir.exists()
    assert env.processes() == []

    # apply
    result = ok(args, diff=True)
    assert result["changed"] is True
    assert result["state"] == "present"
    assert result["supervisor"] == "daemon"
    assert result["established"] is True
    pid = result["pid"]
    assert PROCS.is_tunnel(pid, env.tag())
    assert (env.state_dir / "t1.pid").read_text().strip() == str(pid)
    assert answers(env.ports[0])
    assert result["forwards"] == [dict(bind_address="127.0.0.1", local_port=env.ports[0], remote_host="127.0.0.1",
                                       remote_port=9400)]
    assert result["command"][0] == str(env.autossh)
    assert "-L" in result["command"] and "127.0.0.1:%d:127.0.0.1:9400" % env.ports[0] in result["command"]
    config = json.loads((env.state_dir / "t1.json").read_text())
    assert config["command"] == result["command"]
    assert (env.state_dir.stat().st_mode & 0o777) == 0o700

    # same again: no change, same process
    result = ok(args, diff=True)
    assert result["changed"] is False
    assert result["pid"] == pid
    assert result["diff"]["before"] == result["diff"]["after"]
    assert ok(args, check=True)["changed"] is False

    # change a forward: restarted with the new configuration
    changed = env.args(forwards=[{"local_port": env.ports[1], "remote_port": 9400}])
    result = ok(changed, check=True, diff=True)
    assert result["changed"] is True
    assert PROCS.is_tunnel(pid, env.tag())  # check mode left it alone
    assert str(env.ports[0]) in result["diff"]["before"] and str(env.ports[1]) in result["diff"]["after"]
    result = ok(changed, diff=True)
    assert result["changed"] is True
    assert "new configuration" in result["msg"]
    assert result["pid"] != pid
    assert wait_for(lambda: not PROCS.alive(pid))
    assert answers(env.ports[1]) and not answers(env.ports[0])
    assert ok(changed)["changed"] is False

    # remove, and remove again
    result = ok(dict(name="t1", state="absent", state_dir=str(env.state_dir)), check=True, diff=True)
    assert result["changed"] is True and result["diff"]["after"] == ""
    assert env.processes()
    result = ok(dict(name="t1", state="absent", state_dir=str(env.state_dir)))
    assert result["changed"] is True
    assert env.processes() == []
    assert not answers(env.ports[1])
    assert os.listdir(env.state_dir) == []
    result = ok(dict(name="t1", state="absent", state_dir=str(env.state_dir)), diff=True)
    assert result["changed"] is False
    assert os.listdir(env.state_dir) == []


@needs_proc
def test_reverse_forwards_alone_and_with_local_ones(env):
    reverse = [{"remote_port": 6817, "local_port": 16817}]
    args = env.args(forwards=None, reverse_forwards=reverse)
    result = ok(args, check=True, diff=True)
    assert result["changed"] is True and '"remote_port": 6817' in result["diff"]["after"]

    result = ok(args)
    assert result["changed"] is True and result["established"] is True
    assert result["forwards"] == []
    assert result["reverse_forwards"] == [dict(bind_address="127.0.0.1", remote_port=6817, local_host="127.0.0.1",
                                               local_port=16817)]
    command = result["command"]
    assert command[command.index("-R") + 1] == "127.0.0.1:6817:127.0.0.1:16817" and "-L" not in command
    config = json.loads((env.state_dir / "t1.json").read_text())
    assert config["reverse_forwards"] == result["reverse_forwards"]
    pid = result["pid"]
    assert ok(args)["changed"] is False

    # A local forward added to it: restarted, both kinds in one ssh.
    both = env.args(reverse_forwards=reverse)
    result = ok(both)
    assert result["changed"] is True and result["pid"] != pid and result["established"] is True
    assert "-L" in result["command"] and "-R" in result["command"]
    assert answers(env.ports[0])
    assert ok(both)["changed"] is False
    assert ok(dict(name="t1", state="absent", state_dir=str(env.state_dir)))["changed"] is True
    assert env.processes() == []


@needs_proc
def test_a_tunnel_without_reverse_forwards_records_what_it_always_did(env):
    """Tunnels started before reverse_forwards existed are not restarted by the upgrade."""
    result = ok(env.args())
    config = json.loads((env.state_dir / "t1.json").read_text())
    assert "reverse_forwards" not in config
    assert "-R" not in result["command"]
    assert ok(env.args(reverse_forwards=[]))["changed"] is False


@needs_proc
def test_dead_autossh_is_restarted_and_its_orphan_ssh_stopped(env):
    args = env.args()
    pid = ok(args)["pid"]
    children = PROCS.children(pid)
    assert len(children) == 1
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not PROCS.alive(pid))
    assert PROCS.alive(children[0])  # the orphaned ssh still holds the port

    result = ok(args, diff=True)
    assert result["changed"] is True
    assert "autossh was not running" in result["msg"]
    assert result["diff"]["before"].startswith("# running")  # its leftover ssh was running
    assert result["pid"] != pid
    assert not PROCS.alive(children[0])
    assert answers(env.ports[0])
    assert ok(args)["changed"] is False


@needs_proc
def test_ssh_child_that_dies_is_restarted_by_autossh(env):
    pid = ok(env.args())["pid"]
    child = PROCS.children(pid)[0]
    os.kill(child, signal.SIGKILL)
    assert wait_for(lambda: PROCS.children(pid) and PROCS.children(pid) != [child] and answers(env.ports[0]))
    assert ok(env.args())["changed"] is False


@needs_proc
def test_restarted_always_restarts(env):
    pid = ok(env.args())["pid"]
    result = ok(env.args(state="restarted"))
    assert result["changed"] is True
    assert result["pid"] != pid
    assert answers(env.ports[0])


@needs_proc
def test_the_daemon_gets_a_clean_environment(env, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_must_not_leak")
    pid = ok(env.args())["pid"]
    environ = PROCS.environ(pid)
    assert "RUNPOD_API_KEY" not in environ
    assert environ["AUTOSSH_GATETIME"] == "0"
    assert environ["AUTOSSH_PIDFILE"] == str(env.state_dir / "t1.pid")
    assert environ["AUTOSSH_LOGFILE"] == str(env.state_dir / "t1.log")
    assert os.readlink("/proc/%d/cwd" % pid) == "/"


@needs_proc
def test_changed_host_key_fails_clearly_and_stops_the_tunnel(env):
    env.mode("hostkey")
    failed, result = run_module(env.args())
    assert failed
    assert "host key verification failed" in result["msg"]
    assert "runpod-abc" in result["msg"] and str(env.known_hosts) in result["msg"]
    assert "ssh-keygen -R runpod-abc -f %s" % env.known_hosts in result["msg"]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result["log_tail"]
    assert result["pid"] is None
    assert wait_for(lambda: env.processes() == [])


@needs_proc
def test_unreachable_host_times_out_and_keeps_trying(env, monkeypatch):
    env.mode("unreachable")
    failed, result = run_module(env.args(wait_timeout=1))
    assert failed
    assert "is not up after 1 s (wait_timeout)" in result["msg"]
    assert "keeps trying" in result["msg"]
    assert "Connection refused" in result["msg"]
    assert PROCS.alive(result["pid"])
    # When the host comes back, the tunnel comes up by itself and the next run finds it running.
    env.mode("ok")
    assert wait_for(lambda: answers(env.ports[0]))
    result = ok(env.args())
    assert result["changed"] is False and result["established"] is True


@needs_proc
def test_wait_timeout_zero_does_not_wait(env):
    env.mode("unreachable")
    result = ok(env.args(wait_timeout=0))
    assert result["changed"] is True
    assert result["established"] is False


@needs_proc
def test_autossh_that_exits_at_once_is_reported(env):
    env.mode("exit")
    failed, result = run_module(env.args())
    assert failed
    assert "autossh exited right after it started" in result["msg"] or "exited" in result["msg"]
    assert "giving up at once" in result["log_tail"]


@needs_proc
def test_port_in_use_by_another_program_fails_clearly(env, monkeypatch):
    # It waits a moment for a stopped tunnel's ssh to let go of its listeners (a fake clock: no real wait).
    now = [1000.0]
    monkeypatch.setattr(autossh_tunnel, "CLOCK", lambda: now[0])
    monkeypatch.setattr(autossh_tunnel, "SLEEP", lambda seconds: now.__setitem__(0, now[0] + seconds))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", env.ports[0]))
        sock.listen()
        failed, result = run_module(env.args())
    assert failed
    assert "local port %d on 127.0.0.1 is already in use by another program" % env.ports[0] in result["msg"]
    assert env.processes() == []


def test_a_listener_that_goes_within_the_grace_is_no_conflict(env, monkeypatch):
    # The ssh of the tunnel being replaced may still hold a port a moment after it was told to stop.
    sock = socket.socket()
    sock.bind(("127.0.0.1", env.ports[0]))
    sock.listen()
    real_sleep = autossh_tunnel.SLEEP

    def sleep(seconds):
        if sock.fileno() != -1:
            sock.close()  # the old listener goes during the first wait
        real_sleep(seconds)

    monkeypatch.setattr(autossh_tunnel, "SLEEP", sleep)
    assert ok(env.args())["pid"]


@needs_proc
def test_two_tunnels_are_independent(env):
    one = ok(env.args())["pid"]
    two = ok(env.args(name="t2", forwards=[{"local_port": env.ports[1], "remote_port": 6820}]))["pid"]
    assert one != two
    assert ok(dict(name="t2", state="absent", state_dir=str(env.state_dir)))["changed"] is True
    assert PROCS.alive(one) and answers(env.ports[0])
    assert sorted(os.listdir(env.state_dir)) == ["t1.json", "t1.lock", "t1.log", "t1.pid"]


def test_absent_without_state_dir_is_no_change(env):
    result = ok(dict(name="t1", state="absent", state_dir=str(env.state_dir)))
    assert result["changed"] is False
    assert not env.state_dir.exists()


# -- supervisor=external -------------------------------------------------------------------------


@needs_proc
def test_external_records_and_returns_the_foreground_command(env):
    args = env.args(supervisor="external")
    result = ok(args, check=True, diff=True)
    assert result["changed"] is True and result["pid"] is None
    assert not env.state_dir.exists()

    result = ok(args, diff=True)
    assert result["changed"] is True and result["supervisor"] == "external"
    assert result["pid"] is None and result["established"] is False
    assert env.processes() == []  # the module started nothing
    assert result["diff"]["after"].startswith("# not running\n")
    assert result["command"][:3] == [str(env.autossh), "-M", "0"] and "-f" not in result["command"]
    assert result["environment"] == {
        "AUTOSSH_GATETIME": "0", "AUTOSSH_LOGFILE": str(env.state_dir / "t1.log"),
        "AUTOSSH_PATH": str(env.ssh), "AUTOSSH_PIDFILE": str(env.state_dir / "t1.pid"), "AUTOSSH_POLL": "30",
        "GPUOPS_TUNNEL": env.tag(), "LANG": "C", "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"}
    assert result["command"][result["command"].index("-E") + 1] == str(env.state_dir / "t1.log")
    config = json.loads((env.state_dir / "t1.json").read_text())
    assert config["supervisor"] == "external" and config["command"] == result["command"]
    result = ok(args)
    assert result["changed"] is False and "its supervisor does not run it" in result["msg"]

    # The supervisor runs it: found by its pidfile, waited for, left alone.
    proc = env.supervise(result)
    result = ok(args)
    assert result["changed"] is False and result["pid"] == proc.pid and result["established"] is True
    assert answers(env.ports[0])
    assert ok(args, check=True)["changed"] is False

    # A changed configuration is recorded for the supervisor, which restarts it; the module does not.
    changed = env.args(supervisor="external", forwards=[{"local_port": env.ports[1], "remote_port": 9400}])
    assert ok(changed, check=True)["changed"] is True
    result = ok(changed, diff=True)
    assert result["changed"] is True and "recorded for its supervisor" in result["msg"]
    assert str(env.ports[1]) in result["diff"]["after"] and PROCS.alive(proc.pid)
    assert json.loads((env.state_dir / "t1.json").read_text())["forwards"][0]["local_port"] == env.ports[1]
    proc.terminate()
    proc.wait()
    proc = env.supervise(result)
    result = ok(changed)
    assert result["changed"] is False and result["pid"] == proc.pid and answers(env.ports[1])


@needs_proc
def test_external_tunnel_is_never_stopped_here(env):
    args = env.args(supervisor="external")
    proc = env.supervise(ok(args))
    absent = dict(name="t1", state="absent", state_dir=str(env.state_dir))
    for other in (env.args(), absent):  # daemon mode, absent: refused while its supervisor runs it
        failed, result = run_module(other)
        assert failed and "runs under its external supervisor (autossh pid %d)" % proc.pid in result["msg"]
    assert ok(absent, check=True)["changed"] is True
    failed, result = run_module(env.args(supervisor="external", state="restarted"))
    assert failed and "restart a tunnel with its external supervisor" in result["msg"]
    assert PROCS.alive(proc.pid) and answers(env.ports[0])

    proc.terminate()
    proc.wait()
    assert ok(absent)["changed"] is True
    assert os.listdir(env.state_dir) == []


@needs_proc
def test_external_diagnoses_a_changed_host_key_and_leaves_the_process(env):
    args = env.args(supervisor="external")
    result = ok(args)
    env.mode("hostkey")
    proc = env.supervise(result)
    failed, result = run_module(args)
    assert failed
    assert "host key verification failed" in result["msg"] and "Its supervisor keeps restarting it" in result["msg"]
    assert "ssh-keygen -R runpod-abc -f %s" % env.known_hosts in result["msg"]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result["log_tail"]
    assert PROCS.alive(proc.pid)


@needs_proc
def test_from_daemon_to_external_stops_the_daemon(env):
    pid = ok(env.args())["pid"]
    result = ok(env.args(supervisor="external"))
    assert result["changed"] is True and "autossh started here was stopped" in result["msg"]
    assert wait_for(lambda: env.processes() == [])
    assert not PROCS.alive(pid) and not answers(env.ports[0])
    # ... and back: the daemon is started again.
    result = ok(env.args())
    assert result["changed"] is True and result["established"] is True and answers(env.ports[0])
