# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of gpuops.platform.slurm_job_info with a fake run_command that replays recorded Slurm answers."""

from __future__ import annotations

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpuops.platform.plugins.modules import slurm_job_info
from ansible_collections.gpuops.platform.tests.unit.plugins.modules.module_harness import ExitJson, FailJson, patch_module_exits
from ansible_collections.gpuops.platform.tests.unit.plugins.module_utils.test__slurm import (
    FakeClock,
    FakeSlurm,
    record,
)


@pytest.fixture(autouse=True)
def _module_exits(monkeypatch):
    patch_module_exits(monkeypatch)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(slurm_job_info, "CLOCK", fake)
    monkeypatch.setattr(slurm_job_info, "SLEEP", fake.sleep)
    return fake


def run_module(monkeypatch, fake: FakeSlurm, **args):
    """Run the module's main() with these args; returns (failed, result)."""
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, cmd, **kw: fake.run_command(cmd, **kw))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: fake.get_bin_path(name))
    with patch_module_args(args):
        try:
            slurm_job_info.main()
        except ExitJson as done:
            return False, done.args[0]
        except FailJson as failed:
            return True, failed.args[0]
    raise AssertionError("the module neither exited nor failed")


def text_job(name: str, **replace) -> dict:
    """A recorded ``scontrol show job`` answer, with some text replaced (for example the output paths or the state)."""
    rec = record(name)
    stdout = rec["stdout"]
    for old, new in replace.items():
        stdout = stdout.replace(old, new)
    return dict(rec, stdout=stdout)


JSON_UNSUPPORTED = record("22.05/scontrol_json_unsupported")


# -- argument handling -------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (dict(), "missing required arguments: job_id"),
    (dict(job_id=0), "job_id must be 1 or more, got 0"),
    (dict(job_id=1, wait_timeout=0), "wait_timeout must be 1 or more, got 0"),
    (dict(job_id=1, poll_interval=0), "poll_interval must be 1 or more, got 0"),
    (dict(job_id=1, tail_lines=-1), "tail_lines must be 0 or more, got -1"),
    # submitting and cancelling are slurm_job's
    (dict(job_id=1, state="cancelled"), "Unsupported parameters"),
    (dict(job_id=1, script="/a.sh"), "Unsupported parameters"),
])
def test_invalid_arguments(monkeypatch, args, message):
    fake = FakeSlurm()
    failed, result = run_module(monkeypatch, fake, **args)
    assert failed
    assert message in result["msg"]
    assert fake.calls == []


def test_scontrol_missing(monkeypatch):
    failed, result = run_module(monkeypatch, FakeSlurm(missing={"scontrol"}), job_id=1)
    assert failed
    assert "scontrol" in result["msg"] and "Slurm controller" in result["msg"]


# -- looking -------------------------------------------------------------------------------


def test_running_job_on_slurm_22_05(monkeypatch):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, show_text=record("22.05/scontrol_job_running_2nodes"),
                     hostnames=record("22.05/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=2)
    assert not failed, result
    assert result["changed"] is False
    assert result["exists"] is True
    assert result["state"] == "RUNNING"
    assert result["nodelist"] == "gpu-[1-2]"
    assert result["nodes"] == ["gpu-1", "gpu-2"]
    assert result["job_name"] == "multi"
    assert result["source"] == "scontrol"
    assert result["msg"] == "job 2 is RUNNING"
    # no wait: no tails, no timed_out
    assert "stdout_tail" not in result and "timed_out" not in result
    assert not fake.argvs("scancel") and not fake.argvs("sbatch")


def test_price_and_gpus_of_a_job_on_slurm_24_11(monkeypatch):
    """The integrator's cost report reads admin_comment and alloc_tres from this module."""
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_completed_gpu_price"), hostnames=record("24.11/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=26)
    assert not failed, result
    assert (result["state"], result["exit_code"]) == ("COMPLETED", 0)
    assert result["admin_comment"] == "gpuops_usd_per_gpu_hour=0.690000"
    assert result["alloc_tres"] == "cpu=1,node=1,billing=1,gres/gpu=1"
    assert result["msg"] == "job 26 completed"


def test_same_answer_from_the_one_line_form(monkeypatch):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, show_text=record("24.11/scontrol_o_completed_gpu_price"),
                     hostnames=record("24.11/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=26)
    assert not failed, result
    assert (result["admin_comment"], result["alloc_tres"]) == ("gpuops_usd_per_gpu_hour=0.690000", "cpu=1,node=1,billing=1,gres/gpu=1")


def test_failed_job_is_reported_not_a_failure(monkeypatch):
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_failed_exit3"), hostnames=record("24.11/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=3)
    assert not failed, result
    assert (result["state"], result["exit_code"]) == ("FAILED", 3)
    assert result["msg"].startswith("job 3") and "ended FAILED with exit code 3" in result["msg"]


