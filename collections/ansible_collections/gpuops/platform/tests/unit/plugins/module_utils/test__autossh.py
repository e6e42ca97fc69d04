# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of the autossh helpers: validation, the command, the log, the real autossh (-f and foreground)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from ansible_collections.gpuops.platform.plugins.module_utils import _autossh
from ansible_collections.gpuops.platform.plugins.module_utils._autossh import (
    DaemonSupervisor,
    Lock,
    TunnelError,
    TunnelFiles,
    TunnelSpec,
    check_bind_address,
    check_host,
    check_name,
    connected,
    diagnose,
    forward_spec,
    is_tunnel,
    parse_forwards,
    port_in_use,
    render_config,
)


def run(argv: list[str]) -> tuple[int, str, str]:
    """What the module passes DaemonSupervisor: AnsibleModule.run_command from "/" with umask 077."""
    old = os.umask(0o077)
    try:
        done = subprocess.run(argv, cwd="/", capture_output=True, text=True, timeout=60, check=False)
    finally:
        os.umask(old)
    return done.returncode, done.stdout, done.stderr


def make_spec(**changes) -> TunnelSpec:
    values = dict(
        name="gpuops-local-gpuops-0",
        host="127.0.0.1",
        port=22022,
        forwards=parse_forwards([{"local_port": 19400, "remote_port": 9400}, {"local_port": 19401, "remote_port": 6820}]),
        known_hosts="/state/local/ssh/known_hosts",
        host_key_alias="runpod-abc123",
        private_key="/state/local/ssh/id_ed25519",
        autossh_path="/usr/bin/autossh",
        ssh_path="/usr/bin/ssh",
    )
    values.update(changes)
    return TunnelSpec(**values)


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.53", "127.0.0.53"),
    ("::1", "::1"),
    ("[::1]", "::1"),
    ("10.1.2.3", "10.1.2.3"),
    ("fd00::5", "fd00::5"),
])
def test_bind_address_accepts_loopback_and_explicit_addresses(address, expected):
    assert check_bind_address(address) == expected


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "[::]", "*", "", None, "0:0:0:0:0:0:0:0"])
def test_bind_address_refuses_wildcards(address):
    with pytest.raises(ValueError, match="every interface"):
        check_bind_address(address)


@pytest.mark.parametrize("address", ["localhost", "example.org", "127.0.0.1:80"])
def test_bind_address_must_be_an_ip_address(address):
    with pytest.raises(ValueError, match="is not an IP address"):
        check_bind_address(address)


@pytest.mark.parametrize("name", ["gpuops-local-gpuops-0", "a", "x.y_z-1", "0" * 100])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", ".hidden", "..", "A", "a/b", "a b", "a" * 101, "é"])
def test_invalid_names(name):
    with pytest.raises(ValueError, match="not a valid tunnel name"):
        check_name(name)


@pytest.mark.parametrize("host", ["-oProxyCommand=x", "a b", "", "a;b", "[::1", "fe80::zz"])
def test_invalid_hosts(host):
    with pytest.raises(ValueError, match="not a host name or IP address"):
        check_host(host)


def test_host_brackets_are_dropped():
    assert check_host("[::1]") == "::1"
    assert check_host("pod.example.org") == "pod.example.org"


def test_forward_spec_brackets_ipv6():
    assert forward_spec(parse_forwards([{"local_port": 19400, "remote_port": 9400}])[0]) == "127.0.0.1:19400:127.0.0.1:9400"
    (fwd,) = parse_forwards([{"local_port": 19400, "remote_port": 9400, "remote_host": "::1", "bind_address": "[::1]"}])
    assert forward_spec(fwd) == "[::1]:19400:[::1]:9400"


def test_parse_forwards_applies_defaults_and_rejects_duplicates():
    assert parse_forwards([{"local_port": 19400, "remote_port": 9400}]) == (
        dict(bind_address="127.0.0.1", local_port=19400, remote_host="127.0.0.1", remote_port=9400),)
    with pytest.raises(ValueError, match=r"forwards\[0\] and forwards\[1\] both listen on 127.0.0.1:19400"):
        parse_forwards([{"local_port": 19400, "remote_port": 9400}, {"local_port": 19400, "remote_port": 6820}])
    with pytest.raises(ValueError, match=r"forwards\[0\].local_port must be between 1 and 65535"):
        parse_forwards([{"local_port": 0, "remote_port": 9400}])
    with pytest.raises(ValueError, match=r"forwards\[0\]: bind_address '0.0.0.0' would listen on every interface"):
        parse_forwards([{"local_port": 19400, "remote_port": 9400, "bind_address": "0.0.0.0"}])
    assert parse_forwards([]) == () and parse_forwards(None) == ()


