"""The stand-in for RunPod's PyTorch image, and the roles on it.

Runs gpuops/runpod-pytorch-standin:latest (built by scripts/setup.sh; this
test builds nothing) and checks every trait its README lists: /usr/bin/python3
without the APT bindings (Ansible's apt module fails under it), NVIDIA's CUDA
source and keyring (a second source with another Signed-By breaks apt), the
start script (PUBLIC_KEY, sshd without systemd, new host keys at every start,
their fingerprints in the pod's log), the distribution's Slurm and munge
installed with a munge key baked into the image, no DCGM. Then the product fixes on it: the roles choose the
Python with the APT bindings and install the fact prerequisites, and the
dcgm_exporter role reuses the image's CUDA source and leaves apt working when
DCGM cannot be installed.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.integration.helpers import VENV_BIN, docker_available, recap, run, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (run make setup)"),
]

IMAGE = "gpuops/runpod-pytorch-standin:latest"
CUDA_LIST = "/etc/apt/sources.list.d/cuda-debian13-x86_64.list"
#: The distribution's own Python (the one with python3-apt); /usr/bin/python3 is another.
SYSTEM_PYTHON = "/usr/bin/python3.13"
KEYRING = "/usr/share/keyrings/cuda-archive-keyring.gpg"
#: The repository that source names (a local flat repository of the stand-in, under NVIDIA's path).
CUDA_REPO = "file:/srv/standin-nvidia/compute/cuda/repos/debian13/x86_64/"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


class Standin:
    def __init__(self, name: str, public_key: str) -> None:
        self.name = name
        self.public_key = public_key

    def sh(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        return docker("exec", self.name, "bash", "-c", command, check=check)

    def ssh_port(self) -> int:
        return int(docker("port", self.name, "22/tcp").stdout.split(":")[-1])

    def host_keys(self) -> str:
        return self.sh("cat /etc/ssh/ssh_host_*_key.pub | sort").stdout

    def wait_sshd(self) -> None:
        wait_for("sshd in the stand-in", lambda: self.sh("pgrep -x sshd", check=False).returncode == 0, timeout=60)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory):
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"the image {IMAGE} is missing: build it with scripts/setup.sh (step standin)")
    keydir = tmp_path_factory.mktemp("standin-key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keydir / "id")], check=True)
    public_key = (keydir / "id.pub").read_text().strip()
    name = f"gpuops-standin-test-{secrets.token_hex(4)}"
    docker("run", "-d", "--name", name, "-e", f"PUBLIC_KEY={public_key}", "-p", "127.0.0.1::22", IMAGE)
    box = Standin(name, public_key)
    try:
        box.wait_sshd()
        yield box
    finally:
        docker("rm", "-f", name, check=False)


# --- traits of the image -----------------------------------------------------------------


def test_python3_is_not_the_python_with_apt(standin: Standin) -> None:
    assert standin.sh("readlink -f /usr/bin/python3").stdout.strip() == "/opt/standin-python/bin/python3.13"
    assert standin.sh("readlink -f /usr/bin/python").stdout.strip() == "/opt/standin-python/bin/python3.13"
    assert standin.sh("/usr/bin/python3 -c 'import apt_pkg'", check=False).returncode != 0
    assert standin.sh(f"{SYSTEM_PYTHON} -c 'import apt, apt_pkg'").returncode == 0


def ansible_apt(standin: Standin, interpreter: str) -> subprocess.CompletedProcess:
    return run([str(VENV_BIN / "ansible"), "all", "-i", f"{standin.name},", "-c", "community.docker.docker",
                "-m", "ansible.builtin.apt", "-a", "name=less state=present",
                "-e", f"ansible_python_interpreter={interpreter}"], check=False)


def test_apt_module_fails_under_usr_bin_python3(standin: Standin) -> None:
    bad = ansible_apt(standin, "/usr/bin/python3")
    assert bad.returncode != 0
    assert "python3-apt" in bad.stdout, bad.stdout[-2000:]
    good = ansible_apt(standin, SYSTEM_PYTHON)
    assert good.returncode == 0, good.stdout[-2000:]


def test_cuda_source_and_keyring(standin: Standin) -> None:
    assert standin.sh(f"test -s {KEYRING}").returncode == 0
    line = standin.sh(f"cat {CUDA_LIST}").stdout.strip()
    assert line.startswith(f"deb [signed-by={KEYRING}] ")
    assert "/compute/cuda/repos/debian13/x86_64/ /" in line
    update = standin.sh("apt-get update 2>&1")
    assert "compute/cuda/repos/debian13/x86_64" in update.stdout


def test_second_cuda_source_with_another_signed_by_breaks_apt(standin: Standin) -> None:
    uri = standin.sh(f"sed -E 's/^deb \\[[^]]*\\] ([^ ]+) .*/\\1/' {CUDA_LIST}").stdout.strip()
    extra = "/etc/apt/sources.list.d/zz-second-cuda.list"
    try:
        standin.sh(f"cp {KEYRING} /usr/share/keyrings/other.gpg && "
                   f"echo 'deb [signed-by=/usr/share/keyrings/other.gpg] {uri} /' > {extra}")
        broken = standin.sh("apt-get update 2>&1", check=False)
        assert broken.returncode != 0
        assert "Conflicting values set for option Signed-By" in broken.stdout, broken.stdout
    finally:
        standin.sh(f"rm -f {extra} /usr/share/keyrings/other.gpg")
    assert standin.sh("apt-get update -qq").returncode == 0


def test_start_script_without_systemd(standin: Standin) -> None:
    assert standin.sh("cat /proc/1/comm").stdout.strip() != "systemd"
    assert "/start.sh" in standin.sh("tr '\\0' ' ' < /proc/1/cmdline").stdout
    assert standin.sh("test -d /run/systemd/system", check=False).returncode != 0
    assert standin.public_key in standin.sh("cat /root/.ssh/authorized_keys").stdout.splitlines()
    scan = subprocess.run(["ssh-keyscan", "-p", str(standin.ssh_port()), "127.0.0.1"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert "ssh-ed25519" in scan.stdout, scan.stderr


def test_host_keys_change_at_every_start(standin: Standin) -> None:
    before = standin.host_keys()
    docker("restart", "-t", "1", standin.name)
    standin.wait_sshd()
    after = standin.host_keys()
    assert before and after and before != after
    # The key is authorised once, however often the container starts.
    assert standin.sh("cat /root/.ssh/authorized_keys").stdout.splitlines().count(standin.public_key) == 1


def test_slurm_and_munge_preinstalled_with_the_images_munge_key(standin: Standin) -> None:
    """As RunPod's current base template: the distribution's slurm-wlm (and munge) are installed, and
    munge's key was made once, when the image was built: every pod of the image shares it."""
    for command in ("slurmctld", "slurmd", "sinfo", "munged"):
        assert standin.sh(f"command -v {command}", check=False).returncode == 0, command
    assert standin.sh("dpkg-query -W -f '${Version}' slurmd").stdout.startswith("24.11.")
    key = standin.sh("sha256sum /etc/munge/munge.key").stdout.split()[0]
    other = f"{standin.name}-twin"
    try:
        docker("run", "-d", "--name", other, IMAGE)
        twin = docker("exec", other, "sha256sum", "/etc/munge/munge.key").stdout.split()[0]
    finally:
        docker("rm", "-f", other, check=False)
    assert key == twin


