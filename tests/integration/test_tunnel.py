"""SSH tunnels from the control host to local-cloud pods (gpuops.platform.autossh_tunnel, playbooks/tunnel.yml).

Everything is real: 2 local-cloud pods with sshd, autossh and ssh on this
machine, autossh in its own background mode (supervisor=daemon), a small HTTP
server on each pod's loopback standing in for the GPU exporter (9400) and,
on the controller, slurmrestd (6820). The module runs through `ansible`, one
process per step, so every step also proves that the tunnel outlives the
Ansible process that started it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import httpx
import pytest

from tests.integration.helpers import VENV_BIN, Deployment, docker_available, free_port, free_port_block, host_key_alias, recap, run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
    pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc"),
]

PREFIX = "gpuopstun"
MODULE = "gpuops.platform.autossh_tunnel"


# -- helpers ----------------------------------------------------------------------------------------


def http_ok(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=timeout) as answer:
            return answer.status == 200
    except OSError:
        return False


def wait_until(predicate, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held, or None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.25)
    return None


def proc_stat(pid: int) -> tuple[str, int] | None:
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def alive(pid: int | None) -> bool:
    stat = proc_stat(pid) if pid else None
    return stat is not None and stat[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    result = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[1] == pid and stat[0] not in ("Z", "X"):
                result.append(int(entry))
    return result


def tagged(prefix: str) -> list[int]:
    """Live processes whose GPUOPS_TUNNEL starts with ``prefix`` (autossh and ssh of our tunnels)."""
    needle = ("GPUOPS_TUNNEL=" + prefix).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        if any(item.startswith(needle) for item in environ) and alive(int(entry)):
            found.append(int(entry))
    return found


def listen_addresses(port: int) -> set[str]:
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True, check=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def module(dep: Deployment, args: dict, *flags: str, check: bool = True) -> dict:
    """Run the module once with `ansible localhost`; returns its result."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_LOCALHOST_WARNING="0")
    result = run([str(VENV_BIN / "ansible"), "-i", str(dep.inventory), "localhost", "-m", MODULE,
                  "-a", json.dumps(args), *flags], check=False, env=env, timeout=180)
    try:
        output = json.loads(result.stdout)
        answer = output["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("no module result\n--- stdout\n%s\n--- stderr\n%s" % (result.stdout[-4000:], result.stderr[-4000:])) from None
    if check:
        assert not answer.get("failed"), "%s\n%s" % (answer.get("msg"), answer)
    return answer


# -- the deployment ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    root = tmp_path_factory.mktemp("tunnel")
    dep = Deployment(root, prefix=PREFIX)
    dep.tunnel_dir = root / "module-tunnels"
    try:
        dep.playbook("provision.yml")
        dep.pod_list = sorted(dep.pods().values(), key=lambda pod: pod["name"])
        dep.seen_ids.update(pod["id"] for pod in dep.pod_list)
        for pod in dep.pod_list:
            # Stand-ins for the GPU exporter (every pod) and slurmrestd (the controller), on the pod's loopback only.
            for port in (9400, 6820):
                dep.pod_exec(pod["id"], "cd /tmp && nohup python3 -m http.server --bind 127.0.0.1 %d "
                                        ">/tmp/http-%d.log 2>&1 &" % (port, port))
        for pod in dep.pod_list:
            dep.pod_exec(pod["id"], "for i in $(seq 50); do curl -fs http://127.0.0.1:9400/ >/dev/null && "
                                    "curl -fs http://127.0.0.1:6820/ >/dev/null && exit 0; sleep 0.1; done; exit 1")
        yield dep
    finally:
        # Never leave a tunnel or a pod behind, whatever failed.
        for pid in tagged(str(root)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if dep.api_key_file.exists():
            dep.playbook("teardown.yml", check=False)
        dep.stop()


def tunnel_args(dep: Deployment, pod: dict, local_port: int, **changes) -> dict:
    ssh_dir = dep.state_dir / "local" / "ssh"
    args = dict(
        name="it-%s" % pod["name"],
        host="127.0.0.1",
        port=pod["ssh"]["direct"]["port"],
        private_key=str(ssh_dir / "id_ed25519"),
        known_hosts=str(ssh_dir / "known_hosts"),
        host_key_alias=host_key_alias(pod),
        state_dir=str(dep.tunnel_dir),
        supervisor="daemon",
        forwards=[{"local_port": local_port, "remote_port": 9400}],
        # Short keep-alives and back-off so that the fault tests run in seconds.
        server_alive_interval=2,
        server_alive_count_max=2,
        retry_max_interval=3,
    )
    args.update(changes)
    return args


def localcloud_fault(dep: Deployment, pod_id: str, action: str) -> None:
    answer = httpx.post("http://127.0.0.1:%d/_localcloud/pods/%s/network/%s" % (dep.port, pod_id, action),
                        headers={"Authorization": "Bearer " + dep.api_key_file.read_text().strip()}, timeout=60)
    assert answer.status_code < 300, answer.text


# -- the module -------------------------------------------------------------------------------------------


def test_module_rhythm_and_faults(deployment):
    dep = deployment
    pod = dep.pod_list[0]
    port, other_port = free_port(), free_port()
    args = tunnel_args(dep, pod, port)
    absent = dict(name=args["name"], state="absent", state_dir=args["state_dir"])
    tag = str(dep.tunnel_dir / args["name"])
    timings = {}

    # check mode + diff: would start; nothing runs
    result = module(dep, args, "--check", "--diff")
    assert result["changed"] is True
    assert '"local_port": %d' % port in result["diff"]["after"]
    assert tagged(tag) == []
    assert not http_ok(port)

    # apply: the tunnel is up once the task returns, on loopback only, and outlives `ansible`
    started = time.monotonic()
    result = module(dep, args, "--diff")
    timings["start"] = time.monotonic() - started
    assert result["changed"] is True
    assert result["supervisor"] == "daemon"
    assert result["established"] is True
    pid = result["pid"]
    assert http_ok(port)
    assert listen_addresses(port) == {"127.0.0.1"}
    assert "StrictHostKeyChecking=no" not in " ".join(result["command"])
    assert alive(pid) and proc_stat(pid)[1] != os.getpid()
    assert os.getsid(pid) != os.getsid(0)

    # same again: no change
    result = module(dep, args, "--diff")
    assert result["changed"] is False
    assert result["pid"] == pid
    assert result["diff"]["before"] == result["diff"]["after"]

    # the ssh child dies (killed, like the OOM killer does): autossh starts a new one
    ssh_children = children(pid)
    assert len(ssh_children) == 1
    os.kill(ssh_children[0], signal.SIGKILL)
    timings["ssh_killed"] = wait_until(lambda: children(pid) not in ([], ssh_children) and http_ok(port, 1), 15)
    assert timings["ssh_killed"] is not None, "the tunnel did not come back within 15 s after its ssh was killed"
    assert module(dep, args)["changed"] is False

    # the network of the pod is cut, then restored: the tunnel recovers by itself
    localcloud_fault(dep, pod["id"], "cut")
    try:
        assert wait_until(lambda: not http_ok(port, 1), 20) is not None, "the tunnel still answers with the network cut"
    finally:
        localcloud_fault(dep, pod["id"], "restore")
    timings["network_restored"] = wait_until(lambda: http_ok(port, 1), 45)
    assert timings["network_restored"] is not None, "the tunnel did not recover within 45 s after the network came back"
    assert alive(pid)
    assert module(dep, args)["changed"] is False

    # autossh itself is killed: the next run restarts it (and stops the orphaned ssh)
    orphans = children(pid)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), 5) is not None
    result = module(dep, args, "--diff")
    assert result["changed"] is True
    assert "autossh was not running" in result["msg"]
    assert result["pid"] != pid
    assert not any(alive(orphan) for orphan in orphans)
    pid = result["pid"]
    assert http_ok(port)
    assert module(dep, args)["changed"] is False

    # change a forward: restarted with the new configuration
    changed_args = tunnel_args(dep, pod, other_port)
    result = module(dep, changed_args, "--check", "--diff")
    assert result["changed"] is True and alive(pid)
    result = module(dep, changed_args, "--diff")
    assert result["changed"] is True
    assert '"local_port": %d' % port in result["diff"]["before"]
    assert '"local_port": %d' % other_port in result["diff"]["after"]
    assert http_ok(other_port) and not http_ok(port)
    assert not alive(pid)
    assert module(dep, changed_args)["changed"] is False

    # remove, and remove again
    result = module(dep, absent, "--check")
    assert result["changed"] is True and tagged(tag)
    result = module(dep, absent)
    assert result["changed"] is True
    assert tagged(tag) == []
    assert not http_ok(other_port)
    assert module(dep, absent)["changed"] is False
    assert not (dep.tunnel_dir / ("%s.json" % args["name"])).exists()
    print("tunnel timings (s): %s" % {k: round(v, 2) for k, v in timings.items()})


