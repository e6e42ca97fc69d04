"""The AWX execution environment: execution-environment.yml and awx/ee/.

`ansible-builder create` renders the build context without a network or a
container engine, so it runs here; building the image needs registries and
is not tested. install-terraform.sh is tried against a fake release signed
with a throw-away key, served from file:// URLs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
EE_FILE = REPO / "execution-environment.yml"
INSTALL_TERRAFORM = REPO / "awx" / "ee" / "install-terraform.sh"
COLLECTION = REPO / "collections" / "ansible_collections" / "gpuops" / "platform"
# Any request to the network fails fast through this proxy (nothing listens on port 9).
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}


def locked_versions() -> dict[str, str]:
    """requirements.txt as {lowercase name: version}."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


@pytest.fixture(scope="module")
def ee() -> dict:
    return yaml.safe_load(EE_FILE.read_text())


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ee") / "context"
    env = {**os.environ, **OFFLINE}
    result = subprocess.run(
        [str(VENV_BIN / "ansible-builder"), "create", "--file", str(EE_FILE), "--context", str(out),
         "--output-filename", "Containerfile", "-v", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_ee_build_context_is_created_offline(context):
    containerfile = (context / "Containerfile").read_text()
    build = context / "_build"
    # The collections, Python and system requirements are copied as they are.
    assert (build / "requirements.yml").read_text() == (REPO / "requirements.yml").read_text()
    assert (build / "requirements.txt").read_text() == (REPO / "awx/ee/requirements.txt").read_text()
    bindep = (build / "bindep.txt").read_text()
    assert re.search(r"^autossh \[platform:rpm\]$", bindep, re.M)
    assert re.search(r"^openssh-clients \[platform:rpm\]$", bindep, re.M)
    # The gpuops.platform collection of this checkout, installed in the galaxy stage.
    copied = build / "gpuops_platform"
    assert (copied / "galaxy.yml").read_text() == (COLLECTION / "galaxy.yml").read_text()
    assert (copied / "plugins/inventory/runpod.py").is_file()
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS /build/gpuops_platform" in containerfile
    # Terraform: the verifying installer runs in the builder stage, its binary lands in the final image.
    installer = build / "terraform" / "install-terraform.sh"
    assert installer.read_text() == INSTALL_TERRAFORM.read_text()
    assert os.access(installer, os.X_OK)
    assert re.search(r'^ARG TERRAFORM_VERSION=\d+\.\d+\.\d+$', containerfile, re.M)
    assert 'RUN /build/install-terraform.sh "$TERRAFORM_VERSION" /output/terraform' in containerfile
    assert "install -m 0755 /output/terraform/terraform /usr/local/bin/terraform" in containerfile
    # autossh comes from EPEL, enabled in the base stage that every stage builds on.
    base_stage = containerfile.split("# Galaxy build stage")[0]
    assert "gpuops-install-epel.sh" in base_stage  # EPEL, verified first (test_supply_chain.py)


def test_ee_pins_the_versions_the_repository_tests(context, ee):
    containerfile = (context / "Containerfile").read_text()
    pins = locked_versions()
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert refs == [f"ansible-core=={pins['ansible-core']}", f"ansible-runner=={pins['ansible-runner']}"]
    # Every Python requirement of the EE is pinned as in requirements.txt.
    for line in (REPO / "awx/ee/requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"{line} is not pinned"
            assert pins[name.lower()] == version, f"{name}: EE {version}, requirements.txt {pins[name.lower()]}"
    base = ee["images"]["base_image"]["name"]
    assert re.search(r":\d+\.\d+(-\d+)?$", base), f"base image {base} is not pinned to a release tag"


# -- install-terraform.sh -----------------------------------------------------


def gpg(home: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], input=stdin,
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout


class FakeRelease:
    """A Terraform release directory, its SHA256SUMS signed by a throw-away key."""

    version = "1.2.3"

    def __init__(self, root: Path) -> None:
        self.home = root / "gnupg"
        self.home.mkdir(mode=0o700)
        gpg(self.home, "--passphrase", "", "--quick-gen-key", "gpuops test <test@example.invalid>", "ed25519", "sign", "never")
        self.fingerprint = next(
            line.split(":")[9] for line in gpg(self.home, "--with-colons", "--fingerprint").splitlines()
            if line.startswith("fpr:")
        )
        self.key = root / "key.asc"
        self.key.write_text(gpg(self.home, "--armor", "--export"))
        self.releases = root / "releases"
        self.dir = self.releases / self.version
        self.dir.mkdir(parents=True)
        self.zip = self.dir / f"terraform_{self.version}_linux_amd64.zip"
        with zipfile.ZipFile(self.zip, "w") as archive:
            archive.writestr("terraform", "#!/bin/sh\necho 'Terraform v1.2.3'\n")
        self.sums = self.dir / f"terraform_{self.version}_SHA256SUMS"
        self.sums.write_text(f"{hashlib.sha256(self.zip.read_bytes()).hexdigest()}  {self.zip.name}\n")
        self.sign()

    def sign(self) -> None:
        sig = Path(f"{self.sums}.sig")
        sig.unlink(missing_ok=True)
        gpg(self.home, "--detach-sign", "--output", str(sig), str(self.sums))

    def install(self, dest: Path, fingerprint: str | None = None, version: str | None = None,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(dest.parent),
            "TERRAFORM_RELEASES_URL": self.releases.as_uri(),
            "HASHICORP_KEY_URL": self.key.as_uri(),
            **({"GPUOPS_TERRAFORM_KEY_FINGERPRINT": fingerprint} if fingerprint else {}),
            **(extra_env or {}),
        }
        return subprocess.run([str(INSTALL_TERRAFORM), version or self.version, str(dest), "amd64"],
                              env=env, capture_output=True, text=True, timeout=120, check=False)


needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg")


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> FakeRelease:
    if shutil.which("gpg") is None:
        pytest.skip("needs gpg")
    return FakeRelease(tmp_path_factory.mktemp("tf-release"))


@needs_gpg
def test_install_terraform_installs_a_verified_release(release, tmp_path):
    result = release.install(tmp_path / "bin", fingerprint=release.fingerprint)
    assert result.returncode == 0, result.stderr
    binary = tmp_path / "bin" / "terraform"
    assert os.access(binary, os.X_OK)
    assert subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout == "Terraform v1.2.3\n"
    assert "verified and installed" in result.stdout


@needs_gpg
def test_install_terraform_trusts_only_hashicorps_key_by_default(release, tmp_path):
    result = release.install(tmp_path / "bin")
    assert result.returncode == 1
    assert "not signed by HashiCorp's release key C874011F0AB405110D02105534365D9472D7468F" in result.stderr
    assert release.fingerprint in result.stderr  # names the key that did sign
    assert not (tmp_path / "bin").exists()


@needs_gpg
def test_install_terraform_refuses_a_zip_the_signed_list_does_not_name(release, tmp_path):
    original = release.zip.read_bytes()
    try:
        with zipfile.ZipFile(release.zip, "w") as archive:
            archive.writestr("terraform", "#!/bin/sh\necho evil\n")
        result = release.install(tmp_path / "bin", fingerprint=release.fingerprint)
    finally:
        release.zip.write_bytes(original)
    assert result.returncode == 1
    assert f"the signed terraform_{release.version}_SHA256SUMS lists" in result.stderr
    assert not (tmp_path / "bin").exists()


@needs_gpg
def test_install_terraform_refuses_a_changed_checksum_list(release, tmp_path):
    signed = release.sums.read_text()
    try:
        release.sums.write_text(signed.replace(signed[:8], "00000000"))
        result = release.install(tmp_path / "bin", fingerprint=release.fingerprint)
    finally:
        release.sums.write_text(signed)
    assert result.returncode == 1
    assert "is not signed by HashiCorp's release key" in result.stderr
    assert "signer: 'none'" in result.stderr


@needs_gpg
def test_install_terraform_checks_an_extra_pinned_checksum(release, tmp_path):
    result = release.install(tmp_path / "bin", fingerprint=release.fingerprint,
                             extra_env={"TERRAFORM_SHA256": "0" * 64})
    assert result.returncode == 1
    assert f"TERRAFORM_SHA256 pins {'0' * 64}" in result.stderr


def test_install_terraform_rejects_a_malformed_version(tmp_path):
    result = subprocess.run([str(INSTALL_TERRAFORM), "latest", str(tmp_path / "bin"), "amd64"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "'latest' is not a Terraform release number such as 1.11.4" in result.stderr