def test_no_dcgm(standin: Standin) -> None:
    for command in ("nv-hostengine", "dcgmi", "dcgm-exporter"):
        assert standin.sh(f"command -v {command}", check=False).returncode != 0, command
    listed = standin.sh("dpkg-query -W -f '${Package}\\n' | grep -E '^datacenter-gpu-manager'", check=False)
    assert listed.stdout.strip() == ""


def test_host_key_fingerprints_in_the_pods_log(standin: Standin) -> None:
    fingerprints = standin.sh("for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $k; done").stdout.split()
    log = docker("logs", standin.name).stdout
    assert "SSH host keys:" in log
    for fingerprint in (f for f in fingerprints if f.startswith("SHA256:")):
        assert fingerprint in log


# --- the product fixes on the stand-in ---------------------------------------------------------


def playbook(standin: Standin, tmp_path: Path, play: str, *args: str) -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(textwrap.dedent(f"""\
        all:
          children:
            gpu_pods:
              hosts:
                {standin.name}:
                  ansible_connection: community.docker.docker
            slurm_controller:
              hosts:
                {standin.name}:
            slurm_compute:
              hosts:
                {standin.name}:
        """))
    path = tmp_path / "play.yml"
    path.write_text(play)
    # ansible.cfg enables only the inventory plugins the project uses: add yaml for this file.
    env = dict(os.environ, ANSIBLE_INVENTORY_ENABLED="yaml")
    result = run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(path), *args], check=False, env=env)
    assert standin.name in recap(result.stdout), result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_slurm_roles_python_probe_picks_the_system_python_on_the_standin(standin: Standin, tmp_path: Path) -> None:
    """The slurm role's python probe picks the system Python (python3.13, with python3-apt, not the image's
    /usr/bin/python3) and installs iproute2 for the network facts: right after it, with nothing else run, the
    facts have the default IPv4 route and apt works."""
    standin.sh("apt-get remove -y -qq iproute2 >/dev/null 2>&1 || true")
    assert standin.sh("command -v ip", check=False).returncode != 0  # the probe has something to install
    result = playbook(standin, tmp_path, textwrap.dedent("""\
        - name: The slurm role's Python on the stand-in
          hosts: gpu_pods
          gather_facts: false
          tasks:
            - name: Choose the Python
              ansible.builtin.include_role:
                name: gpuops.platform.slurm
                tasks_from: python
            - name: Say which
              ansible.builtin.debug:
                msg: "python={{ ansible_python_interpreter }}"
            # Right after the probe, before anything else can install iproute2.
            - name: Where ip is now
              ansible.builtin.raw: command -v ip || echo no-ip
              register: ip_path
              changed_when: false
            - name: Gather the network facts
              ansible.builtin.setup:
                gather_subset: ["!all", "!min", "network"]
            - name: Say what they hold
              ansible.builtin.debug:
                msg: "ip={{ ip_path.stdout | trim }} ipv4={{ ansible_facts.default_ipv4.address | default('none') }}"
            - name: Use apt with it
              ansible.builtin.apt:
                name: iproute2
                state: present
              register: apt_iproute2
            - name: Say whether apt changed anything
              ansible.builtin.debug:
                msg: "apt_changed={{ apt_iproute2.changed }}"
        """))
    assert "python=/usr/bin/python3.13" in result.stdout, result.stdout[-3000:]
    address = docker("inspect", "-f", "{{ range .NetworkSettings.Networks }}{{ .IPAddress }}{{ end }}",
                     standin.name).stdout.strip()
    said = re.search(r"msg: ip=(\S+) ipv4=(\S+)", result.stdout)
    assert said, result.stdout[-3000:]
    assert said.group(1).endswith("/ip"), said.group(1)
    assert said.group(2) == address
    assert result.returncode == 0, result.stdout[-6000:]
    # The probe had already installed it: apt found nothing to do.
    assert "msg: apt_changed=False" in result.stdout, result.stdout[-3000:]