def test_refuses_wildcard_bind_address(deployment):
    pod = deployment.pod_list[0]
    port = free_port()
    for address in ("0.0.0.0", "::", "*"):
        args = tunnel_args(deployment, pod, port, forwards=[{"local_port": port, "remote_port": 9400, "bind_address": address}])
        result = module(deployment, args, check=False)
        assert result.get("failed"), result
        assert "every interface" in result["msg"]
    assert listen_addresses(port) == set()


def test_changed_host_key_fails_clearly(deployment):
    dep = deployment
    pod = dep.pod_list[1]
    port = free_port()
    args = tunnel_args(dep, pod, port)
    known_hosts = dep.state_dir / "local" / "ssh" / "known_hosts"
    original = known_hosts.read_text()
    alias = host_key_alias(pod)
    # Provision pinned the pod's key under its alias (unhashed: inventories/common.yml sets HashKnownHosts=no).
    found = subprocess.run(["ssh-keygen", "-F", alias, "-f", str(known_hosts)], capture_output=True, text=True, check=False)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout, found
    # Another key for the same alias: what a replaced or impersonated pod looks like.
    other = dep.tunnel_dir.parent / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], capture_output=True, check=True,
                   input=b"y\n")
    fake_key = (dep.tunnel_dir.parent / "other.pub").read_text().split()[:2]
    try:
        subprocess.run(["ssh-keygen", "-R", alias, "-f", str(known_hosts)], capture_output=True, check=True)
        with known_hosts.open("a") as handle:
            handle.write("%s %s %s\n" % (alias, fake_key[0], fake_key[1]))
        result = module(dep, args, check=False)
        assert result.get("failed"), result
        assert "host key verification failed" in result["msg"]
        assert alias in result["msg"] and "ssh-keygen -R %s" % alias in result["msg"]
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result["log_tail"]
        assert tagged(str(dep.tunnel_dir / args["name"])) == []
        assert not http_ok(port)
        # The pinned (fake) key was not replaced by the one the host offered.
        assert fake_key[1] in known_hosts.read_text()
    finally:
        known_hosts.write_text(original)
    result = module(dep, args)
    assert result["changed"] is True and http_ok(port)
    assert module(dep, dict(name=args["name"], state="absent", state_dir=args["state_dir"]))["changed"] is True


