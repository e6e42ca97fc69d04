"""Supply chain (issue 12, item 13): exact collection pins, NVIDIA's repository
key pinned by fingerprint, the EE's EPEL RPM verified before it is installed.

install-epel.sh runs for real up to the point where it needs rpm and dnf (not
on this host): its key check with gpg against throw-away keys served from
file:// URLs; rpm and dnf are stand-ins that print rpm -Kv's own formats.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import locks

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
BUNDLED = VENV / "lib" / "python3.11" / "site-packages" / "ansible_collections"
ROLE = REPO / "collections/ansible_collections/gpuops/platform/roles/dcgm_exporter"
INSTALL_EPEL = REPO / "awx" / "ee" / "install-epel.sh"
NVIDIA_CUDA_KEY = "EB693B3035CD5710E231E123A4B469963BF863CC"
EPEL9_KEY = "FF8AD1344597106ECE813B918A3872BF3228467C"


# --- Galaxy collections --------------------------------------------------------

def requirements() -> list[dict]:
    return yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]


def test_every_collection_is_pinned_exactly():
    entries = requirements()
    assert entries, "requirements.yml lists no collections"
    for entry in entries:
        assert re.fullmatch(r"==\d+\.\d+\.\d+", str(entry.get("version", ""))), (
            f"{entry['name']} is not pinned to one release: version {entry.get('version')!r}; "
            "write version: \"==X.Y.Z\""
        )


def test_pins_are_the_versions_the_tests_run():
    """Collections bundled with requirements.txt's ansible: the pin is that version."""
    checked = 0
    for entry in requirements():
        namespace, name = entry["name"].split(".")
        manifest = BUNDLED / namespace / name / "MANIFEST.json"
        if not manifest.is_file():
            continue
        installed = json.loads(manifest.read_text())["collection_info"]["version"]
        assert entry["version"] == f"=={installed}", (
            f"{entry['name']}: requirements.yml pins {entry['version']}, the tests run {installed}"
        )
        checked += 1
    assert checked >= 4, "the collections bundled with ansible were not found in .venv"


def test_the_ee_installs_the_pinned_requirements():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["dependencies"]["galaxy"] == "requirements.yml"


# --- Python packages: every lock hashed, every install checks the hashes ---------

@pytest.mark.parametrize("lock", sorted(locks.LOCKS))
def test_every_lock_pins_each_package_with_its_hashes(lock):
    pins = locks.read(lock)
    assert pins, f"{lock} pins nothing"
    unhashed = sorted(pin.name for pin in pins.values() if not pin.hashes)
    assert not unhashed, f"{lock}: no --hash for {unhashed}: run scripts/lock.sh"
    # Each lock is compiled from its .in file: everything the .in names is locked.
    source = REPO / locks.LOCKS[lock]
    direct = {locks.normalise(re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0])
              for line in source.read_text().splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))}
    assert direct and direct <= set(pins), f"{lock} lacks {sorted(direct - set(pins))} of {source.name}"


