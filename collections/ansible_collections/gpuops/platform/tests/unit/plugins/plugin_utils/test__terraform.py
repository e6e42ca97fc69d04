# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.gpuops.platform.plugins.plugin_utils._terraform import (
    TerraformCommands,
    TerraformError,
    TerraformNoState,
    TerraformNotFound,
)


@pytest.fixture
def project(tmp_path):
    # a name that would break if anything went through a shell
    path = tmp_path / "root module; echo pwned"
    path.mkdir()
    return path


def commands(fake, project, **env):
    return TerraformCommands(project_path=str(project), binary=str(fake.path), env=env)


@pytest.mark.parametrize("output_file", ["terraform_output.json", "terraform_output_sensitive.json"])
def test_output_parses_values_and_sensitivity(fake_terraform, fixtures_dir, project, load_fixture, output_file):
    expected = load_fixture(output_file)
    outputs = commands(fake_terraform, project, **fake_terraform.env(fixtures_dir / output_file)).output()
    assert set(outputs) == set(expected)
    for name, entry in expected.items():
        assert outputs[name].name == name
        assert outputs[name].value == entry["value"]
        assert outputs[name].sensitive is entry["sensitive"]
        assert outputs[name].type == entry["type"]
    call = fake_terraform.calls()[-1]
    assert call["argv"] == ["output", "-json", "-no-color"]
    assert call["cwd"] == str(project)
    assert call["env"]["TF_IN_AUTOMATION"] == "1"


def test_sensitive_value_never_in_repr(fake_terraform, fixtures_dir, project, load_fixture):
    recorded = load_fixture("terraform_output_sensitive.json")
    sensitive = [name for name, entry in recorded.items() if entry["sensitive"]]
    plain = [name for name, entry in recorded.items() if not entry["sensitive"] and isinstance(entry["value"], str)]
    assert sensitive and plain, "the fixture must hold a sensitive and a plain string output"
    outputs = commands(fake_terraform, project, **fake_terraform.env(fixtures_dir / "terraform_output_sensitive.json")).output()
    for name in sensitive:
        assert recorded[name]["value"] not in repr(outputs)
        assert "<sensitive>" in repr(outputs[name])
    for name in plain:
        assert repr(recorded[name]["value"]) in repr(outputs[name])


def test_state_file_and_env_overrides(fake_terraform, fixtures_dir, project, tmp_path):
    env = fake_terraform.env(fixtures_dir / "terraform_output.json")
    env["TF_DATA_DIR"] = str(tmp_path / "data")
    commands(fake_terraform, project, **env).output(state_file=str(tmp_path / "my state.tfstate"))
    call = fake_terraform.calls()[-1]
    assert call["argv"] == ["output", "-json", "-no-color", "-state=%s" % (tmp_path / "my state.tfstate")]
    assert call["env"]["TF_DATA_DIR"] == str(tmp_path / "data")


def test_warnings_on_stderr_with_rc_0_are_fine(fake_terraform, fixtures_dir, project):
    env = fake_terraform.env(fixtures_dir / "terraform_output.json", stderr="Warning: Provider development overrides are in effect\n")
    assert "pods" in commands(fake_terraform, project, **env).output()


def test_empty_outputs_mean_no_state(fake_terraform, project, tmp_path):
    with pytest.raises(TerraformNoState) as err:
        commands(fake_terraform, project, **fake_terraform.env(mode="empty")).output(state_file=str(tmp_path / "none.tfstate"))
    assert "no Terraform state at %s" % (tmp_path / "none.tfstate") in str(err.value)
    assert "playbooks/provision.yml" in str(err.value)
    assert isinstance(err.value, TerraformError)


def test_failure_carries_rc_and_stderr(fake_terraform, project):
    with pytest.raises(TerraformError) as err:
        commands(fake_terraform, project, **fake_terraform.env(mode="fail")).output()
    assert err.value.rc == 1
    assert "Backend initialization required" in err.value.stderr
    assert "Backend initialization required" in str(err.value)
    assert not isinstance(err.value, (TerraformNoState, TerraformNotFound))


def test_stdout_that_is_not_json_is_never_echoed(fake_terraform, project):
    with pytest.raises(TerraformError) as err:
        commands(fake_terraform, project, **fake_terraform.env(mode="garbage")).output()
    assert "not JSON" in str(err.value)
    assert "secret-value" not in str(err.value)


def test_missing_binary(project):
    with pytest.raises(TerraformNotFound) as err:
        TerraformCommands(project_path=str(project), binary=str(project / "no-terraform")).output()
    assert "make setup" in str(err.value)


def test_binary_not_on_path(project, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TerraformNotFound, match="make setup"):
        TerraformCommands(project_path=str(project)).output()


def test_binary_found_on_path(fake_terraform, fixtures_dir, project, monkeypatch):
    monkeypatch.setenv("PATH", str(fake_terraform.bin_dir))
    terraform = TerraformCommands(project_path=str(project), env=fake_terraform.env(fixtures_dir / "terraform_output.json"))
    assert terraform.find_binary() == str(fake_terraform.path)
    assert "pods" in terraform.output()


def test_binary_not_executable(project, tmp_path):
    binary = tmp_path / "terraform"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    with pytest.raises(TerraformNotFound):
        TerraformCommands(project_path=str(project), binary=str(binary)).output()


def test_missing_project_path(fake_terraform, tmp_path):
    with pytest.raises(TerraformError, match="does not exist"):
        TerraformCommands(project_path=str(tmp_path / "nowhere"), binary=str(fake_terraform.path)).output()


def test_timeout(fake_terraform, project):
    terraform = TerraformCommands(
        project_path=str(project), binary=str(fake_terraform.path), env=fake_terraform.env(mode="sleep"), timeout=0.5)
    with pytest.raises(TerraformError, match="did not finish within"):
        terraform.output()