def test_reverse_forwards_apply_defaults_and_refuse_wildcards_and_duplicates():
    forwards = parse_forwards([{"remote_port": 6817, "local_port": 16817}], reverse=True)
    assert forwards == (dict(bind_address="127.0.0.1", remote_port=6817, local_host="127.0.0.1", local_port=16817),)
    assert forward_spec(forwards[0]) == "127.0.0.1:6817:127.0.0.1:16817"
    (v6,) = parse_forwards([{"remote_port": 6817, "local_port": 6817, "local_host": "::1", "bind_address": "::1"}], True)
    assert forward_spec(v6) == "[::1]:6817:[::1]:6817"
    with pytest.raises(ValueError, match=r"reverse_forwards\[0\] and reverse_forwards\[1\] both listen on 127.0.0.1:6817 on the pod"):
        parse_forwards([{"remote_port": 6817, "local_port": 1}, {"remote_port": 6817, "local_port": 2}], reverse=True)
    with pytest.raises(ValueError, match=r"reverse_forwards\[0\]: .*every interface.*\(on the pod\)"):
        parse_forwards([{"remote_port": 6817, "local_port": 1, "bind_address": "0.0.0.0"}], reverse=True)
    with pytest.raises(ValueError, match=r"reverse_forwards\[0\].remote_port must be between 1 and 65535"):
        parse_forwards([{"remote_port": 0, "local_port": 1}], reverse=True)
    with pytest.raises(ValueError, match=r"reverse_forwards\[0\].local_host '-oX' is not a host name"):
        parse_forwards([{"remote_port": 1, "local_port": 1, "local_host": "-oX"}], reverse=True)


def test_command_carries_reverse_forwards_after_local_ones():
    spec = make_spec(reverse_forwards=parse_forwards([{"remote_port": 6817, "local_port": 16817}], reverse=True))
    cmd = spec.command()
    assert cmd[cmd.index("-R") + 1] == "127.0.0.1:6817:127.0.0.1:16817"
    assert cmd.index("-L") < cmd.index("-R") < len(cmd) - 1
    assert "-R" not in make_spec().command()


# -- the command ----------------------------------------------------------------------------


def test_command_pins_host_keys_and_never_disables_checking():
    cmd = make_spec().command()
    assert cmd[:3] == ["/usr/bin/autossh", "-M", "0"]
    joined = " ".join(cmd)
    assert "StrictHostKeyChecking=accept-new" in joined
    assert "StrictHostKeyChecking=no" not in joined
    # Keys pinned through another channel: an unknown key is refused, never pinned.
    strict = make_spec(strict_host_key_checking=True).command()
    assert "StrictHostKeyChecking=yes" in strict and "StrictHostKeyChecking=accept-new" not in strict
    assert "UserKnownHostsFile=/state/local/ssh/known_hosts" in cmd
    assert "HostKeyAlias=runpod-abc123" in cmd
    assert ["-i", "/state/local/ssh/id_ed25519"] == cmd[cmd.index("-i"):cmd.index("-i") + 2]
    assert "ExitOnForwardFailure=yes" in cmd
    assert "ServerAliveInterval=10" in cmd and "ServerAliveCountMax=3" in cmd
    assert cmd[-5:] == ["-L", "127.0.0.1:19400:127.0.0.1:9400", "-L", "127.0.0.1:19401:127.0.0.1:6820", "127.0.0.1"]
    assert ["-p", "22022", "-l", "root"] == cmd[cmd.index("-p"):cmd.index("-p") + 4]


def test_command_without_alias_or_key():
    cmd = make_spec(host_key_alias=None, private_key=None, exit_on_forward_failure=False).command()
    assert not any(arg.startswith("HostKeyAlias") for arg in cmd)
    assert "-i" not in cmd
    assert "ExitOnForwardFailure=no" in cmd
    assert "-E" not in cmd and "LogLevel=VERBOSE" not in cmd