def test_a_lock_line_without_hashes_is_refused_by_the_parser(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("idna==3.20 \\\n    --hash=sha256:" + "a" * 64 + "\nrequests==2.34.2\n")
    pins = locks.read(lock)
    assert pins["idna"].hashes == ["a" * 64] and pins["requests"].hashes == []
    lock.write_text("requests>=2\n")
    with pytest.raises(ValueError, match="not a pinned requirement"):
        locks.read(lock)


# Every place that installs Python packages, and how it must call pip.
PIP_INSTALLS = {
    "scripts/setup.sh": [r'pip_quiet install --require-hashes -r "\$ROOT/requirements.txt"',
                         r'install --require-hashes -r "\$lock"'],
    "images/api/Dockerfile": [r"pip install --no-index --no-cache-dir --require-hashes --find-links /wheels"],
    "app/api/build-context.sh": [r"download .*--require-hashes"],
    "execution-environment.yml": [r"-m pip install --no-cache-dir --require-hashes -r /usr/local/share/gpuops/ee-requirements.txt"],
    "scripts/lock.sh": [r"install --require-hashes -r scripts/lock-tools.txt"],
    # The nvml backend's wheel: pip download with its pinned hash, read from stdin.
    "collections/ansible_collections/gpuops/platform/roles/dcgm_exporter/tasks/nvml.yml": [
        r"- --require-hashes\n\s+- --dest", r"- -r\n\s+- /dev/stdin",
        r'stdin: "nvidia-ml-py==\{\{ dcgm_exporter_nvml_version \}\} --hash=sha256:\{\{ dcgm_exporter_nvml_sha256 \}\}"'],
}


@pytest.mark.parametrize("path", sorted(PIP_INSTALLS))
def test_every_pip_install_requires_hashes(path):
    text = (REPO / path).read_text()
    for pattern in PIP_INSTALLS[path]:
        assert re.search(pattern, text), f"{path}: no {pattern}"
    # No other pip install or download there (one without --require-hashes would slip through).
    calls = re.findall(r"pip(?:_quiet)?\"?[ \t]+(?:-\S+[ \t]+)*(?:install|download)\b[^\n]*", text)
    assert all("--require-hashes" in call for call in calls), calls


def test_no_other_file_runs_pip_install():
    """A new pip install elsewhere must join PIP_INSTALLS (and require hashes)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    found = set()
    for path in tracked:
        if path.startswith(("tests/", "docs/")) or not path.endswith((".sh", ".yml", ".yaml", "Dockerfile", "Makefile", ".j2")):
            continue
        if not (REPO / path).is_file():  # removed in the working tree, not yet in git's index
            continue
        text = (REPO / path).read_text(errors="replace")
        if re.search(r"\bpip3?(?:_quiet)?\"?\s+(?:-\S+\s+)*(?:install|download)\b", text) or re.search(
                r"- pip\n\s+- (?:install|download)\n", text):
            found.add(path)
    assert found == set(PIP_INSTALLS), f"pip installs in {sorted(found - set(PIP_INSTALLS))}, not checked"


# --- Upstream images, pinned by digest where they are pulled ----------------------

OBSERVABILITY = REPO / "collections/ansible_collections/gpuops/platform/roles/observability"


def test_every_pulled_observability_image_is_pinned_by_digest():
    defaults = yaml.safe_load((OBSERVABILITY / "defaults" / "main.yml").read_text())
    images = {key: value for key, value in defaults.items()
              if key.endswith("_image") and "offline" not in key}
    assert set(images) == {"observability_prometheus_image", "observability_grafana_image",
                           "observability_alertmanager_image"}
    for key, image in images.items():
        assert re.fullmatch(r"[a-z0-9./-]+:v?\d+\.\d+\.\d+", image), f"{key} {image} is not a release tag"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", defaults[f"{key}_digest"]), f"{key} has no digest"
    # The pulls and the Compose service use <repository>@<digest> (vars/main.yml's upstream refs).
    install = (OBSERVABILITY / "tasks" / "install.yml").read_text()
    pull = install.split("- name: Pull the upstream images that are missing")[1].split("\n- name:")[0]
    for service in ("prometheus", "grafana", "alertmanager"):
        assert f"_observability_{service}_upstream_ref | trim" in pull
        assert f"observability_{service}_image " not in pull and f"[observability_{service}_image]" not in pull


def test_the_ee_base_image_is_pinned_by_digest():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    name = ee["images"]["base_image"]["name"]
    assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+@sha256:[0-9a-f]{64}", name)
    # The registry is the builder's (EE_BASE_IMAGE); the definition's host is a reserved name that never resolves.
    assert name.split("/")[0].endswith(".invalid")


# --- NVIDIA's CUDA repository key ----------------------------------------------

def dcgm_tasks() -> list[dict]:
    return yaml.safe_load((ROLE / "tasks" / "dcgm.yml").read_text())


def test_nvidia_key_fingerprint_is_pinned():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["dcgm_exporter_cuda_repo_key_fingerprint"] == NVIDIA_CUDA_KEY
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    option = spec["argument_specs"]["main"]["options"]["dcgm_exporter_cuda_repo_key_fingerprint"]
    assert option["default"] == NVIDIA_CUDA_KEY


def test_nvidia_key_is_checked_before_apt_trusts_it():
    block = next(t for t in dcgm_tasks() if "block" in t and any(
        "ansible.builtin.deb822_repository" in s for s in t["block"]))
    steps = block["block"]
    modules = [next(k for k in s if k.startswith("ansible.builtin.")) for s in steps]
    download = modules.index("ansible.builtin.get_url")
    show = next(i for i, s in enumerate(steps) if s.get("ansible.builtin.command", {}).get("argv", [None])[0] == "gpg")
    check = modules.index("ansible.builtin.assert")
    install = modules.index("ansible.builtin.copy")
    repo = modules.index("ansible.builtin.deb822_repository")
    assert download < show < check < install < repo
    assert "--show-keys" in steps[show]["ansible.builtin.command"]["argv"]
    assert "_dcgm_exporter_key_pinned" in " ".join(steps[check]["ansible.builtin.assert"]["that"])
    # APT gets the checked file, never a URL it would fetch itself.
    signed_by = steps[repo]["ansible.builtin.deb822_repository"]["signed_by"]
    assert signed_by == "{{ _dcgm_exporter_own_key }}"
    # The temporary copy goes whatever happens.
    assert any(s.get("ansible.builtin.file", {}).get("state") == "absent" for s in block["always"])
    assert not any("ansible.builtin.apt_key" in s for t in dcgm_tasks() for s in [t] + t.get("block", []))


# --- EPEL in the execution environment -----------------------------------------

def gpg(home: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["gpg", "--batch", "--homedir", str(home), *args],
                          capture_output=True, text=True, check=True, **kw)


def throwaway_key(home: Path, uid: str) -> tuple[str, str]:
    home.mkdir(mode=0o700, exist_ok=True)
    gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
    colons = gpg(home, "--with-colons", "--list-keys", uid).stdout
    fpr = re.search(r"^fpr:+([0-9A-F]{40}):", colons, re.M).group(1)
    return fpr, gpg(home, "--armor", "--export", fpr).stdout


@pytest.fixture
def epel(tmp_path):
    """A fake release (key + RPM file), stand-ins for rpm and dnf, and a runner."""
    key_fpr, key = throwaway_key(tmp_path / "gnupg-a", "EPEL stand-in <epel@example.com>")
    (tmp_path / "key.asc").write_text(key)
    (tmp_path / "epel-release.rpm").write_bytes(b"not really an rpm")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "rpm").write_text(
        "#!/bin/sh\necho \"rpm $*\" >> \"$CALLS\"\n"
        "[ \"$1\" = --import ] && exit 0\n"
        "printf '%s\\n' \"$RPM_K_OUTPUT\"\nexit \"${RPM_K_RC:-0}\"\n")
    (bin_dir / "dnf").write_text("#!/bin/sh\necho \"dnf $*\" >> \"$CALLS\"\n")
    for tool in ("rpm", "dnf"):
        (bin_dir / tool).chmod(0o755)

    def run(fingerprint: str, rpm_output: str, rpm_rc: int = 0, key_file: str = "key.asc"):
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(log),
               "EPEL_KEY_URL": f"file://{tmp_path / key_file}",
               "EPEL_RELEASE_URL": f"file://{tmp_path / 'epel-release.rpm'}",
               "GPUOPS_EPEL_KEY_FINGERPRINT": fingerprint, "PKGMGR": str(bin_dir / "dnf"),
               "RPM_K_OUTPUT": rpm_output, "RPM_K_RC": str(rpm_rc)}
        result = subprocess.run([str(INSTALL_EPEL)], env=env, capture_output=True, text=True, timeout=60)
        calls = log.read_text() if log.exists() else ""
        return result, calls

    run.key_fpr = key_fpr
    run.tmp = tmp_path
    return run


def signed_output(key_id: str, state: str = "OK") -> str:
    # rpm -Kv's format (rpm 4.16, RHEL 9).
    return (f"/tmp/epel-release.rpm:\n    Header V4 RSA/SHA256 Signature, key ID {key_id}: {state}\n"
            f"    Header SHA256 digest: OK\n    Payload SHA256 digest: OK\n"
            f"    V4 RSA/SHA256 Signature, key ID {key_id}: {state}\n    MD5 digest: OK")


def test_epel_script_pins_epel9_key():
    text = INSTALL_EPEL.read_text()
    assert f"GPUOPS_EPEL_KEY_FINGERPRINT:-{EPEL9_KEY}" in text
    assert "rpm -Kv" in text


@pytest.mark.parametrize("unset", ["EPEL_KEY_URL", "EPEL_RELEASE_URL"])
def test_epel_has_no_default_location(unset, tmp_path):
    env = {"PATH": os.environ["PATH"], "EPEL_KEY_URL": (tmp_path / "key.asc").as_uri(),
           "EPEL_RELEASE_URL": (tmp_path / "epel-release.rpm").as_uri(), "PKGMGR": "/bin/false"}
    del env[unset]
    result = subprocess.run([str(INSTALL_EPEL)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"install-epel: {unset} is not set: set it (build argument {unset}) to the URL of" in result.stderr
    assert "on the EPEL mirror to use" in result.stderr


def test_epel_key_with_another_fingerprint_is_refused(epel):
    result, calls = epel(EPEL9_KEY, signed_output("3228467c"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"not EPEL 9's key {EPEL9_KEY}" in result.stderr and epel.key_fpr in result.stderr
    assert calls == "", "nothing may be imported or installed"


def test_epel_key_file_with_a_second_primary_key_is_refused(epel):
    _, other = throwaway_key(epel.tmp / "gnupg-b", "Intruder <x@example.com>")
    (epel.tmp / "two.asc").write_text((epel.tmp / "key.asc").read_text() + other)
    result, calls = epel(epel.key_fpr, signed_output(epel.key_fpr[-8:].lower()), key_file="two.asc")
    assert result.returncode == 1 and "refusing it" in result.stderr
    assert calls == ""


def test_epel_release_without_the_keys_signature_is_refused(epel):
    key_id = epel.key_fpr[-8:].lower()
    # NOKEY / bad signature: rpm -K fails.
    result, calls = epel(epel.key_fpr, signed_output("deadbeef", "NOKEY"), rpm_rc=1)
    assert result.returncode == 1 and "does not verify" in result.stderr
    assert "dnf" not in calls
    # Unsigned: rpm -K succeeds on digests alone, the script still refuses.
    result, calls = epel(epel.key_fpr, "/tmp/epel-release.rpm:\n    Header SHA256 digest: OK\n    MD5 digest: OK")
    assert result.returncode == 1 and f"key ID {key_id}" in result.stderr
    assert "dnf" not in calls


def test_epel_release_signed_by_the_pinned_key_is_installed(epel):
    result, calls = epel(epel.key_fpr, signed_output(epel.key_fpr[-8:].lower()))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = calls.splitlines()
    assert lines[0].startswith("rpm --import ")
    assert lines[1].startswith("rpm -Kv ")
    assert re.match(r"dnf install -y \S+epel-release\.rpm$", lines[2])


def test_ee_installs_epel_only_through_the_verifying_script(tmp_path):
    ee_text = (REPO / "execution-environment.yml").read_text()
    assert "epel-release-latest-9.noarch.rpm" not in ee_text, "the EE must not install the EPEL RPM by URL"
    out = tmp_path / "ctx"
    offline = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
               "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = subprocess.run(
        [str(VENV / "bin" / "ansible-builder"), "create", "--file", "execution-environment.yml",
         "--context", str(out), "--output-filename", "Containerfile"],
        cwd=REPO, env={**os.environ, **offline}, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (out / "Containerfile").read_text()
    base = containerfile.split("FROM base AS galaxy")[0]
    assert "COPY _build/epel/install-epel.sh" in base
    assert re.search(r"^RUN /usr/local/libexec/gpuops-install-epel\.sh", base, re.M)
    # EPEL comes before the system packages (autossh) are installed.
    assert base.index("gpuops-install-epel.sh") < containerfile.index("bindep")
    assert (out / "_build/epel/install-epel.sh").read_text() == INSTALL_EPEL.read_text()