# -- the playbook ------------------------------------------------------------------------------------------


def test_tunnel_playbook_is_idempotent_with_stable_ports(deployment):
    dep = deployment
    base = free_port_block(4)
    slurmd_port, ctld_port, output_port, api_port = free_port(), free_port(), free_port(), free_port()
    ports = ["-e", "gpuops_tunnel_port_base=%d" % base, "-e", "slurm_controller_slurmd_port=%d" % slurmd_port,
             "-e", "slurm_controller_slurmctld_port=%d" % ctld_port, "-e", "slurm_job_output_port=%d" % output_port,
             "-e", "app_api_port=%d" % api_port]
    tunnels = dep.state_dir / "local" / "tunnels"
    first = dep.playbook("tunnel.yml", *ports)
    counts = recap(first.stdout)
    names = [pod["name"] for pod in dep.pod_list]
    assert all(counts[name]["changed"] == 1 for name in names), counts
    # pod i: its exporter on 127.0.0.1:<base + 2i>; its slurmd at its node's address 127.0.1.<i + 1>, where
    # slurmctld reaches it; and slurmctld's port back on the pod's loopback (a reverse forward).
    assert http_ok(base) and http_ok(base + 2)
    assert listen_addresses(base + 2) == {"127.0.0.1"}
    assert listen_addresses(base + 1) == set() and listen_addresses(base + 3) == set()
    assert listen_addresses(slurmd_port) == {"127.0.1.1", "127.0.1.2"}
    config = json.loads((tunnels / ("gpuops-local-%s.json" % names[0])).read_text())
    assert [f["local_port"] for f in config["forwards"]] == [base, slurmd_port]
    assert [f["remote_port"] for f in config["forwards"]] == [9400, slurmd_port]
    assert [f["bind_address"] for f in config["forwards"]] == ["127.0.0.1", "127.0.1.1"]
    # ... and the API, where the node's Epilog hands over finished jobs' output.
    assert [(f["remote_port"], f["local_host"], f["local_port"]) for f in config["reverse_forwards"]] == [
        (ctld_port, "127.0.0.1", ctld_port), (output_port, "127.0.0.1", api_port)]
    assert config["host_key_alias"] == host_key_alias(dep.pod_list[0])
    assert config["known_hosts"] == str(dep.state_dir / "local" / "ssh" / "known_hosts")
    pids = {name: (tunnels / ("gpuops-local-%s.pid" % name)).read_text().strip() for name in names}

    second = dep.playbook("tunnel.yml", *ports)
    counts = recap(second.stdout)
    assert counts and all(c["changed"] == 0 for c in counts.values()), counts
    assert pids == {name: (tunnels / ("gpuops-local-%s.pid" % name)).read_text().strip() for name in names}
    assert http_ok(base) and http_ok(base + 2)

    check = dep.playbook("tunnel.yml", *ports, "--check", "--diff")
    assert all(c["changed"] == 0 for c in recap(check.stdout).values())


def test_teardown_stops_the_tunnels_first(deployment):
    dep = deployment
    tunnels = dep.state_dir / "local" / "tunnels"
    assert list(tunnels.glob("*.json")), "the playbook test left its tunnels running"
    result = dep.playbook("teardown.yml")
    out = result.stdout
    # The tunnels go first, while the pods still exist.
    assert out.index("PLAY [Stop the tunnels that no pod needs]") < out.index("PLAY [Tear down the pods]")
    for pod in dep.pod_list:
        # On the service plane's host (inventories/service_plane.yml), where the tunnels run.
        assert "changed: [gpuops-service-plane] => (item=gpuops-local-%s)" % pod["name"] in out
    assert tagged(str(tunnels)) == []
    assert list(tunnels.glob("*.json")) == []
    assert dep.api().get("/pods").json() == {"pods": []}
    again = dep.playbook("teardown.yml")
    assert all(c["changed"] == 0 for c in recap(again.stdout).values())