def test_command_in_the_background_logs_ssh_verbosely():
    cmd = make_spec(log_path="/s/t.log").command(background=True)
    assert cmd[:4] == ["/usr/bin/autossh", "-f", "-M", "0"]
    assert cmd[cmd.index("-E") + 1] == "/s/t.log" and "LogLevel=VERBOSE" in cmd


def test_environment_is_clean(monkeypatch):
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_secret")
    env = make_spec(retry_max_interval=7).environment("/s/t", "/s/t.log", "/s/t.pid")
    assert env["AUTOSSH_GATETIME"] == "0"
    assert env["AUTOSSH_POLL"] == "7"
    assert env["AUTOSSH_PIDFILE"] == "/s/t.pid"
    assert env["AUTOSSH_PATH"] == "/usr/bin/ssh"
    assert env[_autossh.TAG_VARIABLE] == "/s/t"
    assert "RUNPOD_API_KEY" not in env and "rpa_secret" not in repr(env)
    assert "AUTOSSH_PIDFILE" not in make_spec().environment("/s/t", "/s/t.log")


# -- files, lock, log ----------------------------------------------------------------------------


def test_files_roundtrip(tmp_path):
    files = TunnelFiles(str(tmp_path / "s"), "t1")
    assert files.read_config() is None
    files.ensure_dir()
    assert (tmp_path / "s").stat().st_mode & 0o777 == 0o700
    files.write_config({"b": 1, "a": [1, 2]})
    assert files.read_config() == {"a": [1, 2], "b": 1}
    assert os.stat(files.config).st_mode & 0o777 == 0o600
    (tmp_path / "s" / "t1.pid").write_text("123\n")
    assert files.read_pid() == 123
    (tmp_path / "s" / "t1.json").write_text("not json")
    assert "unreadable" in files.read_config()
    files.remove()
    assert os.listdir(tmp_path / "s") == []


def test_render_config_compacts_the_command():
    text = render_config({"command": ["/usr/bin/autossh", "-M", "0", "a b"]}, compact_command=True)
    assert "\"command\": \"/usr/bin/autossh -M 0 'a b'\"" in text
    assert render_config(None) == ""


def test_read_log_from_offset_and_tail(tmp_path):
    files = TunnelFiles(str(tmp_path), "t1")
    (tmp_path / "t1.log").write_text("old line\nnew line\n")
    assert files.read_log(9) == "new line\n"
    assert files.read_log(0, limit=5) == "line\n"
    assert files.read_log(10_000) == "old line\nnew line\n"[-4000:]


def test_lock_times_out_with_a_clear_message(tmp_path):
    path = str(tmp_path / "t.lock")
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with Lock(path):
        with pytest.raises(TunnelError, match="another run holds the lock"):
            with Lock(path, timeout=1, clock=lambda: now[0], sleep=sleep):
                pass
    with Lock(path) as lock:
        lock.remove_on_exit = True
    assert not os.path.exists(path)


@pytest.mark.parametrize("log, kind", [
    ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.\n", "host_key"),
    ("No ED25519 host key is known for x and you have requested strict checking.\nHost key verification failed.\n", "host_key"),
    ("root@127.0.0.1: Permission denied (publickey).\n", "fatal"),
    ("bind [127.0.0.1]:19400: Address already in use\nchannel_setup_fwd_listener_tcpip: cannot listen to port: 19400\n"
     "Could not request local forwarding.\n", "fatal"),
    ("ssh: connect to host 127.0.0.1 port 22: Connection refused\n", None),
    ("Warning: Permanently added 'runpod-x' (ED25519) to the list of known hosts.\n", None),
])
def test_diagnose(log, kind):
    found = diagnose(log)
    assert (found[0] if found else None) == kind


# -- processes and the log -----------------------------------------------------------------------


@pytest.mark.parametrize("log, up", [
    # autossh 1.4g's lines and OpenSSH 9.2's (LogLevel=VERBOSE), as they come.
    ("2026/12/05 18:09:45 autossh[8092]: starting ssh (count 1)\n2026/12/05 18:09:45 autossh[8092]: ssh child pid is "
     "8095\nAuthenticated to 127.0.0.1 ([127.0.0.1]:22022) using \"publickey\".\n", True),
    ("autossh[1]: starting ssh (count 1)\nAuthenticated to x ([x]:22) using \"publickey\".\nTimeout, server x not "
     "responding.\nautossh[1]: ssh exited with error status 255; restarting ssh\n", False),
    ("Authenticated to x ([x]:22) using \"publickey\".\nautossh[1]: starting ssh (count 2)\n", False),
    ("ssh: connect to host 127.0.0.1 port 1: Connection refused\n", False),
    ("", False),
])
def test_connected_reads_the_last_login(log, up):
    assert connected(log) is up