def test_ended_job_from_accounting(monkeypatch):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, show_text=record("22.05/scontrol_job_aged_out"), sacct=record("22.05/sacct_multi"),
                     hostnames=record("22.05/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=17)
    assert not failed, result
    assert (result["state"], result["source"], result["nodes"]) == ("COMPLETED", "sacct", ["gpu-1", "gpu-2"])
    assert result["stdout_path"] is None and result["admin_comment"] is None


@pytest.mark.parametrize("answers", [
    dict(show_json=JSON_UNSUPPORTED, show_text=record("22.05/scontrol_job_invalid"), sacct=record("22.05/sacct_json_disabled")),
    dict(show_json=record("24.11/scontrol_json_unknown"), sacct=record("24.11/sacct_json_disabled")),
])
def test_unknown_job_does_not_exist(monkeypatch, answers):
    failed, result = run_module(monkeypatch, FakeSlurm(**answers), job_id=999999)
    assert not failed, result
    assert result["changed"] is False
    assert (result["exists"], result["job_id"], result["state"]) == (False, 999999, None)
    assert result["msg"].startswith("Slurm does not know job 999999")
    assert "MinJobAge" in result["msg"]


def test_controller_down_fails_with_the_command(monkeypatch):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, show_text=record("22.05/ctld_down_scontrol_job"))
    failed, result = run_module(monkeypatch, fake, job_id=21)
    assert failed
    assert "Unable to contact slurm controller" in result["msg"]
    assert result["rc"] != 0 and result["cmd"][0] == "/usr/bin/scontrol"


def test_check_mode_looks_the_same(monkeypatch):
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_running"), hostnames=record("24.11/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=10, _ansible_check_mode=True)
    assert not failed, result
    assert (result["changed"], result["state"]) == (False, "RUNNING")


# -- waiting -------------------------------------------------------------------------------


def test_wait_until_completed(monkeypatch, clock):
    fake = FakeSlurm(show_json=[record("24.11/scontrol_json_running"),
                                text_job("24.11/scontrol_json_running", **{'"RUNNING"': '"COMPLETED"'})],
                     hostnames=record("24.11/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=10, wait=True, poll_interval=3, tail_lines=0)
    assert not failed, result
    assert result["changed"] is False
    assert (result["state"], result["timed_out"]) == ("COMPLETED", False)
    assert (result["stdout_tail"], result["stderr_tail"]) == (None, None)
    assert not result["warnings"]
    assert clock.sleeps == [0.25]


def test_wait_for_a_job_that_fails_returns_how_it_ended_and_tails(monkeypatch, tmp_path, clock):
    out = tmp_path / "fail.out"
    out.write_text("".join("step %d\n" % i for i in range(1, 11)), encoding="utf-8")
    err = tmp_path / "fail.err"
    err.write_text("boom: missing input\n", encoding="utf-8")
    ended = text_job("22.05/scontrol_job_failed_exit3", **{"/work/logs/fail-4.out": str(out), "/work/logs/fail-4.err": str(err)})
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, hostnames=record("22.05/scontrol_hostnames"),
                     show_text=ended)
    failed, result = run_module(monkeypatch, fake, job_id=4, wait=True, tail_lines=2)
    assert not failed, result
    assert (result["state"], result["exit_code"], result["timed_out"]) == ("FAILED", 3, False)
    assert result["msg"] == "job 4 (fail) ended FAILED with exit code 3 (reason: NonZeroExitCode)"
    assert clock.sleeps == []
    assert result["stdout_tail"] == "step 9\nstep 10"
    assert result["stderr_tail"] == "boom: missing input"


def test_wait_warns_when_the_files_are_on_another_host(monkeypatch, clock):
    elsewhere = {"/work/logs/train; echo $(id) | x-1.out": "/nonexistent/out", "/work/logs/train; echo $(id) | x-1.err": "/nonexistent/err"}
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, hostnames=record("22.05/scontrol_hostnames"),
                     show_text=text_job("22.05/scontrol_job_completed", **elsewhere))
    failed, result = run_module(monkeypatch, fake, job_id=1, wait=True)
    assert not failed, result
    assert result["stdout_tail"] is None
    assert any("cannot read the output of job 1 at /nonexistent/out" in w for w in result["warnings"])


def test_wait_timeout_fails_and_leaves_the_job_running(monkeypatch, clock):
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_running"), hostnames=record("24.11/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, job_id=10, wait=True, wait_timeout=60, poll_interval=25)
    assert failed
    assert (result["timed_out"], result["changed"], result["state"]) == (True, False, "RUNNING")
    assert "keeps running" in result["msg"] and "scancel 10" in result["msg"]
    assert clock.sleeps == [0.25] * 8 + [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 25, 1.5]
    assert not fake.argvs("scancel")


def test_wait_for_an_unknown_job(monkeypatch, clock):
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_unknown"), sacct=record("24.11/sacct_json_disabled"))
    failed, result = run_module(monkeypatch, fake, job_id=999999, wait=True)
    assert not failed, result
    assert (result["exists"], result["state"]) == (False, None)
    assert clock.sleeps == []