def test_exporter_reuses_the_cuda_source_and_leaves_apt_working(standin: Standin, tmp_path: Path) -> None:
    """A GPU (fake nvidia-smi) and the image's CUDA source: the role tries DCGM from that source
    without adding its own; DCGM is not there, so it falls back to NVML and apt still works."""
    standin.sh("printf '#!/bin/sh\\necho \"0, 0, NVIDIA GeForce RTX 4090\"\\n' > /usr/local/bin/fake-nvidia-smi"
               " && chmod +x /usr/local/bin/fake-nvidia-smi")
    result = playbook(standin, tmp_path, textwrap.dedent(f"""\
        - name: GPU exporter on the stand-in
          hosts: gpu_pods
          gather_facts: false
          roles:
            - role: gpuops.platform.dcgm_exporter
              dcgm_exporter_nvidia_smi: /usr/local/bin/fake-nvidia-smi
              dcgm_exporter_wheel_cache_dir: {tmp_path}/wheels
        """), "--tags", "dcgm_exporter_install")
    assert result.returncode == 0, result.stdout[-6000:]
    said = " ".join(result.stdout.split())  # messages are folded over lines
    # The repository is the one the image's source names, as APT reads it (no host of the role's own).
    assert f"CUDA repository already configured in {CUDA_LIST} ({CUDA_REPO})" in said, result.stdout[-6000:]
    assert "apt works as before; backend auto continues with nvml" in said, result.stdout[-6000:]
    assert standin.sh("ls /etc/apt/sources.list.d/").stdout.split() == [CUDA_LIST.rsplit("/", 1)[1]]
    assert standin.sh("apt-get update -qq 2>&1").stdout.strip() == ""


