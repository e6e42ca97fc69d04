#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: runpod_host_keys
short_description: Pin a RunPod pod's SSH host keys from the pod's log, before any SSH contact
version_added: 0.2.0
description:
  - Checks the SSH host keys that a pod's C(ssh.direct) endpoint presents against the fingerprints that the pod's own
    log shows, and pins the keys that match in a known_hosts file under the pod's C(HostKeyAlias). The log comes from
    the RunPod API (C(GET /v2/pods/{id}/logs)), a channel other than the SSH connection itself, so a man in the middle
    of the SSH connection cannot forge it.
  - RunPod's official images make new host keys at every start of a pod and print their fingerprints
    (C(ssh-keygen -lf)) after the line C(Pod Started). The module takes the fingerprints after the last
    C(Pod Started) line that belongs to the pod's current start (C(startedAt)).
  - The keys are read with C(ssh-keyscan) and fingerprinted with C(ssh-keygen -l), the OpenSSH tools; no SSH
    session is opened and nothing is sent to the pod.
  - A key presented by the endpoint that the log does not show fails the module, naming the pod and both
    fingerprints, and nothing is pinned.
  - "Runs on the control host (C(delegate_to: localhost)). Waits until the pod's sshd answers and its log shows the
    fingerprints, up to O(timeout) seconds."
  - Keys already pinned under the pod's current alias, and presented again by the endpoint, are not checked against
    the log again (they were when they were pinned); each entry records how it was trusted, and under O(trust=logs)
    only entries pinned from the log count. So a second run costs one C(ssh-keyscan), not a read of the log.
author:
  - gpuops maintainers (@gpuops)
extends_documentation_fragment:
  - gpuops.platform.runpod
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode the keys are checked but known_hosts is not written.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  pod_id:
    description:
      - The pod's id (hostvar C(runpod_pod_id) of the gpuops.platform.runpod inventory).
    type: str
    required: true
  host_key_alias:
    description:
      - The alias the keys are pinned under, which the SSH connections use as C(HostKeyAlias).
      - When set it must be the pod's current alias, C(runpod-<podId>-<startedAt as UTC epoch seconds>) (hostvar
        C(runpod_host_key_alias)); another value means that the pod restarted since the inventory was read, and the
        module fails rather than pin the new keys under the old start's alias.
      - When not set, the pod's current alias is used.
    type: str
  known_hosts:
    description:
      - The known_hosts file (C(UserKnownHostsFile)) the keys are pinned in; created (mode 0600) when missing.
      - Entries are written unhashed, one per key, as C(<alias> <type> <key> gpuops-trusted-by=<logs|tofu>); the
        comment records how the key was trusted.
    type: path
    required: true
  trust:
    description:
      - V(logs) pins only keys whose fingerprint the pod's log shows, and fails when the log shows none (an image
        that does not print them).
      - V(tofu) does the same when the log shows fingerprints; when it shows none, it trusts and pins the keys the
        endpoint presents on this first contact (trust on first use), with a warning. A fallback for images that
        print no fingerprints, to be chosen explicitly.
    type: str
    choices: [logs, tofu]
    default: logs
  timeout:
    description:
      - Seconds to wait in all for the pod's sshd to answer and for its log to show the fingerprints.
    type: int
    default: 300
  log_grace:
    description:
      - Seconds the log may lag behind the pod's sshd. RunPod's start script prints the fingerprints before it starts
        sshd, so once sshd answers the log has them, or gets them within this time; after it the log counts as
        holding none.
    type: int
    default: 30
  log_idle:
    description:
      - The log is a stream that the API keeps open; its backfill counts as read after this many seconds without a
        new line.
    type: int
    default: 3
  keyscan_timeout:
    description:
      - Seconds C(ssh-keyscan) waits for the pod's sshd on one try (its C(-T)).
    type: int
    default: 5
requirements:
  - C(ssh-keyscan) and C(ssh-keygen) (OpenSSH) on the control host.
notes:
  - Use C(StrictHostKeyChecking=yes) on the SSH connections to pods pinned this way, so that no other key is ever
    accepted.
  - The local cloud of gpuops serves the same log route, from the pod container's own log.
