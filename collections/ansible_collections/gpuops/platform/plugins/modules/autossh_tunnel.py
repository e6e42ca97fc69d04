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
    a pod, carrying local forwards (C(ssh -L)) such as a pod's GPU exporter or slurmrestd, and reverse forwards
    (C(ssh -R)) that let the pod reach a service of this host, such as slurmctld on the service plane.
  - C(autossh -M 0) runs C(ssh -N) and starts it again whenever it exits; ssh's C(ServerAliveInterval) messages detect
    a dead link, so a tunnel recovers by itself from dropped connections, pod restarts and network outages.
  - Under systemd (when systemd is PID 1) the tunnel is a service C(gpuops-tunnel-<name>.service) with
    C(Restart=always), in the system manager when the module runs as root and in the user's manager otherwise.
    Elsewhere (containers, RunPod-like hosts, AWX execution environments) it is a daemon detached from Ansible (double
    fork, new session) whose pid autossh writes to a pidfile; it outlives the playbook, and a later run of the module
    starts it again if it died.
  - The module records the tunnel's configuration in O(state_dir). An unchanged configuration with a running tunnel is
    no change; a changed configuration, or a tunnel whose autossh is no longer running, restarts the tunnel.
  - Host keys are checked on every connection against O(known_hosts); a host that presents another key fails the task
    and stops the tunnel. With O(strict_host_key_checking=true) the key must already be pinned there
    (C(StrictHostKeyChecking=yes)), for example by M(gpuops.platform.runpod_host_keys) from the pod's own log;
    otherwise it is pinned on first contact (C(StrictHostKeyChecking=accept-new)). Host key checking is never turned
    off.
  - Listeners only bind to the address given in each forward, V(127.0.0.1) by default. Wildcard addresses
    (V(0.0.0.0), V(::), V(*), an empty address) are refused, since they would expose the pod's services to the network.
    The same holds for the pod's listeners of reverse forwards; C(GatewayPorts) on the pod's sshd decides the rest
    (its default, V(no), binds them to the pod's loopback whatever is asked).
  - autossh and ssh get a clean environment; nothing of the module's environment (such as API keys) reaches them.
author:
  - gpuops maintainers (@gpuops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the tunnel would be started, restarted or stopped, and changes nothing.
  diff_mode:
    support: full
    details:
      - Shows the tunnel's recorded configuration and whether it runs, before and after.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: partial
    details:
      - O(state=present) and O(state=absent) are idempotent while the tunnel keeps running.
      - O(state=restarted) restarts the tunnel every time.
  platform:
    platforms: posix
    details:
      - Leftover processes are found, and listeners checked, through C(/proc) (Linux). Elsewhere the module relies on the
        pidfile and checks listeners by connecting to them.
options:
  name:
    description:
      - The tunnel's id. Its files in O(state_dir) and its systemd unit are named after it.
      - 1 to 100 characters of V(a-z), V(0-9), V(_), V(.) and V(-), starting with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) starts the tunnel unless it runs with the same configuration, and waits until its listeners are up.
      - V(restarted) always stops and starts it again.
      - V(absent) stops it and removes its files and unit.
    type: str
    choices: [present, absent, restarted]
    default: present
  host:
    description:
      - The SSH server to connect to (the pod's public IP address or name). Required unless O(state=absent).
    type: str
  port:
    description:
      - The SSH server's port.
    type: int
    default: 22
  user:
    description:
      - The user to log in as.
    type: str
    default: root
  private_key:
    description:
      - The private key to authenticate with (C(ssh -i), with C(IdentitiesOnly=yes) and no agent). The key must not
        need a passphrase; the tunnel runs unattended.
      - Without it ssh tries its default identity files (C(~/.ssh/id_*)) of the user the module runs as.
    type: path
  forwards:
    description:
      - The local forwards (C(ssh -L bind_address:local_port:remote_host:remote_port)).
      - Unless O(state=absent), O(forwards), O(reverse_forwards) or both must hold at least one forward.
    type: list
    elements: dict
    suboptions:
      local_port:
        description:
          - The port to listen on, on this host.
        type: int
        required: true
      remote_host:
        description:
          - The address to connect to, as the pod sees it. V(127.0.0.1) reaches the pod's loopback-only services.
        type: str
        default: 127.0.0.1
      remote_port:
        description:
          - The port to connect to on O(forwards[].remote_host).
        type: int
        required: true
      bind_address:
        description:
          - The IP address to listen on. A loopback address (V(127.0.0.0/8), V(::1)) keeps the listener private to
            this host; another specific address of this host is allowed when given explicitly.
          - V(0.0.0.0), V(::), V(*) and an empty value are refused.
        type: str
        default: 127.0.0.1
  reverse_forwards:
    description:
      - The reverse forwards (C(ssh -R bind_address:remote_port:local_host:local_port)) - a listener on the pod whose
        connections reach O(reverse_forwards[].local_host):O(reverse_forwards[].local_port) as seen from this host,
        for example a pod's slurmd and srun reaching slurmctld on this host's loopback.
      - ssh asks the pod's sshd for each listener after logging in. With O(exit_on_forward_failure) (the default) ssh
        exits when the pod refuses one (the port is in use there, or its sshd forbids remote forwarding), and autossh
        tries again; the log says why. A listener of the previous connection that the pod's sshd has not closed yet
        is such a case, and clears by itself.
      - The pod's listeners cannot be seen from this host, so for these forwards RV(established) means that ssh is
        connected to the pod and running.
    type: list
    elements: dict
    version_added: 0.1.0
    suboptions:
      remote_port:
        description:
          - The port to listen on, on the pod.
        type: int
        required: true
      local_host:
        description:
          - The address to connect to, as this host sees it. V(127.0.0.1) reaches this host's loopback-only services.
        type: str
        default: 127.0.0.1
      local_port:
        description:
          - The port to connect to on O(reverse_forwards[].local_host).
        type: int
        required: true
      bind_address:
        description:
          - The IP address to listen on, on the pod. A loopback address keeps the listener private to the pod.
          - V(0.0.0.0), V(::), V(*) and an empty value are refused.
        type: str
        default: 127.0.0.1
  known_hosts:
    description:
      - The known_hosts file that pins the host key, usually one file per deployment (C(UserKnownHostsFile)). Its
        directory must exist; ssh adds the key on first contact and checks it on every connection after.
      - Required unless O(state=absent).
    type: path
  strict_host_key_checking:
    description:
      - Refuse a host whose key is not pinned in O(known_hosts) yet (C(StrictHostKeyChecking=yes)), instead of pinning
        the key it presents on first contact (C(StrictHostKeyChecking=accept-new)).
      - Use it when the keys are pinned through another channel, as gpuops does from each pod's log.
    type: bool
    default: false
  host_key_alias:
    description:
      - The name under which the host key is pinned in O(known_hosts) (C(HostKeyAlias)), for example
        V(runpod-<pod id>), so that the pin belongs to the pod and not to an address and port that another pod may get
        later. Use the alias that Ansible's own SSH connections use, so both check the same key.
      - Without it the key is pinned under O(host) and O(port).
    type: str
  server_alive_interval:
    description:
      - Seconds of silence after which ssh asks the server whether it is alive (C(ServerAliveInterval)).
      - ssh gives up after O(server_alive_count_max) unanswered requests, and autossh starts it again. A dead link is
        noticed after about O(server_alive_interval) times O(server_alive_count_max) seconds.
    type: int
    default: 10
  server_alive_count_max:
    description:
      - Unanswered keep-alive requests after which ssh gives up on the connection (C(ServerAliveCountMax)).
    type: int
    default: 3
  exit_on_forward_failure:
    description:
      - Make ssh exit when it cannot open a listener (C(ExitOnForwardFailure)), rather than run without it.
    type: bool
    default: true
  retry_max_interval:
    description:
      - The longest pause, in seconds, between two connection attempts while the host stays unreachable
        (C(AUTOSSH_POLL)). autossh retries at once at first and backs off up to this.
    type: int
    default: 30
  wait_timeout:
    description:
      - Seconds to wait, after starting the tunnel or when finding it running but not connected, until every listener
        is up. When they pass the task fails; the tunnel keeps running and autossh keeps trying.
      - V(0) does not wait.
      - A failure that no retry can fix (a changed host key, a refused key, a local port in use) fails the task as soon
        as ssh reports it, and stops the tunnel.
    type: int
    default: 30
  state_dir:
    description:
      - The directory of the tunnel's files, created with mode 0700 if missing; C(<name>.json) (configuration),
        C(<name>.pid) (autossh's pid), C(<name>.log) (autossh's log and ssh's messages), C(<name>.lock).
      - Tunnels of one deployment share one directory, so that they can be listed (see the teardown example).
    type: path
    default: ~/.local/state/gpuops/tunnels
  supervisor:
    description:
      - What keeps autossh running.
      - V(systemd) a service unit (system manager as root, the user's manager otherwise). A user's services stop when
        the user logs out unless lingering is enabled (C(loginctl enable-linger)).
      - V(daemon) a detached process with a pidfile.
      - V(auto) V(systemd) when systemd is PID 1 and running (and, for a user other than root, the user's manager
        answers), V(daemon) otherwise.
    type: str
    choices: [auto, systemd, daemon]
    default: auto
  autossh_path:
    description:
      - The autossh executable. Found on E(PATH) when not set.
    type: path
  ssh_path:
    description:
      - The ssh executable that autossh runs (C(AUTOSSH_PATH)). Found on E(PATH) when not set.
    type: path
notes:
  - autossh 1.4f or later is needed, where an ssh killed by a signal is restarted rather than taken as the end of the
    tunnel.
  - Failures of the connection to O(forwards[].remote_host) (for example a service on the pod that is not running yet)
    do not affect the tunnel; each connection through the listener fails on its own.
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
- name: Tunnel to a pod's GPU exporter and slurmrestd
  gpuops.platform.autossh_tunnel:
    name: gpuops-local-gpuops-0
    host: 127.0.0.1
    port: 22022
    private_key: "{{ gpuops_state_dir }}/local/ssh/id_ed25519"
    known_hosts: "{{ gpuops_state_dir }}/local/ssh/known_hosts"
    host_key_alias: runpod-3x9kq2h7c1b0aa
    state_dir: "{{ gpuops_state_dir }}/local/tunnels"
    forwards:
      - local_port: 19400
        remote_port: 9400
      - local_port: 19401
        remote_port: 6820
  delegate_to: localhost
  register: tunnel

- name: Every pod's exporter, from the play of the pods (one tunnel per pod, run on the control host)
  gpuops.platform.autossh_tunnel:
    name: "exporter-{{ inventory_hostname }}"
    host: "{{ ansible_host }}"
    port: "{{ ansible_port }}"
    private_key: "{{ ansible_ssh_private_key_file }}"
    known_hosts: ~/.gpuops/known_hosts
    host_key_alias: "runpod-{{ runpod_pod_id }}"
    forwards:
      # One port per pod, stable while others come and go (from the pod's runpod_pod_index).
      - local_port: "{{ 19400 + 2 * runpod_pod_index }}"
        remote_port: 9400
  delegate_to: localhost

- name: A pod's slurmd, reached from slurmctld on this host, and slurmctld, reached from the pod
  gpuops.platform.autossh_tunnel:
    name: "slurm-{{ inventory_hostname }}"
    host: "{{ ansible_host }}"
    port: "{{ ansible_port }}"
    private_key: "{{ ansible_ssh_private_key_file }}"
    known_hosts: ~/.gpuops/known_hosts
    host_key_alias: "{{ runpod_host_key_alias }}"
    forwards:
      - bind_address: "127.0.1.{{ runpod_pod_index + 1 }}"
        local_port: 6818
        remote_port: 6818
    reverse_forwards:
      - remote_port: 6817
        local_port: 6817
  delegate_to: localhost

- name: Restart a tunnel
  gpuops.platform.autossh_tunnel:
    name: gpuops-local-gpuops-0
    state: restarted
    host: 127.0.0.1
    port: 22022
    known_hosts: ~/.gpuops/known_hosts
    forwards:
      - local_port: 19400
        remote_port: 9400

- name: List the tunnels of a deployment
  ansible.builtin.find:
    paths: "{{ gpuops_state_dir }}/local/tunnels"
    patterns: "*.json"
  register: tunnel_files

- name: Stop them all
  gpuops.platform.autossh_tunnel:
    name: "{{ item.path | basename | splitext | first }}"
    state: absent
    state_dir: "{{ gpuops_state_dir }}/local/tunnels"
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
  description:
    - The pid of autossh (the systemd unit's main process under systemd). Null when the tunnel is absent, and in check
      mode when it would be started.
  returned: always
  type: int
  sample: 41872
forwards:
  description: The tunnel's local forwards.
  returned: when O(state) is not V(absent)
  type: list
  elements: dict
  contains:
    bind_address:
      description: The address the listener binds to.
      type: str
      sample: 127.0.0.1
    local_port:
      description: The listening port on this host.
      type: int
      sample: 19400
    remote_host:
      description: Where the pod connects to.
      type: str
      sample: 127.0.0.1
    remote_port:
      description: The port the pod connects to.
      type: int
      sample: 9400
  sample:
    - {bind_address: 127.0.0.1, local_port: 19400, remote_host: 127.0.0.1, remote_port: 9400}
reverse_forwards:
  description: The tunnel's reverse forwards.
  returned: when O(state) is not V(absent)
  type: list
  elements: dict
  version_added: 0.1.0
  contains:
    bind_address:
      description: The address the listener binds to, on the pod.
      type: str
      sample: 127.0.0.1
    remote_port:
      description: The listening port on the pod.
      type: int
      sample: 6817
    local_host:
      description: Where this host connects to.
      type: str
      sample: 127.0.0.1
    local_port:
      description: The port this host connects to.
      type: int
      sample: 6817
  sample:
    - {bind_address: 127.0.0.1, remote_port: 6817, local_host: 127.0.0.1, local_port: 6817}
command:
  description: The autossh command line, one list element per argument. It holds paths, never a secret.
  returned: when O(state) is not V(absent)
  type: list
  elements: str
  sample: [/usr/bin/autossh, -M, "0", -N, -T, -F, none, -o, BatchMode=yes, "...", -L, "127.0.0.1:19400:127.0.0.1:9400",
           127.0.0.1]
supervisor:
  description: What keeps the tunnel running, V(daemon) or V(systemd). Null when the tunnel is absent.
  returned: always
  type: str
  sample: daemon
established:
  description:
    - Whether every listener was up when the module finished (for O(reverse_forwards), whether ssh was connected to
      the pod). False in check mode, with O(wait_timeout=0) before ssh connected, and when the tunnel is absent.
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
unit_path:
  description: The systemd unit file.
  returned: when the supervisor is systemd
  type: str
  sample: /etc/systemd/system/gpuops-tunnel-gpuops-local-gpuops-0.service
log_tail:
  description: The end of the tunnel's log, when the task failed because the tunnel did not come up.
  returned: on failure
  type: str
  sample: "root@127.0.0.1: Permission denied (publickey)."
"""

import os
import pwd
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils._autossh import (
    DaemonSupervisor,
    HostKeyChanged,
    Lock,
    ProcessTable,
    Status,
    SystemdSupervisor,
    TunnelError,
    TunnelFiles,
    TunnelSpec,
    check_host,
    check_name,
    check_user,
    diagnose,
    forwards_result,
    host_key_message,
    parse_forwards,
    parse_reverse_forwards,
    port_answers,
    port_in_use,
    render_config,
    systemd_booted,
)


# Injected by the unit tests.
CLOCK = time.monotonic
SLEEP = time.sleep
PROCS = ProcessTable()
SYSTEMD_BOOTED = systemd_booted
SYSTEM_UNIT_DIR = "/etc/systemd/system"


class TunnelModule:
    """Reads the tunnel's state, compares it with the wanted one and acts."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        try:
            self.name = check_name(self.params["name"])
        except ValueError as err:
            module.fail_json(msg=str(err))
        self.files = TunnelFiles(self.params["state_dir"], self.name)
        self.result: dict[str, t.Any] = dict(
            changed=False, name=self.name, state="absent", pid=None, supervisor=None, established=False,
            config_path=self.files.config, log_path=self.files.log)

    # -- options ------------------------------------------------------------------------

    def _positive(self, name: str, minimum: int) -> int:
        value = self.params[name]
        if value < minimum:
            self.module.fail_json(msg="%s must be %d or more, got %d" % (name, minimum, value))
        return value

    def spec(self) -> TunnelSpec:
        p = self.params
        try:
            host = check_host(p["host"])
            user = check_user(p["user"])
            forwards = parse_forwards(p["forwards"], allow_empty=bool(p["reverse_forwards"]))
            reverse_forwards = parse_reverse_forwards(p["reverse_forwards"])
            alias = check_host(p["host_key_alias"], "host_key_alias") if p["host_key_alias"] else None
        except ValueError as err:
            self.module.fail_json(msg=str(err))
        if not 1 <= p["port"] <= 65535:
            self.module.fail_json(msg="port must be between 1 and 65535, got %d" % p["port"])
        known_hosts = os.path.abspath(p["known_hosts"])
        if not os.path.isdir(os.path.dirname(known_hosts)):
            self.module.fail_json(msg="the directory of known_hosts %s does not exist; create it (ssh adds the host key "
                                      "there on first contact)" % known_hosts)
        if os.path.isdir(known_hosts):
            self.module.fail_json(msg="known_hosts %s is a directory; give the path of a file" % known_hosts)
        private_key = None
        if p["private_key"]:
            private_key = os.path.abspath(p["private_key"])
            if not os.path.isfile(private_key):
                self.module.fail_json(msg="private_key %s does not exist or is not a file" % private_key)
        return TunnelSpec(
            name=self.name,
            host=host,
            port=p["port"],
            user=user,
            private_key=private_key,
            forwards=forwards,
            known_hosts=known_hosts,
            host_key_alias=alias,
            strict_host_key_checking=p["strict_host_key_checking"],
            server_alive_interval=self._positive("server_alive_interval", 1),
            server_alive_count_max=self._positive("server_alive_count_max", 1),
            exit_on_forward_failure=p["exit_on_forward_failure"],
            retry_max_interval=self._positive("retry_max_interval", 1),
            autossh_path=self._binary("autossh_path", "autossh", "autossh"),
            ssh_path=self._binary("ssh_path", "ssh", "openssh-client"),
            reverse_forwards=reverse_forwards,
        )

    def _binary(self, option: str, name: str, package: str) -> str:
        path = self.params[option]
        if path:
            path = os.path.abspath(path)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                self.module.fail_json(msg="%s %s is not an executable file" % (option, path))
            return path
        found = self.module.get_bin_path(name)
        if not found:
            self.module.fail_json(msg="%s is not installed on this host (the control host); install it, for example "
                                      "`apt-get install %s` on Debian or Ubuntu, or set %s" % (name, package, option))
        return found

    # -- supervisors --------------------------------------------------------------------

    def _run(self, cmd: list[str]) -> tuple[int, str, str]:
        environ = {}
        if os.geteuid() != 0 and not os.environ.get("XDG_RUNTIME_DIR"):
            environ["XDG_RUNTIME_DIR"] = "/run/user/%d" % os.geteuid()
        return self.module.run_command(cmd, environ_update=environ)

    def _systemd(self, scope: str) -> SystemdSupervisor:
        systemctl = self.module.get_bin_path("systemctl")
        if not systemctl:
            self.module.fail_json(msg="systemctl is not installed on this host; use supervisor=daemon")
        if scope == "system":
            unit_dir = SYSTEM_UNIT_DIR
        else:
            config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(pwd.getpwuid(os.geteuid()).pw_dir, ".config")
            unit_dir = os.path.join(config_home, "systemd", "user")
        return SystemdSupervisor(self.files, self._run, systemctl, scope, unit_dir, PROCS)

    def _daemon(self) -> DaemonSupervisor:
        return DaemonSupervisor(self.files, PROCS, clock=CLOCK, sleep=SLEEP)

    def wanted_supervisor(self) -> DaemonSupervisor | SystemdSupervisor:
        choice = self.params["supervisor"]
        if choice == "daemon":
            return self._daemon()
        scope = "system" if os.geteuid() == 0 else "user"
        if not SYSTEMD_BOOTED():
            if choice == "systemd":
                self.module.fail_json(msg="supervisor=systemd, but systemd is not running on this host (it is not PID 1); "
                                          "use supervisor=daemon or auto")
            return self._daemon()
        supervisor = self._systemd(scope)
        if scope == "user":
            rc, _out, err = supervisor._ctl("show-environment", check=False)  # pylint: disable=protected-access
            if rc != 0:
                if choice == "systemd":
                    self.module.fail_json(msg="supervisor=systemd, but the systemd user manager of uid %d does not answer "
                                              "(%s); log in through a session, or use supervisor=daemon"
                                              % (os.geteuid(), err.strip()))
                return self._daemon()
            user = pwd.getpwuid(os.geteuid()).pw_name
            if not os.path.exists("/var/lib/systemd/linger/%s" % user):
                self.module.warn("the tunnel runs in the systemd user manager of %s, which stops it when %s logs out; "
                                 "run `loginctl enable-linger %s` to keep it running" % (user, user, user))
        return supervisor

    def recorded_supervisor(self, config: dict | None) -> DaemonSupervisor | SystemdSupervisor | None:
        if not config or config.get("supervisor") not in ("daemon", "systemd"):
            return None
        if config["supervisor"] == "systemd":
            return self._systemd(config.get("scope") or ("system" if os.geteuid() == 0 else "user"))
        return self._daemon()

    def leftover_systemd(self) -> SystemdSupervisor | None:
        """A unit of this tunnel whose configuration file is gone."""
        if not SYSTEMD_BOOTED():
            return None
        supervisor = self._systemd("system" if os.geteuid() == 0 else "user")
        return supervisor if supervisor.read_unit() is not None else None

    # -- state --------------------------------------------------------------------------

    def config(self, spec: TunnelSpec, supervisor: DaemonSupervisor | SystemdSupervisor) -> dict:
        config = dict(
            name=spec.name,
            supervisor=supervisor.kind,
            host=spec.host,
            port=spec.port,
            user=spec.user,
            private_key=spec.private_key,
            known_hosts=spec.known_hosts,
            host_key_alias=spec.host_key_alias,
            forwards=forwards_result(spec.forwards),
            server_alive_interval=spec.server_alive_interval,
            server_alive_count_max=spec.server_alive_count_max,
            exit_on_forward_failure=spec.exit_on_forward_failure,
            retry_max_interval=spec.retry_max_interval,
            autossh_path=spec.autossh_path,
            ssh_path=spec.ssh_path,
            command=spec.command(),
            environment=supervisor.environment(spec),
        )
        # Only when there are some: the record of a tunnel without them stays as it was.
        if spec.reverse_forwards:
            config["reverse_forwards"] = forwards_result(spec.reverse_forwards)
        if isinstance(supervisor, SystemdSupervisor):
            config["scope"] = supervisor.scope
            config["unit"] = supervisor.unit_path
        return config

    @staticmethod
    def _view(config: dict | None, running: bool) -> str:
        if not config:
            return "" if not running else "# not recorded, but processes of the tunnel are running\n"
        return "# %s\n%s" % ("running" if running else "not running", render_config(config, compact_command=True))

    def _diff(self, before: dict | None, before_running: bool, after: dict | None, after_running: bool) -> None:
        if self.module._diff:  # pylint: disable=protected-access
            self.result["diff"] = dict(
                before=self._view(before, before_running), after=self._view(after, after_running),
                before_header=self.files.config, after_header=self.files.config)

    def established(self, spec: TunnelSpec, pid: int | None) -> bool:
        if not pid:
            return False
        if PROCS.available:
            pids = [pid] + PROCS.children(pid)
            listening = PROCS.listening(pids)
            if not all((fwd.bind_address, fwd.local_port) in listening for fwd in spec.forwards):
                return False
            # The pod's listeners of reverse forwards cannot be seen from here: ssh connected is what can.
            return not spec.reverse_forwards or PROCS.connected(pids)
        return all(port_answers(fwd.bind_address, fwd.local_port) for fwd in spec.forwards)

    def wait_established(self, spec: TunnelSpec, supervisor: DaemonSupervisor | SystemdSupervisor, log_offset: int) -> bool:
        """Wait until every listener is up; fail at once on what no retry fixes."""
        timeout = self._positive("wait_timeout", 0)
        deadline = CLOCK() + timeout
        while True:
            log = self.files.read_log(log_offset, limit=64 * 1024)
            found = diagnose(log)
            if found:
                supervisor.stop()
                self.result.update(pid=None, state="absent")
                tail = self.files.read_log(log_offset)
                if found[0] == "host_key":
                    raise HostKeyChanged(host_key_message(spec), tail)
                raise TunnelError("the tunnel %s to %s cannot work: %s. The tunnel was stopped; the log says:\n%s"
                                  % (self.name, spec.describe(), found[1], tail.strip()), tail)
            status = supervisor.status()
            if not status.running:
                tail = self.files.read_log(log_offset)
                raise TunnelError("autossh of the tunnel %s exited; the log %s says:\n%s"
                                  % (self.name, self.files.log, tail.strip()), tail)
            self.result["pid"] = status.pid
            if self.established(spec, status.pid):
                return True
            if CLOCK() >= deadline:
                if timeout == 0:
                    return False
                tail = self.files.read_log(log_offset)
                raise TunnelError(
                    "the tunnel %s to %s is not up after %d s (wait_timeout): autossh (pid %s) keeps trying in the "
                    "background. Is the pod reachable? The log %s says:\n%s"
                    % (self.name, spec.describe(), timeout, status.pid, self.files.log, tail.strip() or "(nothing yet)"),
                    tail)
            SLEEP(0.2)

    def _check_ports(self, spec: TunnelSpec, grace: float = 10.0) -> None:
        # The ssh of the tunnel just stopped may hold its listeners a moment longer while it exits.
        deadline = CLOCK() + grace
        for fwd in spec.forwards:
            while port_in_use(fwd.bind_address, fwd.local_port) and CLOCK() < deadline:
                SLEEP(0.2)
            if port_in_use(fwd.bind_address, fwd.local_port):
                self.module.fail_json(
                    msg="local port %d on %s is already in use by another program; choose another local_port, or stop "
                        "that program (`ss -ltnp 'sport = :%d'` shows it)" % (fwd.local_port, fwd.bind_address, fwd.local_port),
                    **self.result)

    # -- actions ------------------------------------------------------------------------

    def present(self, spec: TunnelSpec, supervisor: DaemonSupervisor | SystemdSupervisor, restart: bool) -> None:
        wanted = self.config(spec, supervisor)
        self.result.update(supervisor=supervisor.kind, forwards=forwards_result(spec.forwards),
                           reverse_forwards=forwards_result(spec.reverse_forwards), command=spec.command())
        if isinstance(supervisor, SystemdSupervisor):
            self.result["unit_path"] = supervisor.unit_path

        recorded = self.files.read_config()
        old = self.recorded_supervisor(recorded)
        status = old.status() if old else Status(False)
        leftovers = self._daemon().leftovers() if not status.running else []
        unit_current = True
        if isinstance(supervisor, SystemdSupervisor):
            unit_current = supervisor.read_unit() == supervisor.unit_text(spec)

        if restart:
            reason = "restarted"
        elif recorded != wanted:
            reason = "started" if recorded is None else "restarted with the new configuration"
        elif not status.running:
            reason = "started again (autossh was not running)"
        elif not unit_current:
            reason = "restarted (its unit file was missing or edited)"
        else:
            reason = None

        if reason is None:
            self.result.update(state="present", pid=status.pid)
            self._diff(recorded, True, wanted, True)
            if self.module.check_mode:
                self.result["established"] = self.established(spec, status.pid)
                self.module.exit_json(msg="the tunnel %s runs with this configuration" % self.name, **self.result)
            self.result["established"] = self.wait_established(spec, supervisor, self.files.log_size())
            self.module.exit_json(msg="the tunnel %s runs with this configuration" % self.name, **self.result)

        self.result.update(changed=True, state="present")
        self._diff(recorded, status.running or bool(leftovers), wanted, True)
        if self.module.check_mode:
            self.result["pid"] = None
            self.module.exit_json(msg="check mode: the tunnel %s would be %s" % (self.name, reason), **self.result)

        if old is not None:
            old.stop()
            if old.kind != supervisor.kind:
                old.remove()
        # An ssh whose autossh died still holds the listeners: stop it too.
        self._daemon().stop()
        self._check_ports(spec)
        self.files.write_config(wanted)
        log_offset = self.files.log_size()
        self.result["pid"] = supervisor.start(spec)
        if self.files.log_size() < log_offset:
            log_offset = 0  # rotated
        self.result["established"] = self.wait_established(spec, supervisor, log_offset)
        self.module.exit_json(msg="the tunnel %s was %s" % (self.name, reason), **self.result)

    def absent(self) -> None:
        recorded = self.files.read_config()
        old = self.recorded_supervisor(recorded)
        status = old.status() if old else Status(False)
        daemon = self._daemon()
        leftovers = daemon.leftovers()
        unit = self.leftover_systemd() if old is None else None
        files = [path for path in (self.files.config, self.files.pid, self.files.log) if os.path.exists(path)]
        if old is not None:
            self.result["supervisor"] = old.kind
        if not (recorded or status.running or leftovers or unit or files):
            self._diff(None, False, None, False)
            self.module.exit_json(msg="the tunnel %s is absent" % self.name, **self.result)
        self.result["changed"] = True
        self._diff(recorded, status.running or bool(leftovers), None, False)
        if self.module.check_mode:
            self.module.exit_json(msg="check mode: the tunnel %s would be stopped and removed" % self.name, **self.result)
        for supervisor in (old, unit):
            if supervisor is not None:
                supervisor.stop()
                supervisor.remove()
        daemon.stop()
        self.files.remove()
        self.module.exit_json(msg="the tunnel %s was stopped and removed" % self.name, **self.result)

    def run(self) -> None:
        state = self.params["state"]
        action: t.Callable[[], None] = self.absent
        if state != "absent":
            # Every option is checked before anything is created or started.
            spec = self.spec()
            self._positive("wait_timeout", 0)
            supervisor = self.wanted_supervisor()

            def action() -> None:
                self.present(spec, supervisor, restart=state == "restarted")
        try:
            if self.module.check_mode or (state == "absent" and not os.path.isdir(self.files.state_dir)):
                action()
                return
            self.files.ensure_dir()
            with Lock(self.files.lock, clock=CLOCK, sleep=SLEEP) as lock:
                # Removing the tunnel removes its lock file too; a present tunnel keeps it.
                lock.remove_on_exit = state == "absent"
                action()
        except HostKeyChanged as err:
            self.module.fail_json(msg=err.message, log_tail=err.log_tail, **self.result)
        except TunnelError as err:
            self.module.fail_json(msg=err.message, log_tail=err.log_tail, **self.result)
        except OSError as err:
            self.module.fail_json(msg="the tunnel %s: %s" % (self.name, err), **self.result)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent", "restarted"]),
            host=dict(type="str"),
            port=dict(type="int", default=22),
            user=dict(type="str", default="root"),
            private_key=dict(type="path"),
            forwards=dict(
                type="list",
                elements="dict",
                options=dict(
                    local_port=dict(type="int", required=True),
                    remote_host=dict(type="str", default="127.0.0.1"),
                    remote_port=dict(type="int", required=True),
                    bind_address=dict(type="str", default="127.0.0.1"),
                ),
            ),
            reverse_forwards=dict(
                type="list",
                elements="dict",
                options=dict(
                    remote_port=dict(type="int", required=True),
                    local_host=dict(type="str", default="127.0.0.1"),
                    local_port=dict(type="int", required=True),
                    bind_address=dict(type="str", default="127.0.0.1"),
                ),
            ),
            known_hosts=dict(type="path"),
            host_key_alias=dict(type="str", no_log=False),
            strict_host_key_checking=dict(type="bool", default=False),
            server_alive_interval=dict(type="int", default=10),
            server_alive_count_max=dict(type="int", default=3),
            exit_on_forward_failure=dict(type="bool", default=True),
            retry_max_interval=dict(type="int", default=30),
            wait_timeout=dict(type="int", default=30),
            state_dir=dict(type="path", default="~/.local/state/gpuops/tunnels"),
            supervisor=dict(type="str", default="auto", choices=["auto", "systemd", "daemon"]),
            autossh_path=dict(type="path"),
            ssh_path=dict(type="path"),
        ),
        required_if=[
            ("state", "present", ("host", "known_hosts")),
            ("state", "restarted", ("host", "known_hosts")),
            ("state", "present", ("forwards", "reverse_forwards"), True),
            ("state", "restarted", ("forwards", "reverse_forwards"), True),
        ],
        supports_check_mode=True,
    )
    TunnelModule(module).run()


if __name__ == "__main__":
    main()
