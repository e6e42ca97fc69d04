"""The AWX execution environment: execution-environment.yml and awx/ee/.

`ansible-builder create` renders the build context without a network or a
container engine, so it runs here; building the image needs registries and
is not tested (tests/integration/test_awx_ee_build_args.py builds it up to
the check of its build arguments). install-terraform.sh is tried against a fake release signed
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

from tests import locks

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
EE_FILE = REPO / "execution-environment.yml"
INSTALL_TERRAFORM = REPO / "awx" / "ee" / "install-terraform.sh"
CHECK_BUILD_ARGS = REPO / "awx" / "ee" / "check-build-args.sh"
# Where the build downloads from: build arguments without a default (no registry or mirror host in the repository).
LOCATIONS = ["EPEL_KEY_URL", "EPEL_RELEASE_URL", "TERRAFORM_RELEASES_URL", "HASHICORP_KEY_URL"]
COLLECTION = REPO / "collections" / "ansible_collections" / "gpuops" / "platform"
# Any request to the network fails fast through this proxy (nothing listens on port 9).
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}


def locked_versions() -> dict[str, str]:
    """requirements.txt as {normalised name: version}."""
    return locks.versions("requirements.txt")


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
    assert (build / "python" / "requirements.txt").read_text() == (REPO / "awx/ee/requirements.txt").read_text()
    # No bindep file of our own: the system packages are the collections' (test below).
    assert not (build / "bindep.txt").exists()
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
    ee_pins = locks.versions("awx/ee/requirements.txt")
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert refs == [f"ansible-core=={pins['ansible-core']}", f"ansible-runner=={pins['ansible-runner']}"]
    assert refs == [f"ansible-core=={ee_pins['ansible-core']}", f"ansible-runner=={ee_pins['ansible-runner']}"]
    # Every Python package of the EE that the repository also installs has the version the tests run.
    shared = sorted(set(ee_pins) & set(pins))
    assert {"ansible-core", "ansible-runner", "docker", "requests"} <= set(shared)
    assert {name: ee_pins[name] for name in shared} == {name: pins[name] for name in shared}
    base = ee["images"]["base_image"]["name"]
    assert re.search(r":\d+\.\d+(-\d+)?@sha256:[0-9a-f]{64}$", base), f"base image {base} is not pinned to a release tag and digest"


def pinned_base(containerfile: str) -> str:
    """The base image's path, tag and digest that the base stage's first check is given."""
    return re.search(r"^RUN /usr/local/libexec/gpuops-check-build-args\.sh '([^']+)'", containerfile, re.M).group(1)


def test_ee_sources_are_build_arguments_checked_first(context, ee):
    """The base image, EPEL and Terraform come from build arguments without a default, checked before
    anything is installed; the base image's pin is the same in the definition and in the check."""
    containerfile = (context / "Containerfile").read_text()
    # The definition's image is a placeholder on a reserved name that never resolves, with the pinned path,
    # tag and digest; FROM uses EE_BASE_IMAGE, which the build argument replaces.
    host, _, pinned = ee["images"]["base_image"]["name"].partition("/")
    assert host.endswith(".invalid") and "ee-base-image" in host
    assert re.fullmatch(r"ubi9/ubi:\d+\.\d+@sha256:[0-9a-f]{64}", pinned)
    assert pinned_base(containerfile) == pinned
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    # No download location has a default anywhere in the Containerfile.
    for name in LOCATIONS:
        assert not re.search(rf"^ARG {name}=", containerfile, re.M), name
    base_stage = containerfile.split("# Galaxy build stage")[0]
    check = base_stage.index("RUN /usr/local/libexec/gpuops-check-build-args.sh")
    for name in ["EE_BASE_IMAGE", *LOCATIONS]:
        assert base_stage.index(f"\nARG {name}\n") < check, name
    # The check runs before EPEL, the system packages and any pip install.
    assert check < base_stage.index("gpuops-install-epel.sh") < base_stage.index("$PKGMGR install")
    assert check < base_stage.index("pip install")
    assert (context / "_build/checks/check-build-args.sh").read_text() == CHECK_BUILD_ARGS.read_text()
    # The builder stage declares Terraform's locations again (an ARG is per stage) before the installer runs.
    builder = containerfile.split("# Builder build stage")[1].split("# Final build stage")[0]
    install = builder.index('RUN /build/install-terraform.sh "$TERRAFORM_VERSION"')
    assert builder.index("\nARG TERRAFORM_RELEASES_URL\n") < install
    assert builder.index("\nARG HASHICORP_KEY_URL\n") < install


def check_build_args(pinned: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(CHECK_BUILD_ARGS), pinned], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30, check=False)


def test_check_build_args_names_every_missing_argument(context):
    pinned = pinned_base((context / "Containerfile").read_text())
    result = check_build_args(pinned, EPEL_KEY_URL="https://mirror.example.org/epel/key")
    assert result.returncode == 1
    for name in ["EE_BASE_IMAGE", "EPEL_RELEASE_URL", "TERRAFORM_RELEASES_URL", "HASHICORP_KEY_URL"]:
        assert f"build argument {name} is not set: pass --build-arg {name}=<" in result.stderr, name
    assert "EPEL_KEY_URL" not in result.stderr
    assert f"--build-arg EE_BASE_IMAGE=<registry>/{pinned} " in result.stderr
    assert "stopping before anything is installed" in result.stderr