seealso:
  - module: gpuops.platform.runpod_pod_info
  - plugin: gpuops.platform.runpod
    plugin_type: inventory
"""

EXAMPLES = r"""
- name: Pin the pod's SSH host keys from its log, before any SSH contact
  gpuops.platform.runpod_host_keys:
    pod_id: "{{ runpod_pod_id }}"
    host_key_alias: "{{ runpod_host_key_alias }}"
    known_hosts: "{{ gpuops_state_dir }}/runpod/ssh/known_hosts"
  delegate_to: localhost

- name: The same on the local cloud, trusting on first use where the image prints no fingerprints
  gpuops.platform.runpod_host_keys:
    base_url: http://127.0.0.1:8765/v2
    api_key_file: .gpuops/localcloud/api_key
    pod_id: "{{ runpod_pod_id }}"
    known_hosts: .gpuops/local/ssh/known_hosts
    trust: tofu
  delegate_to: localhost
"""

RETURN = r"""
host_key_alias:
  description: The alias the keys are pinned under.
  returned: success
  type: str
  sample: runpod-7h9k2m4n6p-1780315320
trusted_by:
  description:
    - V(logs) when the keys matched the fingerprints of the pod's log, V(tofu) when they were trusted on first use;
      for keys that were already pinned (RV(already_pinned)), how they were trusted then.
  returned: success
  type: str
  sample: logs
pinned:
  description: The keys pinned under the alias.
  returned: success
  type: list
  elements: dict
  contains:
    type:
      description: Key type as ssh-keygen names it.
      type: str
      sample: ED25519
    fingerprint:
      description: SHA256 fingerprint.
      type: str
      sample: SHA256:2Vf5bT0c4C6l5aVrHj8T0r3bq4vO0r3m1l4pZk2Yb8s
    bits:
      description: Key size in bits.
      type: int
      sample: 256
already_pinned:
  description: Whether known_hosts already pinned these keys for the pod's current start, so that the log was not read.
  returned: success
  type: bool
  sample: true
logged:
  description:
    - The fingerprints that the pod's log shows for its current start (empty when it shows none, or when it was not
      read because the keys were already pinned).
  returned: success
  type: list
  elements: str
  sample: [SHA256:2Vf5bT0c4C6l5aVrHj8T0r3bq4vO0r3m1l4pZk2Yb8s]
