"""The AWX execution environment's build stops early without its build arguments.

The repository names no registry or mirror host: the base image, EPEL and
Terraform come from build arguments without a default
(execution-environment.yml, awx/ee/check-build-args.sh). Here the
Containerfile that `ansible-builder create` renders is built for real with
Docker, without network for its RUN steps, only up to where it must stop:
without EE_BASE_IMAGE at FROM, on the definition's placeholder host; from
another (local) image, at the check, before anything is installed. Nothing
is downloaded and no image is tagged.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, VENV_BIN, docker_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not docker_available(), reason="needs a Docker engine (scripts/setup.sh)"),
]

LOCAL_IMAGE = "gpuops/debian-base:bookworm"  # scripts/setup.sh images
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ee-args") / "context"
    result = subprocess.run(
        [str(VENV_BIN / "ansible-builder"), "create", "--file", "execution-environment.yml", "--context", str(out),
         "--output-filename", "Containerfile"],
        cwd=REPO, env={**os.environ, **OFFLINE}, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def build(context: Path, *build_args: str) -> subprocess.CompletedProcess:
    """docker build of the context (BuildKit where the buildx plugin is there, else the classic builder)."""
    env = dict(os.environ)
    buildkit = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0
    progress = ["--progress=plain"] if buildkit else []
    if not buildkit:
        env["DOCKER_BUILDKIT"] = "0"
    args = [arg for pair in build_args for arg in ("--build-arg", pair)]
    return subprocess.run(
        ["docker", "build", *progress, "--rm", "--force-rm", "--network", "none", "-f", "Containerfile", *args, "."],
        cwd=context, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_without_build_arguments_the_build_stops_at_from(context):
    result = build(context)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    # FROM fails on the placeholder host, which says what to set; no step of the image ran.
    assert "set-build-arg-ee-base-image.invalid" in out, out[-3000:]
    assert "gpuops EE:" not in out and "install-epel:" not in out


def test_from_another_image_the_check_stops_the_build(context):
    if subprocess.run(["docker", "image", "inspect", LOCAL_IMAGE], capture_output=True, check=False).returncode:
        pytest.fail(f"{LOCAL_IMAGE} is missing: build it with scripts/setup.sh images")
    result = build(context, f"EE_BASE_IMAGE={LOCAL_IMAGE}", "EPEL_KEY_URL=https://mirror.example.org/epel/key")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    for name in ("EPEL_RELEASE_URL", "TERRAFORM_RELEASES_URL", "HASHICORP_KEY_URL"):
        assert f"gpuops EE: build argument {name} is not set: pass --build-arg {name}=<" in out, (name, out[-3000:])
    assert "build argument EPEL_KEY_URL is not set" not in out
    assert f"gpuops EE: EE_BASE_IMAGE is {LOCAL_IMAGE}, not the pinned base image" in out
    assert "stopping before anything is installed" in out
    # Nothing after the check ran: the next step, EPEL's installer, says something whenever it runs.
    assert "install-epel:" not in out
