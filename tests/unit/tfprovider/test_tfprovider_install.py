"""Installing the stand-in provider executable and the dev_overrides CLI config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.tfprovider.install import InstallError, install, main

REPO_ROOT = Path(__file__).resolve().parents[3]
PYTHON = os.path.abspath(sys.executable)


def test_install_writes_executable_and_cli_config(tmp_path: Path) -> None:
    result = install(tmp_path / "providers", PYTHON, tmp_path / "terraform.rc")
    assert result.changed
    script = Path(result.provider)
    assert script == tmp_path / "providers" / "terraform-provider-runpod"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"exec {PYTHON} -m localcloud.tfprovider" in text
    assert f"PYTHONPATH={REPO_ROOT}" in text
    config = (tmp_path / "terraform.rc").read_text()
    assert f'"runpod/runpod" = "{tmp_path / "providers"}"' in config
    assert "dev_overrides" in config and "direct {}" in config


def test_install_is_idempotent_and_repairs_changes(tmp_path: Path) -> None:
    args = (tmp_path / "p", PYTHON, tmp_path / "rc")
    assert install(*args).changed
    assert not install(*args).changed
    (tmp_path / "p" / "terraform-provider-runpod").chmod(0o644)
    assert install(*args).changed
    (tmp_path / "rc").write_text("# edited\n")
    assert install(*args).changed
    assert not install(*args).changed


def test_python_must_be_absolute_and_usable(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="absolute"):
        install(tmp_path, "python3", tmp_path / "rc")
    with pytest.raises(InstallError, match="not an executable"):
        install(tmp_path, str(tmp_path / "nope"), tmp_path / "rc")
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named tf' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    with pytest.raises(InstallError, match="No module named tf"):
        install(tmp_path, str(fake_python), tmp_path / "rc")


def test_cli_prints_one_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--dir", str(tmp_path / "p"), "--python", PYTHON, "--cli-config", str(tmp_path / "rc")]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert main(["--python", "relative", "--dir", str(tmp_path), "--cli-config", str(tmp_path / "rc")]) == 1
    assert json.loads(capsys.readouterr().out)["failed"] is True


def test_installed_executable_speaks_the_plugin_handshake(tmp_path: Path) -> None:
    """Terraform reads 'core|proto|network|address|grpc|cert' from the plugin's first stdout line."""
    result = install(tmp_path / "p", PYTHON, tmp_path / "rc")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([result.provider], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    fields = line.split("|")
    assert fields[:3] == ["1", "6", "unix"] and fields[4] == "grpc", line