def test_exporter_without_a_cuda_source_asks_for_the_repository(standin: Standin, tmp_path: Path) -> None:
    """No CUDA source on the host and dcgm_exporter_cuda_repo_base_url unset (it has no default): auto uses
    NVML and says why, backend dcgm fails naming the variable; neither adds a source."""
    standin.sh("printf '#!/bin/sh\\necho \"0, 0, NVIDIA GeForce RTX 4090\"\\n' > /usr/local/bin/fake-nvidia-smi"
               " && chmod +x /usr/local/bin/fake-nvidia-smi")
    standin.sh(f"mkdir -p /root/cuda-aside && mv {CUDA_LIST} /root/cuda-aside/")
    try:
        results = {}
        for backend in ("auto", "dcgm"):
            results[backend] = playbook(standin, tmp_path, textwrap.dedent(f"""\
                - name: GPU exporter on the stand-in without a CUDA source
                  hosts: gpu_pods
                  gather_facts: false
                  roles:
                    - role: gpuops.platform.dcgm_exporter
                      dcgm_exporter_backend: {backend}
                      dcgm_exporter_nvidia_smi: /usr/local/bin/fake-nvidia-smi
                      dcgm_exporter_wheel_cache_dir: {tmp_path}/wheels
                """), "--tags", "dcgm_exporter_preflight")
        sources = standin.sh("ls /etc/apt/sources.list.d/").stdout.split()
    finally:
        standin.sh("mv /root/cuda-aside/* /etc/apt/sources.list.d/ && rmdir /root/cuda-aside", check=False)
    auto = " ".join(results["auto"].stdout.split())
    assert results["auto"].returncode == 0, results["auto"].stdout[-6000:]
    assert ("backend nvml (auto, 1 GPU(s) from nvidia-smi, no APT source of the CUDA repository and "
            "dcgm_exporter_cuda_repo_base_url unset)") in auto, results["auto"].stdout[-6000:]
    dcgm = " ".join(results["dcgm"].stdout.split())
    assert results["dcgm"].returncode != 0
    assert recap(results["dcgm"].stdout)[standin.name]["failed"] == 1
    assert ("its APT has no source of NVIDIA's CUDA repository, and dcgm_exporter_cuda_repo_base_url is not set "
            "(it has no default). Set dcgm_exporter_cuda_repo_base_url to the base of NVIDIA's CUDA apt "
            "repositories") in dcgm, results["dcgm"].stdout[-6000:]
    assert "<base>/debian13/x86_64/" in dcgm
    assert sources == [], sources


def test_sshd_runs_with_the_distributions_sshd_config_password_authentication_on(standin: Standin) -> None:
    # As RunPod's images: the file is the package's, untouched; OpenSSH's defaults hold.
    config = standin.sh("cat /etc/ssh/sshd_config").stdout
    assert not re.search(r"(?im)^\s*(PasswordAuthentication|PermitRootLogin)\s", config), config
    assert re.search(r"(?m)^Include /etc/ssh/sshd_config\.d/\*\.conf$", config)
    effective = dict(line.split(" ", 1) for line in standin.sh("/usr/sbin/sshd -T").stdout.splitlines() if " " in line)
    assert effective["passwordauthentication"] == "yes"
    assert effective["permitrootlogin"] in ("prohibit-password", "without-password")
    # The running sshd offers password logins (BatchMode: the client gives up without asking for one).
    login = subprocess.run(
        ["ssh", "-p", str(standin.ssh_port()), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no", "root@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60, check=False)
    assert "Permission denied (publickey,password)." in login.stderr, login.stderr


def test_nginx_listens_on_all_addresses_from_the_start_script(standin: Standin) -> None:
    # RunPod's proxy ports (container-template/proxy/nginx.conf), started by /start.sh before sshd.
    wait_for("nginx in the stand-in", lambda: standin.sh("pgrep -x nginx", check=False).returncode == 0, timeout=60)
    listening = set()
    for line in standin.sh("cat /proc/net/tcp").stdout.splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[1].split(":")[0] == "00000000":
            listening.add(int(fields[1].split(":")[1], 16))
    assert {9091, 3001, 7861, 8081, 8001, 7270} <= listening, listening
    assert 80 not in listening
