#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: autossh_tunnel
short_description: Keep an SSH tunnel to a pod open with autossh
version_added: 0.1.0
description:
  - Starts, checks, restarts and stops one persistent SSH tunnel from the host the module runs on (the control host) to
    a pod, with local forwards (C(ssh -L)) such as a pod's GPU exporter, and reverse forwards (C(ssh -R)) that let the
    pod reach a service of this host such as slurmctld.
  - C(autossh -M 0) runs C(ssh -N) and starts it again whenever it exits; ssh's C(ServerAliveInterval) messages detect
    a dead link, so a tunnel recovers by itself from dropped connections, pod restarts and network outages.
  - autossh writes its pid to a pidfile (C(AUTOSSH_PIDFILE)), and the module records the tunnel's configuration in
    O(state_dir). A running tunnel with an unchanged configuration is no change; a changed configuration, or (with
    O(supervisor=daemon)) an autossh that no longer runs, restarts it.
  - Host keys are always checked against O(known_hosts); a host that presents another key fails the task and (with
    O(supervisor=daemon)) stops the tunnel. Wildcard listen addresses are refused, here and on the pod.
  - autossh and ssh get a clean environment; nothing of the module's (such as API keys) reaches them.
author:
  - gpuops maintainers (@gpuops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the tunnel would be started, restarted or stopped, and changes nothing.
  diff_mode:
    support: full
    details: Shows the tunnel's recorded configuration and whether it runs, before and after.
  idempotent:
    description: The second of two runs in a row with the same arguments, outside check mode, changes nothing.
    support: partial
    details: O(state=present) and O(state=absent) are, while the tunnel keeps running; O(state=restarted) restarts it
      every time.
  platform:
    platforms: posix
    details: A pid is taken for the tunnel's after a look at C(/proc/<pid>) (Linux); elsewhere the pidfile alone is
      trusted.
options:
  name:
    description: The tunnel's id, which names its files in O(state_dir). 1 to 100 characters of V(a-z), V(0-9), V(_),
      V(.) and V(-), starting with a letter or digit.
    type: str
    required: true
  state:
    description: V(present) starts the tunnel unless it runs with the same configuration, and waits until it is up.
      V(restarted) always stops and starts it again (not with O(supervisor=external)). V(absent) stops it and removes
      its files; a tunnel that runs under its external supervisor must be stopped there first, or the task fails.
    type: str
    choices: [present, absent, restarted]
    default: present
  host:
    description: The SSH server to connect to (the pod's public IP address or name). Required unless O(state=absent).
    type: str
  port:
    description: The SSH server's port.
    type: int
    default: 22
  user:
    description: The user to log in as.
    type: str
    default: root
  private_key:
    description: The private key to authenticate with (C(ssh -i), with C(IdentitiesOnly=yes) and no agent), without a
      passphrase. Without it ssh tries the default identity files (C(~/.ssh/id_*)) of the user the module runs as.
    type: path
  forwards:
    description:
      - The local forwards (C(ssh -L bind_address:local_port:remote_host:remote_port)).
      - Unless O(state=absent), O(forwards), O(reverse_forwards) or both must hold at least one forward.
    type: list
    elements: dict
    suboptions:
      local_port:
        description: The port to listen on, on this host.
        type: int
        required: true
      remote_host:
        description: The address to connect to, as the pod sees it. V(127.0.0.1) reaches the pod's loopback-only
          services.
        type: str
        default: 127.0.0.1
      remote_port:
        description: The port to connect to on O(forwards[].remote_host).
        type: int
        required: true
      bind_address:
        description: The IP address to listen on. A loopback address (V(127.0.0.0/8), V(::1)) keeps the listener private
          to this host; another specific address of this host is allowed. V(0.0.0.0), V(::), V(*) and V("") are refused.
        type: str
        default: 127.0.0.1
  reverse_forwards:
    description:
      - The reverse forwards (C(ssh -R bind_address:remote_port:local_host:local_port)), a listener on the pod whose
        connections reach O(reverse_forwards[].local_host):O(reverse_forwards[].local_port) as seen from this host.
      - With O(exit_on_forward_failure) ssh exits when the pod refuses a listener (the port is in use there, or its
        sshd forbids remote forwarding), and autossh tries again; the log says why. C(GatewayPorts) on the pod's sshd
        decides the listener's address (its default, V(no), binds it to the pod's loopback).
    type: list
    elements: dict
    suboptions:
      remote_port:
        description: The port to listen on, on the pod.
        type: int
        required: true
      local_host:
        description: The address to connect to, as this host sees it. V(127.0.0.1) reaches this host's loopback-only
          services.
        type: str
        default: 127.0.0.1
      local_port:
        description: The port to connect to on O(reverse_forwards[].local_host).
        type: int
        required: true
      bind_address:
        description: The IP address to listen on, on the pod. V(0.0.0.0), V(::), V(*) and V("") are refused.
        type: str
        default: 127.0.0.1
  known_hosts:
    description: The known_hosts file that pins the host key (C(UserKnownHostsFile)), usually one per deployment. Its
      directory must exist. Required unless O(state=absent).
    type: path
  strict_host_key_checking:
    description: Refuse a host whose key is not pinned in O(known_hosts) yet (C(StrictHostKeyChecking=yes)), for keys
      pinned through another channel such as M(gpuops.platform.runpod_host_keys); otherwise the key is pinned on first
      contact (C(StrictHostKeyChecking=accept-new)).
    type: bool
    default: false
  host_key_alias:
    description: The name under which the host key is pinned in O(known_hosts) (C(HostKeyAlias)), the one that Ansible's
      own SSH connections use (for example V(runpod-<pod id>)), so that the pin belongs to the pod, not to an address
      and port that another pod may get later. Without it the key is pinned under O(host) and O(port).
    type: str
  server_alive_interval:
    description: Seconds of silence after which ssh asks the server whether it is alive (C(ServerAliveInterval)). A dead
      link is noticed after about O(server_alive_interval) times O(server_alive_count_max) seconds.
    type: int
    default: 10
  server_alive_count_max:
    description: Unanswered keep-alive requests after which ssh gives up on the connection (C(ServerAliveCountMax)).
    type: int
    default: 3
  exit_on_forward_failure:
    description: Make ssh exit when it cannot open a listener (C(ExitOnForwardFailure)), rather than run without it.
    type: bool
    default: true
  retry_max_interval:
    description: The longest pause, in seconds, between two connection attempts while the host stays unreachable
      (C(AUTOSSH_POLL)).
    type: int
    default: 30
  wait_timeout:
    description:
      - Seconds to wait, after starting the tunnel or when finding it running but not connected, until it is up; then
        the task fails, and autossh keeps trying. V(0) does not wait.
      - A failure that no retry can fix (a changed host key, a refused key, a local port in use) fails the task as soon
        as ssh reports it, and (with O(supervisor=daemon)) stops the tunnel.
    type: int
    default: 30
  state_dir:
    description: The directory of the tunnel's files, created with mode 0700 if missing; C(<name>.json) (configuration),
      C(<name>.pid) (autossh's pid), C(<name>.log) (autossh's and ssh's messages), C(<name>.lock). The tunnels of a
      deployment share one, so that they can be listed (see the last example).
    type: path
    default: ~/.local/state/gpuops/tunnels
  supervisor:
    description:
      - What keeps autossh running. V(daemon) autossh's own background mode (C(autossh -f)), started and stopped by
        the module; it outlives the playbook, and a later run starts it again if it died.
      - V(external) another program (such as a systemd unit of the role C(gpuops.platform.supervise)) runs RV(command)
        with exactly RV(environment) and restarts it when it exits. The module starts and stops nothing; when that
        autossh runs with the recorded configuration, it waits until the tunnel is up and fails on what no retry
        fixes, as with V(daemon). A tunnel that the module started as V(daemon) is stopped.
    type: str
    choices: [daemon, external]
    default: daemon
  autossh_path:
    description: The autossh executable. Found on E(PATH) when not set.
    type: path
  ssh_path:
    description: The ssh executable that autossh runs (C(AUTOSSH_PATH)). Found on E(PATH) when not set.
    type: path
notes:
  - autossh 1.4f or later is needed, where an ssh killed by a signal is restarted rather than taken as the end.
  - A failed connection to O(forwards[].remote_host) (a service on the pod that is not up yet) fails only itself.
requirements:
  - autossh and the OpenSSH client on the host the module runs on.
seealso:
  - name: autossh
    description: autossh's manual page.
    link: https://www.harding.motd.ca/autossh/
  - name: ssh_config
    description: The ssh options that the tunnel sets.
    link: https://man.openbsd.org/ssh_config
"""

EXAMPLES = r"""
- name: A pod's exporter here, and slurmctld of this host on the pod (one tunnel per pod, run on the control host)
  gpuops.platform.autossh_tunnel:
    name: "gpuops-local-{{ inventory_hostname }}"
    host: "{{ ansible_host }}"
    port: "{{ ansible_port }}"
    private_key: "{{ ansible_ssh_private_key_file }}"
    known_hosts: ~/.gpuops/known_hosts
    host_key_alias: "{{ runpod_host_key_alias }}"
    state_dir: ~/.gpuops/local/tunnels
    forwards:
      - local_port: "{{ 19400 + 2 * runpod_pod_index }}"  # one port per pod, stable while others come and go
        remote_port: 9400
    reverse_forwards:
      - remote_port: 6817
        local_port: 6817
  delegate_to: localhost

- name: The same tunnel for a supervisor, which runs tunnel.command with exactly tunnel.environment
  gpuops.platform.autossh_tunnel:
    name: "gpuops-local-{{ inventory_hostname }}"
    host: "{{ ansible_host }}"
    known_hosts: ~/.gpuops/known_hosts
    state_dir: ~/.gpuops/local/tunnels
    forwards:
      - local_port: 19400
        remote_port: 9400
    supervisor: external
  delegate_to: localhost
  register: tunnel

- name: List the tunnels of a deployment
  ansible.builtin.find:
    paths: ~/.gpuops/local/tunnels
    patterns: "*.json"
  register: tunnel_files

- name: Stop them all
  gpuops.platform.autossh_tunnel:
    name: "{{ item.path | basename | splitext | first }}"
    state: absent
    state_dir: ~/.gpuops/local/tunnels
  loop: "{{ tunnel_files.files }}"
"""

RETURN = r"""
name:
  description: The tunnel's id.
  returned: always
  type: str
  sample: gpuops-local-gpuops-0
state:
  description: V(present) when the tunnel runs after the task (or would, in check mode), V(absent) otherwise.
  returned: always
  type: str
  sample: present
pid:
  description: The pid of autossh (from its pidfile, also under an external supervisor). Null when the tunnel is absent
    or does not run, and in check mode when it would be started.
  returned: always
  type: int
  sample: 41872
forwards:
  description: The tunnel's local forwards, each as in O(forwards) with its defaults filled in.
  returned: when O(state) is not V(absent)
  type: list
  elements: dict
  sample:
    - {bind_address: 127.0.0.1, local_port: 19400, remote_host: 127.0.0.1, remote_port: 9400}
reverse_forwards:
  description: The tunnel's reverse forwards, each as in O(reverse_forwards) with its defaults filled in.
  returned: when O(state) is not V(absent)
  type: list
  elements: dict
  sample:
    - {bind_address: 127.0.0.1, remote_port: 6817, local_host: 127.0.0.1, local_port: 6817}
command:
  description: The autossh command line, one list element per argument (C(autossh -f) with O(supervisor=daemon), in the
    foreground with O(supervisor=external)). It holds paths, never a secret.
  returned: when O(state) is not V(absent)
  type: list
  elements: str
  sample: [/usr/bin/autossh, -M, "0", -N, -T, -F, none, "...", -L, "127.0.0.1:19400:127.0.0.1:9400", 127.0.0.1]
environment:
  description: autossh's whole environment (C(AUTOSSH_*), C(PATH), C(LANG) and the tunnel's tag C(GPUOPS_TUNNEL)),
    nothing else. A supervisor runs RV(command) with exactly these variables.
  returned: when O(state) is not V(absent)
  type: dict
  sample: {AUTOSSH_GATETIME: "0", AUTOSSH_PIDFILE: /home/ops/.gpuops/local/tunnels/t.pid, GPUOPS_TUNNEL: /home/ops/.gpuops/local/tunnels/t}
supervisor:
  description: What keeps the tunnel running, V(daemon) or V(external). Null when the tunnel is absent.
  returned: always
  type: str
  sample: daemon
established:
  description: Whether the tunnel was up when the module finished - every local listener open, or with only
    O(reverse_forwards), ssh logged in. False when the tunnel is (or in check mode, would be) started and
    O(wait_timeout=0), before it was up, and when it is absent.
  returned: always
  type: bool
  sample: true
config_path:
  description: The file that records the tunnel's configuration.
  returned: always
  type: str
  sample: /home/ops/.local/state/gpuops/tunnels/gpuops-local-gpuops-0.json
log_path:
  description: autossh's log, with ssh's messages.
  returned: always
  type: str
  sample: /home/ops/.local/state/gpuops/tunnels/gpuops-local-gpuops-0.log
log_tail:
  description: The end of the tunnel's log, when the task failed because the tunnel did not come up.
  returned: on failure
  type: str
  sample: "root@127.0.0.1: Permission denied (publickey)."
"""

import dataclasses
import functools
import os
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils import _autossh as a


# Injected by the unit tests.
CLOCK = time.monotonic
SLEEP = time.sleep


class TunnelModule:
    """Reads the tunnel's state, compares it with the wanted one and acts."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module, self.params = module, module.params
        try:
            self.name = a.check_name(self.params["name"])
        except ValueError as err:
            module.fail_json(msg=str(err))
        self.files = a.TunnelFiles(self.params["state_dir"], self.name)
        self.daemon = a.DaemonSupervisor(self.files, lambda cmd: module.run_command(cmd, cwd="/", umask=0o077),
                                         clock=CLOCK, sleep=SLEEP)
        self.result: dict[str, t.Any] = dict(changed=False, name=self.name, state="absent", pid=None, supervisor=None,
                                             established=False, config_path=self.files.config, log_path=self.files.log)

    def fail(self, msg: str, **extra: t.Any) -> t.NoReturn:
        self.module.fail_json(msg=msg, **dict(self.result, **extra))
        raise AssertionError(msg)  # not reached: fail_json exits

    def done(self, msg: str) -> None:
        self.module.exit_json(msg=msg, **self.result)

    def _positive(self, name: str, minimum: int) -> int:
        if self.params[name] < minimum:
            self.fail("%s must be %d or more, got %d" % (name, minimum, self.params[name]))
        return self.params[name]

    def _path(self, option: str, problem: str, good: t.Callable[[str], bool]) -> str:
        path = os.path.abspath(self.params[option])
        if not good(path):
            self.fail("%s %s %s" % (option, path, problem))
        return path

    def _binary(self, option: str, name: str, package: str) -> str:
        if self.params[option]:
            return self._path(option, "is not an executable file", lambda path: os.path.isfile(path) and os.access(path, os.X_OK))
        found = self.module.get_bin_path(name)
        if not found:
            self.fail("%s is not installed on this host (the control host); install it, for example `apt-get install %s` "
                      "on Debian or Ubuntu, or set %s" % (name, package, option))
        return found

    def spec(self) -> a.TunnelSpec:
        """The tunnel from the options, every one checked before anything is created or started."""
        p = self.params
        try:
            forwards = a.parse_forwards(p["forwards"])
            reverse_forwards = a.parse_forwards(p["reverse_forwards"], reverse=True)
            if not forwards and not reverse_forwards:
                raise ValueError("forwards is empty: give at least one {local_port, remote_port}, or reverse_forwards")
            host, user, port = a.check_host(p["host"]), a.check_user(p["user"]), a.check_port(p["port"], "port")
            alias = a.check_host(p["host_key_alias"], "host_key_alias") if p["host_key_alias"] else None
        except ValueError as err:
            self.fail(str(err))
        known_hosts = self._path("known_hosts", "is a directory; give the path of a file", lambda path: not os.path.isdir(path))
        if not os.path.isdir(os.path.dirname(known_hosts)):
            self.fail("the directory of known_hosts %s does not exist; create it (ssh adds the host key there on first "
                      "contact)" % known_hosts)
        self._positive("wait_timeout", 0)
        return a.TunnelSpec(
            name=self.name, host=host, port=port, user=user, forwards=forwards, reverse_forwards=reverse_forwards,
            private_key=self._path("private_key", "does not exist or is not a file", os.path.isfile) if p["private_key"] else None,
            known_hosts=known_hosts, host_key_alias=alias, strict_host_key_checking=p["strict_host_key_checking"],
            server_alive_interval=self._positive("server_alive_interval", 1),
            server_alive_count_max=self._positive("server_alive_count_max", 1),
            exit_on_forward_failure=p["exit_on_forward_failure"], retry_max_interval=self._positive("retry_max_interval", 1),
            autossh_path=self._binary("autossh_path", "autossh", "autossh"),
            ssh_path=self._binary("ssh_path", "ssh", "openssh-client"), log_path=self.files.log)

    def config(self, spec: a.TunnelSpec) -> dict:
        """The record that tells whether a running tunnel is the wanted one. strict_host_key_checking and log_path are
        in the command; reverse_forwards only when there are some, so that a record made before them stays the same."""
        skip = {"strict_host_key_checking", "log_path"} | (set() if spec.reverse_forwards else {"reverse_forwards"})
        config = {key: list(value) if isinstance(value, tuple) else value
                  for key, value in dataclasses.asdict(spec).items() if key not in skip}
        return dict(config, supervisor=self.params["supervisor"], environment=self.daemon.environment(spec),
                    command=spec.command(background=self.params["supervisor"] == "daemon"))

    def _diff(self, before: dict | None, before_running: bool, after: dict | None, after_running: bool) -> None:
        def view(config: dict | None, running: bool) -> str:
            if not config:
                return "# not recorded, but processes of the tunnel are running\n" if running else ""
            return "# %s\n%s" % ("running" if running else "not running", a.render_config(config, compact_command=True))

        if self.module._diff:  # pylint: disable=protected-access
            self.result["diff"] = dict(before=view(before, before_running), after=view(after, after_running),
                                       before_header=self.files.config, after_header=self.files.config)

    def refuse_external(self, recorded: dict | None, running: bool, pid: int | None) -> None:
        """A tunnel run by an external supervisor is stopped there, never here: it would only be started again."""
        if running and (recorded or {}).get("supervisor") == "external" and not self.module.check_mode:
            self.fail("the tunnel %s runs under its external supervisor (autossh pid %s): stop and remove it there "
                      "first, then run again" % (self.name, pid))

    def established(self, spec: a.TunnelSpec, log_offset: int) -> bool:
        """Every local listener is up (ssh opens them once logged in); without any, ssh's log says it logged in."""
        if spec.forwards:
            return all(a.port_in_use(fwd["bind_address"], fwd["local_port"]) for fwd in spec.forwards)
        return a.connected(self.files.read_log(log_offset, a.LOG_WINDOW))

    def wait_established(self, spec: a.TunnelSpec, log_offset: int, started: bool) -> bool:
        """Wait until the tunnel is up; fail at once on what no retry fixes (in the log since ``log_offset``), and stop
        a daemon that hit it (an external supervisor would only start it again)."""
        timeout, external = self.params["wait_timeout"], self.params["supervisor"] == "external"
        outcome = "Its supervisor keeps restarting it (stop it there)" if external else "The tunnel was stopped"

        def up() -> bool:
            found, tail = a.diagnose(self.files.read_log(log_offset, a.LOG_WINDOW)), self.files.read_log(log_offset)
            if found:
                if not external:
                    self.daemon.stop()
                    self.result.update(pid=None, state="absent")
                if found[0] == "host_key":
                    raise a.TunnelError(a.host_key_message(spec, outcome), tail)
                raise a.TunnelError("the tunnel %s to %s cannot work: %s. %s; the log says:\n%s"
                                    % (self.name, spec.describe(), found[1], outcome, tail.strip()), tail)
            running, self.result["pid"] = self.daemon.status()
            if not running:
                raise a.TunnelError("autossh of the tunnel %s exited; the log %s says:\n%s"
                                    % (self.name, self.files.log, tail.strip()), tail)
            return self.established(spec, log_offset if started else 0)

        if a.wait_until(up, timeout, CLOCK, SLEEP, 0.2):
            return True
        if timeout == 0:
            return False
        tail = self.files.read_log(log_offset)
        raise a.TunnelError(
            "the tunnel %s to %s is not up after %d s (wait_timeout): autossh (pid %s) keeps trying in the "
            "background. Is the pod reachable? The log %s says:\n%s" % (
                self.name, spec.describe(), timeout, self.result["pid"], self.files.log,
                tail.strip() or "(nothing yet)"), tail)

    def present(self, spec: a.TunnelSpec, restart: bool) -> None:
        wanted, kind = self.config(spec), self.params["supervisor"]
        self.result.update(supervisor=kind, forwards=list(spec.forwards), reverse_forwards=list(spec.reverse_forwards),
                           command=wanted["command"], environment=wanted["environment"])
        recorded = self.files.read_config()
        running, pid = self.daemon.status()
        leftovers = [] if running else self.daemon.processes()
        ours = (recorded or {}).get("supervisor") != "external"  # processes this module started and stops
        if kind == "daemon":
            self.refuse_external(recorded, running, pid)
        if restart:
            reason = "restarted"
        elif recorded != wanted:
            reason = "started" if recorded is None else "restarted with the new configuration"
        elif not running and kind == "daemon":
            reason = "started again (autossh was not running)"
        else:
            self.result.update(state="present", pid=pid)
            self._diff(recorded, running, wanted, running)
            if not running:  # under an external supervisor that does not run it (yet)
                self.done("the tunnel %s is recorded; its supervisor does not run it" % self.name)
            self.result["established"] = self.established(spec, 0) if self.module.check_mode \
                else self.wait_established(spec, self.files.log_size(), False)
            self.done("the tunnel %s runs with this configuration" % self.name)

        self.result.update(changed=True, state="present")
        self._diff(recorded, running or bool(leftovers), wanted, kind == "daemon" or (running and not ours))
        if kind == "external":
            reason = "recorded for its supervisor" + (" (autossh started here was stopped)" if ours and (running or leftovers) else "")
        if self.module.check_mode:
            self.done("check mode: the tunnel %s would be %s" % (self.name, reason))
        if kind == "daemon" or ours:
            self.daemon.stop()  # an ssh whose autossh died still holds the listeners
            self.result["pid"] = None
        self.files.rotate_log()
        if kind == "external":
            self.files.write_config(wanted)
            self.done("the tunnel %s was %s" % (self.name, reason))

        def taken() -> list[dict]:  # ... and may hold them a moment after it was told to stop
            return [fwd for fwd in spec.forwards if a.port_in_use(fwd["bind_address"], fwd["local_port"])]

        busy = [] if a.wait_until(lambda: not taken(), 10, CLOCK, SLEEP, 0.2) else taken()
        if busy:
            fwd = busy[0]
            self.fail("local port %d on %s is already in use by another program; choose another local_port, or stop "
                      "that program (`ss -ltnp 'sport = :%d'` shows it)"
                      % (fwd["local_port"], fwd["bind_address"], fwd["local_port"]))
        self.files.write_config(wanted)
        log_offset = self.files.log_size()
        self.result["pid"] = self.daemon.start(spec)
        self.result["established"] = self.wait_established(spec, log_offset, True)
        self.done("the tunnel %s was %s" % (self.name, reason))

    def absent(self) -> None:
        recorded = self.files.read_config()
        running, pid = self.daemon.status()
        leftovers = self.daemon.processes()
        self.refuse_external(recorded, running, pid)
        self.result["supervisor"] = (recorded or {}).get("supervisor")
        if not (recorded or leftovers or any(os.path.exists(path) for path in (self.files.pid, self.files.log))):
            self._diff(None, False, None, False)
            self.done("the tunnel %s is absent" % self.name)
        self.result["changed"] = True
        self._diff(recorded, bool(leftovers), None, False)
        if self.module.check_mode:
            self.done("check mode: the tunnel %s would be stopped and removed" % self.name)
        self.daemon.stop()
        self.files.remove()
        self.done("the tunnel %s was stopped and removed" % self.name)

    def run(self) -> None:
        state = self.params["state"]
        if state == "restarted" and self.params["supervisor"] == "external":
            self.fail("state=restarted needs supervisor=daemon: restart a tunnel with its external supervisor")
        restart = state == "restarted"
        action = self.absent if state == "absent" else functools.partial(self.present, self.spec(), restart)
        try:
            if self.module.check_mode or (state == "absent" and not os.path.isdir(self.files.state_dir)):
                return action()
            self.files.ensure_dir()
            with a.Lock(self.files.lock, clock=CLOCK, sleep=SLEEP) as lock:
                lock.remove_on_exit = state == "absent"  # a present tunnel keeps its lock file
                return action()
        except a.TunnelError as err:
            self.fail(err.message, log_tail=err.log_tail)
        except OSError as err:
            self.fail("the tunnel %s: %s" % (self.name, err))


def main() -> None:
    forward = dict(bind_address=dict(type="str", default="127.0.0.1"), local_port=dict(type="int", required=True),
                   remote_port=dict(type="int", required=True))
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent", "restarted"]),
            host=dict(type="str"),
            port=dict(type="int", default=22),
            user=dict(type="str", default="root"),
            private_key=dict(type="path"),
            forwards=dict(type="list", elements="dict", options=dict(forward, remote_host=dict(type="str", default="127.0.0.1"))),
            reverse_forwards=dict(type="list", elements="dict",
                                  options=dict(forward, local_host=dict(type="str", default="127.0.0.1"))),
            known_hosts=dict(type="path"),
            host_key_alias=dict(type="str", no_log=False),
            strict_host_key_checking=dict(type="bool", default=False),
            server_alive_interval=dict(type="int", default=10),
            server_alive_count_max=dict(type="int", default=3),
            exit_on_forward_failure=dict(type="bool", default=True),
            retry_max_interval=dict(type="int", default=30),
            wait_timeout=dict(type="int", default=30),
            state_dir=dict(type="path", default="~/.local/state/gpuops/tunnels"),
            supervisor=dict(type="str", default="daemon", choices=["daemon", "external"]),
            autossh_path=dict(type="path"),
            ssh_path=dict(type="path"),
        ),
        required_if=[("state", "present", ("host", "known_hosts")), ("state", "restarted", ("host", "known_hosts")),
                     ("state", "present", ("forwards", "reverse_forwards"), True),
                     ("state", "restarted", ("forwards", "reverse_forwards"), True)],
        supports_check_mode=True,
    )
    TunnelModule(module).run()


if __name__ == "__main__":
    main()
