"""gpuops.platform as a Galaxy user gets it: built, installed into a directory of its own, used without a checkout.

`install(root)` runs `ansible-galaxy collection build` on the checkout's collection (so galaxy.yml's
build_ignore applies, as on an upload), installs the tarball with `ansible-galaxy collection install` into
`<root>/collections`, and adds cloud.terraform there: the one dependency that PyPI's `ansible` does not bundle,
taken from where gpuops' setup installed it (the real collection from Galaxy, else setup's labelled offline
redirect to community.general.terraform). The other dependencies (community.general, community.docker,
community.crypto) are the ones bundled with the `ansible` package that runs the playbooks, as on any machine that
installed Ansible from PyPI.

`Installed.env()` is the environment of a run that knows nothing of the checkout: the working directory is
`<root>/work` (no ansible.cfg there, none in HOME, none in /etc/ansible, so `ansible_config_file` is None),
HOME is `<root>/home`, ANSIBLE_COLLECTIONS_PATH names only `<root>/collections`, and no other ANSIBLE_* variable
nor PYTHONPATH is passed on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
SOURCE = REPO / "collections" / "ansible_collections" / "gpuops" / "platform"
#: Where scripts/setup.sh puts cloud.terraform: from Galaxy, else its offline redirect.
CLOUD_TERRAFORM = [
    REPO / ".gpuops" / "collections" / "ansible_collections" / "cloud" / "terraform",
    REPO / ".gpuops" / "collections-fallback" / "ansible_collections" / "cloud" / "terraform",
]


@dataclass
class Installed:
    root: Path
    tarball: Path

    @property
    def collections(self) -> Path:
        return self.root / "collections"

    @property
    def path(self) -> Path:
        return self.collections / "ansible_collections" / "gpuops" / "platform"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def manifest(self) -> dict:
        return json.loads((self.path / "MANIFEST.json").read_text())

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("ANSIBLE_") and key not in ("PYTHONPATH", "RUNPOD_API_KEY", "VIRTUAL_ENV")}
        env.update(HOME=str(self.home), ANSIBLE_COLLECTIONS_PATH=str(self.collections),
                   PATH=f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", ANSIBLE_NOCOLOR="1")
        env.update(extra)
        return env

    def run(self, *argv: str, timeout: int = 600, **extra: str) -> subprocess.CompletedProcess:
        """A command in the working directory outside the checkout, with env()."""
        return subprocess.run(list(argv), cwd=self.work, env=self.env(**extra), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def playbook(self, name: str, *args: str, timeout: int = 600, **extra: str) -> subprocess.CompletedProcess:
        return self.run(str(VENV_BIN / "ansible-playbook"), name, *args, timeout=timeout, **extra)


def install(root: Path) -> Installed:
    """Build the collection from the checkout and install it into `root` as Galaxy would (see the module doc)."""
    for sub in ("build", "collections", "home", "work"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    installed = Installed(root, root / "build")
    # Built and installed from the working directory outside the checkout: there the checkout's
    # ansible.cfg (whose collections_path holds the source) is not read.
    build = installed.run(str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path",
                          str(root / "build"), str(SOURCE))
    assert build.returncode == 0, f"ansible-galaxy collection build failed:\n{build.stdout}\n{build.stderr}"
    (tarball,) = (root / "build").glob("gpuops-platform-*.tar.gz")
    installed.tarball = tarball
    # --no-deps: the dependencies are those below, never fetched from Galaxy here (offline machines, CI).
    done = installed.run(str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--no-deps",
                         "-p", str(installed.collections), str(tarball))
    assert done.returncode == 0 and (installed.path / "MANIFEST.json").is_file(), (
        f"ansible-galaxy collection install {tarball.name} failed:\n{done.stdout}\n{done.stderr}")
    source = next((path for path in CLOUD_TERRAFORM if (path / "meta" / "runtime.yml").is_file()), None)
    assert source is not None, (
        "cloud.terraform, a dependency of gpuops.platform, is not installed here (looked in "
        f"{', '.join(str(p) for p in CLOUD_TERRAFORM)}): run scripts/setup.sh")
    shutil.copytree(source, installed.collections / "ansible_collections" / "cloud" / "terraform")
    return installed