def test_check_build_args_takes_only_the_pinned_base_image(context):
    pinned = pinned_base((context / "Containerfile").read_text())
    urls = {name: f"https://mirror.example.org/{name.lower()}" for name in LOCATIONS}
    good = check_build_args(pinned, EE_BASE_IMAGE=f"registry.example.com/{pinned}", **urls)
    assert good.returncode == 0, good.stderr
    assert f"base image registry.example.com/{pinned}" in good.stdout
    tag_only = pinned.split("@")[0]
    other_digest = pinned.split("@")[0] + "@sha256:" + "0" * 64
    for image in (f"registry.example.com/{tag_only}", f"registry.example.com/{other_digest}", "ubi9/ubi:latest"):
        bad = check_build_args(pinned, EE_BASE_IMAGE=image, **urls)
        assert bad.returncode == 1, image
        assert f"EE_BASE_IMAGE is {image}, not the pinned base image" in bad.stderr


def test_ee_installs_every_python_package_by_hash_first(context, ee):
    """The base stage installs the hashed lock before ansible-builder's own pip steps, which then fetch nothing."""
    containerfile = (context / "Containerfile").read_text()
    base_stage = containerfile.split("# Galaxy build stage")[0]
    hashed = base_stage.index("-m pip install --no-cache-dir --require-hashes -r /usr/local/share/gpuops/ee-requirements.txt")
    assert "COPY _build/python/requirements.txt /usr/local/share/gpuops/ee-requirements.txt" in base_stage
    assert hashed < base_stage.index("RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS")
    # No Python requirements file of our own goes through ansible-builder's unhashed introspection.
    assert "python" not in ee["dependencies"]
    assert "--user-pip" not in containerfile
    # What the final stage and the builder stage pip-install by name is in the lock, at the same version.
    ee_pins = locks.versions("awx/ee/requirements.txt")
    init = re.search(r"^RUN \$PYCMD -m pip install --no-cache-dir '(dumb-init)==([^']+)'$", containerfile, re.M)
    assert init and ee_pins[init.group(1)] == init.group(2), "dumb-init is not the locked version"
    tools = re.search(r"^RUN \$PYCMD -m pip install --no-cache-dir (bindep pyyaml packaging)$", containerfile, re.M)
    assert tools and {locks.normalise(n) for n in tools.group(1).split()} <= set(ee_pins)
    # The builder stage stops when ansible-builder had to fetch a package (a need the lock lacks).
    builder = containerfile.split("# Builder build stage")[1].split("# Final build stage")[0]
    assert builder.index("RUN /output/scripts/assemble") < builder.index("find /output/wheels -type f")


def introspect(context: Path, tmp_path: Path) -> tuple[list[str], str, str]:
    """ansible-builder's own introspection of the EE's collections: requirements.yml's (those in .venv) and ours."""
    wanted = {entry["name"] for entry in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    bundled = REPO / ".venv" / "lib" / "python3.11" / "site-packages" / "ansible_collections"
    root = tmp_path / "collections" / "ansible_collections"
    found = []
    for name in sorted(wanted):
        namespace, collection = name.split(".")
        if (bundled / namespace / collection).is_dir():
            (root / namespace).mkdir(parents=True, exist_ok=True)
            (root / namespace / collection).symlink_to(bundled / namespace / collection)
            found.append(name)
    (root / "gpuops").mkdir(parents=True)
    (root / "gpuops" / "platform").symlink_to(context / "_build" / "gpuops_platform")
    pip, bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    result = subprocess.run(
        [str(VENV_BIN / "python"), str(context / "_build" / "scripts" / "introspect.py"), "introspect",
         "--write-pip", str(pip), "--write-bindep", str(bindep), str(tmp_path / "collections")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return found, pip.read_text(), bindep.read_text()


def test_the_collections_python_needs_are_in_the_ee_lock(context, tmp_path):
    """ansible-builder's introspection of the collections of requirements.yml finds nothing the lock lacks."""
    found, pip, _ = introspect(context, tmp_path)
    assert "community.docker" in found, "community.docker (which declares Python needs) is not in .venv"
    needs = {locks.normalise(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0])
             for line in pip.splitlines() if line.strip() and not line.startswith("#")}
    assert "docker" in needs, pip
    missing = needs - set(locks.versions("awx/ee/requirements.txt"))
    assert not missing, f"declared by {found}, not in awx/ee/requirements.txt: {sorted(missing)}"


def test_the_ee_gets_the_system_packages_gpuops_platform_declares(context, tmp_path):
    """The collection's meta/ee-bindep.txt (also what scripts/setup.sh installs) reaches the EE's bindep step."""
    _, _, bindep = introspect(context, tmp_path)
    ours = [line.split("#")[0].strip() for line in bindep.splitlines() if "gpuops.platform" in line]
    assert "openssh-clients [platform:rpm]" in ours, bindep
    assert "autossh" in ours, bindep
    assert "openssh-client [platform:dpkg]" in ours, bindep


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


@pytest.mark.parametrize("unset", ["TERRAFORM_RELEASES_URL", "HASHICORP_KEY_URL"])
def test_install_terraform_has_no_default_location(unset, tmp_path):
    env = {"PATH": os.environ["PATH"], "TERRAFORM_RELEASES_URL": (tmp_path / "releases").as_uri(),
           "HASHICORP_KEY_URL": (tmp_path / "key.asc").as_uri()}
    del env[unset]
    result = subprocess.run([str(INSTALL_TERRAFORM), "1.2.3", str(tmp_path / "bin"), "amd64"], env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert f"install-terraform: {unset} is not set: set it (build argument {unset}) to the URL of" in result.stderr
    assert not (tmp_path / "bin").exists()


def test_install_terraform_rejects_a_malformed_version(tmp_path):
    result = subprocess.run([str(INSTALL_TERRAFORM), "latest", str(tmp_path / "bin"), "amd64"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "'latest' is not a Terraform release number such as 1.11.4" in result.stderr