"""

import fcntl
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpuops.platform.plugins.module_utils._runpod_api import (
    LOG_TAIL_MAX,
    POD_START_MARKER,
    RunPodAPIError,
    parse_fingerprint_line,
    start_host_keys,
)
from ansible_collections.gpuops.platform.plugins.module_utils._runpod_module import (
    client_from_module,
    fail_from_error,
    runpod_argument_spec,
)

POLL = 2.0
#: The comment of each pinned entry: how its key was trusted.
TRUST_MARK = "gpuops-trusted-by="


class HostKeys:
    """ssh-keyscan and ssh-keygen, through the module."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.keyscan = module.get_bin_path("ssh-keyscan", required=True)
        self.keygen = module.get_bin_path("ssh-keygen", required=True)

    def scan(self, host: str, port: int, timeout: int) -> list:
        """(type, base64) of every host key the sshd at host:port presents; empty when it does not answer."""
        rc, out, _err = self.module.run_command([self.keyscan, "-T", str(timeout), "-p", str(port), host])
        keys = set()
        for line in out.splitlines():
            fields = line.split()
            if line.startswith("#") or len(fields) < 3:
                continue
            keys.add((fields[1], fields[2]))
        return sorted(keys)

    def fingerprints(self, keys: list, alias: str) -> list:
        """The ssh-keygen -l fingerprint of each (type, base64) key, in order."""
        if not keys:
            return []
        handle, path = tempfile.mkstemp(prefix="gpuops-host-keys-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                for key_type, blob in keys:
                    out.write("%s %s %s\n" % (alias, key_type, blob))
            rc, out, err = self.module.run_command([self.keygen, "-l", "-E", "sha256", "-f", path])
        finally:
            os.unlink(path)
        found = [parse_fingerprint_line(line) for line in out.splitlines() if line.strip()]
        if rc != 0 or len(found) != len(keys) or None in found:
            self.module.fail_json(msg="ssh-keygen -l could not fingerprint the keys that ssh-keyscan returned for %s "
                                      "(rc %s): %s" % (alias, rc, (err or out).strip()))
        return found

    def pinned(self, known_hosts: str, alias: str) -> tuple[list, set]:
        """(type, base64) of the keys known_hosts holds for alias (ssh-keygen -F), and how they were trusted
        (each entry's mark; "" for an entry without one)."""
        if not os.path.exists(known_hosts):
            return [], set()
        _rc, out, _err = self.module.run_command([self.keygen, "-F", alias, "-f", known_hosts])
        keys, marks = set(), set()
        for line in out.splitlines():
            fields = line.split()
            if line.startswith("#") or len(fields) < 3:
                continue
            keys.add((fields[1], fields[2]))
            marks.add(next((f[len(TRUST_MARK):] for f in fields[3:] if f.startswith(TRUST_MARK)), ""))
        return sorted(keys), marks

    def pin(self, known_hosts: str, alias: str, keys: list, trusted_by: str) -> None:
        """Replace the entries of alias in known_hosts by keys (ssh-keygen -R, then append), under a lock."""
        directory = os.path.dirname(os.path.abspath(known_hosts))
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
        with open(known_hosts + ".lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not os.path.exists(known_hosts):
                os.close(os.open(known_hosts, os.O_WRONLY | os.O_CREAT, 0o600))
            rc, _out, err = self.module.run_command([self.keygen, "-R", alias, "-f", known_hosts])
            if rc != 0:
                self.module.fail_json(msg="ssh-keygen -R %s -f %s failed: %s" % (alias, known_hosts, err.strip()))
            if os.path.exists(known_hosts + ".old"):
                os.unlink(known_hosts + ".old")
            with open(known_hosts, "a", encoding="utf-8") as out:
                for key_type, blob in keys:
                    out.write("%s %s %s %s%s\n" % (alias, key_type, blob, TRUST_MARK, trusted_by))


def _listing(fingerprints) -> str:
    return ", ".join("%s (%s)" % (fp.fingerprint, fp.key_type) for fp in fingerprints) or "none"


def main() -> None:
    argument_spec = runpod_argument_spec()
    argument_spec.update(
        pod_id=dict(type="str", required=True),
        host_key_alias=dict(type="str", no_log=False),
        known_hosts=dict(type="path", required=True),
        trust=dict(type="str", choices=["logs", "tofu"], default="logs"),
        timeout=dict(type="int", default=300),
        log_grace=dict(type="int", default=30),
        log_idle=dict(type="int", default=3),
        keyscan_timeout=dict(type="int", default=5),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    pod_id = params["pod_id"]
    tools = HostKeys(module)
    client = client_from_module(module)
    deadline = time.monotonic() + max(0, params["timeout"])
    sshd_since = None
    waited_for = "the pod to run with ssh.direct"
    while True:
        try:
            pod = client.get_pod(pod_id)
        except RunPodAPIError as err:
            fail_from_error(module, err)
        alias = pod.host_key_alias
        if params["host_key_alias"] and alias and params["host_key_alias"] != alias:
            module.fail_json(
                msg="pod %s restarted since the inventory was read: its host key alias is now %s, not %s (a new start "
                    "has new host keys); rerun the playbook, which reads the inventory again"
                    % (pod_id, alias, params["host_key_alias"]))
        logged = None
        scanned = []
        if pod.ssh_ready and alias:
            waited_for = "the pod's sshd at %s:%s to answer ssh-keyscan" % (pod.ssh_host, pod.ssh_port)
            scanned = tools.scan(pod.ssh_host, pod.ssh_port, params["keyscan_timeout"])
        if scanned:
            current, marks = tools.pinned(params["known_hosts"], alias)
            # Pinned for this start (the alias names it) and presented again: checked when they were pinned.
            accepted = {"logs", "tofu"} if params["trust"] == "tofu" else {"logs"}
            if current == scanned and len(marks) == 1 and marks <= accepted:
                module.exit_json(changed=False, host_key_alias=alias, trusted_by=marks.pop(), already_pinned=True,
                                 logged=[], pinned=[fp.as_dict() for fp in tools.fingerprints(scanned, alias)])
            sshd_since = sshd_since or time.monotonic()
            try:
                events = client.pod_logs(pod_id, source="container", tail=LOG_TAIL_MAX, idle=params["log_idle"])
            except RunPodAPIError as err:
                fail_from_error(module, err)
            logged = start_host_keys(events, pod.started_at)
            if logged is not None and logged.fingerprints:
                break
            if time.monotonic() - sshd_since >= params["log_grace"]:
                break
            waited_for = "the pod's log to show its SSH host key fingerprints"
        if time.monotonic() >= deadline:
            module.fail_json(msg="pod %s: gave up after %ss waiting for %s; check the pod (status %s) and rerun, or "
                                 "raise the timeout" % (pod_id, params["timeout"], waited_for, pod.status))
        time.sleep(POLL)

    presented = tools.fingerprints(scanned, alias)
    endpoint = "%s:%s" % (pod.ssh_host, pod.ssh_port)
    result = dict(changed=False, host_key_alias=alias, already_pinned=False,
                  logged=list(logged.values) if logged else [])
    if logged is not None and logged.fingerprints:
        unknown = [fp for fp in presented if fp.fingerprint not in logged.values]
        if unknown:
            module.fail_json(
                msg="SSH host key MISMATCH for pod %s (%s) at %s: the sshd there presents %s, which the pod's log "
                    "(GET /v2/pods/%s/logs, start of %s) does not show; the log shows %s. Something other than the "
                    "pod answers (a man in the middle) or the pod's keys changed without a restart: no SSH "
                    "connection was made and nothing was pinned. Check the pod in the RunPod console, then replace "
                    "it (terminate it, and rerun site.yml)."
                    % (pod_id, alias, endpoint, _listing(unknown), pod_id, logged.marker_ts, _listing(logged.fingerprints)),
                    presented=[fp.as_dict() for fp in presented], **result)
        result["trusted_by"] = "logs"
    elif params["trust"] == "tofu":
        module.warn("pod %s: its log shows no SSH host key fingerprints for its current start (startedAt %s), so the "
                    "keys its sshd at %s presents now are trusted on first use (trust=tofu): %s"
                    % (pod_id, pod.started_at, endpoint, _listing(presented)))
        result["trusted_by"] = "tofu"
    else:
        module.fail_json(
            msg="pod %s: its log (GET /v2/pods/%s/logs) shows no SSH host key fingerprints for its current start "
                "(startedAt %s)%s, so its host keys cannot be checked before the first SSH contact. RunPod's official "
                "images print them at every start (`ssh-keygen -lf` after the line '%s'); use such an image, or one "
                "that prints them the same way, or accept the keys on first use with -e gpuops_ssh_host_key_trust=tofu "
                "(see the README, Security). No SSH connection was made and nothing was pinned."
                % (pod_id, pod_id, pod.started_at,
                   "" if logged is not None else ": no '%s' line of that start" % POD_START_MARKER, POD_START_MARKER),
            **result)

    result["pinned"] = [fp.as_dict() for fp in presented]
    current, marks = tools.pinned(params["known_hosts"], alias)
    if current and current != scanned and result["trusted_by"] == "tofu":
        module.fail_json(
            msg="SSH host key CHANGED for pod %s (%s) at %s: %s pins other keys for this start than the sshd there "
                "presents now (%s), and the pod's log shows no fingerprints to tell which is right. Nothing was "
                "changed. Check the pod; if it is right, remove its entries with ssh-keygen -R %s -f %s and rerun."
                % (pod_id, alias, endpoint, params["known_hosts"], _listing(presented), alias, params["known_hosts"]),
            **result)
    # Also the same keys, pinned without the mark of how they were trusted (an older gpuops) or by tofu and now
    # checked against the log: written again with it.
    if current != scanned or marks != {result["trusted_by"]}:
        result["changed"] = True
        if not module.check_mode:
            tools.pin(params["known_hosts"], alias, scanned, result["trusted_by"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
