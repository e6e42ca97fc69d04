"""The API's RunPod client is the collection's file: one client, also in the image (which has no Ansible)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests import locks

REPO = Path(__file__).resolve().parents[3]
COLLECTION_CLIENT = REPO / "collections/ansible_collections/gpuops/platform/plugins/module_utils/_runpod_api.py"
API_CLIENT = REPO / "app/api/gpuops_api/upstreams/_runpod_api.py"


def test_the_api_uses_the_collections_client_file() -> None:
    assert API_CLIENT.resolve() == COLLECTION_CLIENT.resolve()
    assert API_CLIENT.read_bytes() == COLLECTION_CLIENT.read_bytes()


def test_the_build_context_gets_the_same_bytes(tmp_path: Path) -> None:
    """app/api/build-context.sh copies the client as a file (wheels already there: no download)."""
    ctx = tmp_path / "ctx"
    (ctx / "wheels").mkdir(parents=True)
    for name, version in locks.versions("app/api/requirements.txt").items():
        wheel = f"{re.sub(r'[-.]+', '_', name.lower())}-{version}-py3-none-any.whl"
        (ctx / "wheels" / wheel).write_bytes(b"")
    pip = tmp_path / "pip"
    pip.write_text("#!/bin/sh\necho 'pip must not be called' >&2\nexit 1\n")
    pip.chmod(0o755)
    done = subprocess.run([str(REPO / "app/api/build-context.sh"), str(ctx)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PIP": str(pip)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    copied = ctx / "gpuops_api/upstreams/_runpod_api.py"
    assert not copied.is_symlink()
    assert copied.read_bytes() == COLLECTION_CLIENT.read_bytes()
    assert (ctx / "gpuops_api/upstreams/cloud.py").is_file()


def test_the_api_imports_without_ansible() -> None:
    """As in the image: no ansible package at all; the client falls back to urllib."""
    code = (
        "import sys\n"
        "class NoAnsible:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ansible' or name.startswith(('ansible.', 'ansible_collections')):\n"
        "            raise ImportError('no ansible in the image')\n"
        "sys.meta_path.insert(0, NoAnsible())\n"
        "import gpuops_api.app\n"
        "from gpuops_api.upstreams import _runpod_api as runpod\n"
        "assert not runpod.HAS_ANSIBLE_URLS\n"
        "assert not any(m == 'ansible' or m.startswith('ansible.') for m in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO / "app/api")
    assert done.returncode == 0, done.stderr