def test_is_tunnel_needs_the_tag(tmp_path):
    assert is_tunnel(os.getpid()) and not is_tunnel(None) and not is_tunnel(1)
    if os.path.isdir("/proc/self"):
        assert not is_tunnel(os.getpid(), "/no/such/tunnel")


def test_port_in_use():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)


# -- the real autossh ----------------------------------------------------------------------------


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_real_autossh_in_the_background(tmp_path, monkeypatch):
    """autossh -f and ssh as they are (the host: a listener that never answers): pidfile, log, clean environment, stop."""
    autossh, ssh = shutil.which("autossh"), shutil.which("ssh")
    if not (autossh and ssh):
        pytest.skip("needs autossh and ssh (apt-get install autossh openssh-client)")
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_secret")
    files = TunnelFiles(str(tmp_path / "s"), "t1")
    files.ensure_dir()
    daemon = DaemonSupervisor(files, run)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        spec = make_spec(port=silent.getsockname()[1], autossh_path=autossh, ssh_path=ssh, private_key=None,
                         known_hosts=str(tmp_path / "known_hosts"), log_path=files.log)
        pid = daemon.start(spec)
        try:
            assert daemon.status() == (True, pid)
            # autossh and its ssh, seen together once (the silent host makes ssh time out, and autossh start another).
            seen: list[int] = []

            def both() -> bool:
                seen[:] = daemon.processes()
                return len(seen) == 2

            assert _wait_for(both)
            ssh_pid = seen[1]
            log = files.read_log()
            assert "autossh[%d]: starting ssh (count 1)" % pid in log and "ssh child pid is %d" % ssh_pid in log
            assert not connected(log)
            if os.path.isdir("/proc/self"):
                with open("/proc/%d/environ" % pid, "rb") as handle:
                    environ = handle.read()
                assert b"rpa_secret" not in environ and b"AUTOSSH_PIDFILE=" + files.pid.encode() in environ
                assert os.readlink("/proc/%d/cwd" % pid) == "/"
                assert os.getsid(pid) != os.getsid(0)  # a session of its own, away from Ansible's
            assert daemon.stop() is True
            assert not is_tunnel(pid) and not is_tunnel(ssh_pid) and daemon.status() == (False, None)
        finally:
            daemon.stop()


def test_autossh_that_cannot_start_is_reported(tmp_path):
    files = TunnelFiles(str(tmp_path), "t1")
    failing = tmp_path / "autossh"
    failing.write_text("#!/bin/sh\necho no such option >&2; exit 1\n")
    failing.chmod(0o755)
    with pytest.raises(TunnelError, match=r"autossh exited right after it started \(exit status 1\): no such option"):
        DaemonSupervisor(files, run).start(make_spec(autossh_path=str(failing)))


def test_real_autossh_in_the_foreground_is_found_by_its_pidfile(tmp_path):
    """What a supervisor runs (supervisor=external): autossh without -f writes the same pidfile, so the module finds it."""
    autossh, ssh = shutil.which("autossh"), shutil.which("ssh")
    if not (autossh and ssh):
        pytest.skip("needs autossh and ssh (apt-get install autossh openssh-client)")
    files = TunnelFiles(str(tmp_path / "s"), "t1")
    files.ensure_dir()
    daemon = DaemonSupervisor(files, run)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        spec = make_spec(port=silent.getsockname()[1], autossh_path=autossh, ssh_path=ssh, private_key=None,
                         known_hosts=str(tmp_path / "known_hosts"), log_path=files.log)
        proc = subprocess.Popen(spec.command(), env=daemon.environment(spec), cwd="/", stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert _wait_for(lambda: daemon.status() == (True, proc.pid))
            assert _wait_for(lambda: len(daemon.processes()) == 2)
            proc.terminate()  # as a supervisor stops it: autossh removes its pidfile
            proc.wait(timeout=10)
            assert _wait_for(lambda: daemon.status() == (False, None) and not os.path.exists(files.pid))
        finally:
            proc.kill()
            proc.wait(timeout=10)
            daemon.stop()
