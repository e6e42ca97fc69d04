# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of gpuops.platform.slurm_job with a fake run_command that replays recorded Slurm answers."""

from __future__ import annotations

import os
import stat

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gpuops.platform.plugins.modules import slurm_job
from ansible_collections.gpuops.platform.tests.unit.plugins.modules.module_harness import ExitJson, FailJson, patch_module_exits
from ansible_collections.gpuops.platform.tests.unit.plugins.module_utils.test__slurm import (
    FakeClock,
    FakeSlurm,
    answer,
    record,
)


@pytest.fixture(autouse=True)
def _module_exits(monkeypatch):
    patch_module_exits(monkeypatch)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(slurm_job, "CLOCK", fake)
    monkeypatch.setattr(slurm_job, "SLEEP", fake.sleep)
    return fake


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.sh"
    path.write_text("#!/bin/bash\necho hello\n", encoding="utf-8")
    return str(path)


def run_module(monkeypatch, fake: FakeSlurm, tmp_path=None, **args):
    """Run the module's main() with these args; returns (failed, result)."""
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, cmd, **kw: fake.run_command(cmd, **kw))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: fake.get_bin_path(name))
    if tmp_path is not None:
        args.setdefault("_ansible_tmpdir", str(tmp_path))
    with patch_module_args(args):
        try:
            slurm_job.main()
        except ExitJson as done:
            return False, done.args[0]
        except FailJson as failed:
            return True, failed.args[0]
    raise AssertionError("the module neither exited nor failed")


def text_job(name: str, **replace) -> dict:
    """A recorded ``scontrol show job -o`` answer, with some text replaced (for example StdOut paths)."""
    rec = record(name)
    stdout = rec["stdout"]
    for old, new in replace.items():
        stdout = stdout.replace(old, new)
    return dict(rec, stdout=stdout)


JSON_UNSUPPORTED = record("22.05/scontrol_json_unsupported")


# -- argument handling -------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (dict(script="/a.sh", content="#!/bin/sh\n"), "mutually exclusive"),
    (dict(), "state is submitted but any of the following are missing: script, content"),
    (dict(state="cancelled"), "missing: job_id"),
    (dict(content="#!/bin/sh\n", nodes=0), "nodes must be 1 or more, got 0"),
    (dict(content="#!/bin/sh\n", ntasks=0), "ntasks must be 1 or more, got 0"),
    (dict(content="#!/bin/sh\n", gpus=-1), "gpus must be 0 or more, got -1"),
    (dict(content="#!/bin/sh\n", gpus_per_node=-1), "gpus_per_node must be 0 or more, got -1"),
    (dict(content="#!/bin/sh\n", gpus=2, gpus_per_node=1), "parameters are mutually exclusive: gpus|gpus_per_node"),
    (dict(content="#!/bin/sh\n", wait_timeout=0), "wait_timeout must be 1 or more"),
    (dict(content="#!/bin/sh\n", poll_interval=0), "poll_interval must be 1 or more"),
    (dict(content="#!/bin/sh\n", tail_lines=-1), "tail_lines must be 0 or more"),
    (dict(content="#!/bin/sh\n", time="1h"), "time '1h' is not a Slurm time limit"),
    (dict(content="#!/bin/sh\n", job_name="a\nb"), "must not hold line breaks"),
    (dict(content="#!/bin/sh\n", job_name="  "), "job_name must not be empty"),
    (dict(content="#!/bin/sh\n", env={"BAD-NAME": "x"}), "not a valid environment variable name"),
    (dict(content="#!/bin/sh\n", env={"A": None}), "env A has no value"),
    (dict(content="  \n"), "content is empty"),
    (dict(content="#!/bin/sh\n", env={"A": "1"}, sbatch_args=["--export=NONE"]), "drop --export from sbatch_args"),
    (dict(content="#!/bin/sh\n", user="no-such-user-gpuops"), "user 'no-such-user-gpuops' does not exist"),
    (dict(script="/nonexistent/train.sh"), "script /nonexistent/train.sh does not exist"),
    (dict(state="bogus", job_id=1), "value of state must be one of"),
    # looking at a job is gpuops.platform.slurm_job_info's
    (dict(state="queried", job_id=1), "value of state must be one of: submitted, cancelled, got: queried"),
    (dict(state="cancelled", job_id=0), "job_id must be 1 or more, got 0"),
])
def test_invalid_arguments(monkeypatch, args, message):
    fake = FakeSlurm()
    failed, result = run_module(monkeypatch, fake, **args)
    assert failed
    assert message in result["msg"]
    assert fake.calls == []


def test_script_must_be_a_readable_non_empty_file(monkeypatch, tmp_path):
    empty = tmp_path / "empty.sh"
    empty.write_text("", encoding="utf-8")
    failed, result = run_module(monkeypatch, FakeSlurm(), script=str(empty))
    assert failed and result["msg"] == "script %s is empty" % empty
    failed, result = run_module(monkeypatch, FakeSlurm(), script=str(tmp_path))
    assert failed and result["msg"] == "script %s is not a regular file" % tmp_path


def test_sbatch_missing(monkeypatch, script):
    failed, result = run_module(monkeypatch, FakeSlurm(missing={"sbatch"}), script=script)
    assert failed
    assert result["msg"].startswith("sbatch not found on this host: run the task on the Slurm controller")


# -- submitting ---------------------------------------------------------------------------


def test_submit_builds_an_argument_list(monkeypatch, script):
    fake = FakeSlurm(sbatch=answer(0, "42\n"), show_json=JSON_UNSUPPORTED,
                     show_text=text_job("22.05/scontrol_job_pending_priority", **{"JobId=1 ": "JobId=42 "}))
    failed, result = run_module(
        monkeypatch, fake, script=script, job_name="a; rm -rf / $(id) `x` | y & $HOME ~", partition="gpu",
        nodes=2, ntasks=4, gpus=2, time="1-00:00:00", chdir="/data/run", output="/data/logs/%x-%j.out",
        error="/data/logs/%x-%j.err", sbatch_args=["--mem=16G", "--exclusive"])
    assert not failed, result
    assert result["changed"] is True
    assert result["job_id"] == 42
    assert result["state"] == "PENDING"
    assert result["nodes"] == []
    expected = [
        "/usr/bin/sbatch", "--parsable", "--job-name=a; rm -rf / $(id) `x` | y & $HOME ~", "--partition=gpu",
        "--nodes=2", "--ntasks=4", "--gpus=2", "--time=1-00:00:00", "--chdir=/data/run",
        "--output=/data/logs/%x-%j.out", "--error=/data/logs/%x-%j.err", "--mem=16G", "--exclusive", script,
    ]
    assert result["cmd"] == expected
    argv, kwargs = fake.calls[0]
    assert argv == expected
    assert kwargs["expand_user_and_vars"] is False
    assert "timed_out" not in result and "stdout_tail" not in result


def test_env_values_travel_in_the_environment(monkeypatch, script):
    fake = FakeSlurm(sbatch=record("22.05/sbatch_parsable"), show_json=JSON_UNSUPPORTED,
                     show_text=record("22.05/scontrol_job_completed"))
    failed, result = run_module(monkeypatch, fake, script=script,
                                env={"FOO": "a,b=c,d", "BAR": "x y $HOME", "N": 3, "T": True})
    assert not failed, result
    argv, kwargs = fake.calls[0]
    assert "--export=ALL" in argv
    assert kwargs["environ_update"] == {"FOO": "a,b=c,d", "BAR": "x y $HOME", "N": "3", "T": "true"}
    assert not any("a,b=c,d" in arg or "$HOME" in arg for arg in argv)


def test_content_goes_to_a_private_file(monkeypatch, tmp_path):
    seen = {}

    def look(argv, _kwargs):
        if os.path.basename(argv[0]) == "sbatch":
            path = argv[-1]
            seen["path"] = path
            seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
            with open(path, encoding="utf-8") as handle:
                seen["text"] = handle.read()

    fake = FakeSlurm(sbatch=answer(0, "7\n"), show_json=record("24.11/scontrol_json_pending"))
    fake.answers["show_json"][0] = dict(fake.answers["show_json"][0],
                                        stdout=fake.answers["show_json"][0]["stdout"].replace('"job_id": 5', '"job_id": 7'))
    fake.on_call = look
    failed, result = run_module(monkeypatch, fake, tmp_path=tmp_path, content="#!/bin/bash\nnvidia-smi")
    assert not failed, result
    assert seen["path"].startswith(str(tmp_path))
    assert seen["mode"] == 0o700
    assert seen["text"] == "#!/bin/bash\nnvidia-smi\n"
    assert result["job_id"] == 7 and result["state"] == "PENDING"


@pytest.mark.parametrize("name", [
    "22.05/sbatch_err_partition",
    "22.05/sbatch_err_no_shebang",
    "22.05/sbatch_err_too_many_gpus",
    "22.05/ctld_down_sbatch",
])
def test_sbatch_failure_is_verbatim(monkeypatch, script, name):
    rec = record(name)
    failed, result = run_module(monkeypatch, FakeSlurm(sbatch=rec), script=script)
    assert failed
    assert result["msg"] == rec["stderr"].strip()
    assert result["rc"] == rec["rc"]
    assert result["changed"] is False


def test_check_mode_runs_test_only(monkeypatch, script):
    fake = FakeSlurm(sbatch_test=record("22.05/sbatch_test_only"))
    failed, result = run_module(monkeypatch, fake, script=script, gpus=1, job_name="t", _ansible_check_mode=True)
    assert not failed, result
    assert result["changed"] is True
    assert result["job_id"] is None
    assert result["cmd"] == ["/usr/bin/sbatch", "--parsable", "--job-name=t", "--gpus=1", script]
    assert fake.argvs() == [["/usr/bin/sbatch", "--test-only", "--job-name=t", "--gpus=1", script]]
    assert "sbatch: Job 12 to start at" in result["msg"]


def test_gpus_per_node_asks_sbatch_for_gpus_on_each_node(monkeypatch, script):
    """--gpus-per-node, recorded on Slurm 24.11 with two one-GPU nodes: 1 per node on 2 nodes fits (2 GPUs)."""
    rec = record("24.11/sbatch_test_only_gpus_per_node")
    assert rec["cmd"][1:4] == ["--test-only", "--nodes=2", "--gpus-per-node=1"]
    fake = FakeSlurm(sbatch_test=rec)
    failed, result = run_module(monkeypatch, fake, script=script, nodes=2, gpus_per_node=1, _ansible_check_mode=True)
    assert not failed, result
    assert result["cmd"] == ["/usr/bin/sbatch", "--parsable", "--nodes=2", "--gpus-per-node=1", script]
    assert fake.argvs() == [["/usr/bin/sbatch", "--test-only", "--nodes=2", "--gpus-per-node=1", script]]
    assert "using 2 processors on nodes gpuops-[0-1]" in result["msg"]


def test_gpus_per_node_zero_adds_no_option(monkeypatch, script):
    fake = FakeSlurm(sbatch_test=record("24.11/sbatch_test_only"))
    failed, result = run_module(monkeypatch, fake, script=script, gpus_per_node=0, _ansible_check_mode=True)
    assert not failed, result
    assert result["cmd"] == ["/usr/bin/sbatch", "--parsable", script]


@pytest.mark.parametrize("name, args", [
    # 2 per node on two one-GPU nodes: more than any node has.
    ("24.11/sbatch_test_only_gpus_per_node_over", dict(nodes=2, gpus_per_node=2)),
    # 2 for the whole job on one node, where the cluster holds 2 GPUs but no node has 2.
    ("24.11/sbatch_test_only_gpus_one_node", dict(nodes=1, gpus=2)),
])
def test_more_gpus_than_a_node_has_is_slurms_refusal_verbatim(monkeypatch, script, name, args):
    rec = record(name)
    failed, result = run_module(monkeypatch, FakeSlurm(sbatch_test=rec), script=script, _ansible_check_mode=True, **args)
    assert failed
    assert result["msg"] == "allocation failure: Requested node configuration is not available"


def test_check_mode_reports_test_only_failure(monkeypatch, script):
    rec = record("22.05/sbatch_test_only_err")
    failed, result = run_module(monkeypatch, FakeSlurm(sbatch_test=rec), script=script, partition="nope",
                                _ansible_check_mode=True)
    assert failed
    assert result["msg"] == "sbatch: error: invalid partition specified: nope\nallocation failure: Invalid partition name specified"


def test_check_mode_validates_the_script(monkeypatch, tmp_path):
    failed, result = run_module(monkeypatch, FakeSlurm(), script=str(tmp_path / "nope.sh"), _ansible_check_mode=True)
    assert failed and "does not exist" in result["msg"]


# -- waiting ------------------------------------------------------------------------------


def test_wait_success_returns_tails(monkeypatch, script, tmp_path, clock):
    out = tmp_path / "train-1.out"
    err = tmp_path / "train-1.err"
    out.write_text("".join("line %d\n" % i for i in range(1, 101)), encoding="utf-8")
    err.write_text("a warning\n", encoding="utf-8")
    paths = {"/work/logs/train; echo $(id) | x-1.out": str(out), "/work/logs/train; echo $(id) | x-1.err": str(err)}
    fake = FakeSlurm(sbatch=record("22.05/sbatch_parsable"), show_json=JSON_UNSUPPORTED, show_text=[
        record("22.05/scontrol_job_pending_priority"),
        record("22.05/scontrol_job_pending_priority"),
        text_job("22.05/scontrol_job_completed", **paths),
    ])
    failed, result = run_module(monkeypatch, fake, script=script, wait=True, poll_interval=7, tail_lines=3)
    assert not failed, result
    assert result["changed"] is True
    assert (result["job_id"], result["state"], result["exit_code"], result["signal"]) == (1, "COMPLETED", 0, 0)
    assert result["timed_out"] is False
    assert result["nodes"] == ["gpu-1"]
    assert result["elapsed"] == 2
    assert result["stdout_path"] == str(out)
    assert result["stdout_tail"] == "line 98\nline 99\nline 100"
    assert result["stderr_tail"] == "a warning"
    assert clock.sleeps == [0.25, 0.25]
    assert result["msg"] == "job 1 completed"


def test_wait_failure_gives_exit_code_state_and_tails(monkeypatch, script, tmp_path, clock):
    out = tmp_path / "fail.out"
    err = tmp_path / "fail.err"
    out.write_text("starting\n", encoding="utf-8")
    err.write_text("boom: missing input\n", encoding="utf-8")
    fake = FakeSlurm(sbatch=answer(0, "4\n"), show_json=JSON_UNSUPPORTED, show_text=text_job(
        "22.05/scontrol_job_failed_exit3", **{"/work/logs/fail-4.out": str(out), "/work/logs/fail-4.err": str(err)}))
    failed, result = run_module(monkeypatch, fake, script=script, wait=True)
    assert failed
    assert result["changed"] is True
    assert (result["state"], result["exit_code"], result["reason"]) == ("FAILED", 3, "NonZeroExitCode")
    assert result["msg"] == "job 4 (fail) ended FAILED with exit code 3 (reason: NonZeroExitCode)"
    assert result["stdout_tail"] == "starting"
    assert result["stderr_tail"] == "boom: missing input"
    assert result["timed_out"] is False


@pytest.mark.parametrize("name, job_id, words", [
    ("22.05/scontrol_job_timeout", 9, ["ended TIMEOUT", "signal 15", "time limit"]),
    ("22.05/scontrol_job_nodefail", 14, ["ended NODE_FAIL", "nodes (gpu-[1-2]) failed"]),
    ("22.05/scontrol_job_failed_launch", 6, ["signal 53", "JobLaunchFailure", "batch host gpu-2"]),
    ("22.05/scontrol_job_cancelled_running", 2, ["ended CANCELLED", "signal 15"]),
    ("24.11/scontrol_json_failed_signal9", 8, ["ended FAILED with exit code 0, signal 9 (reason: RaisedSignal)"]),
])
def test_wait_failure_messages(monkeypatch, script, clock, name, job_id, words):
    family = "show_json" if "json" in name else "show_text"
    answers = {family: record(name), "hostnames": record("22.05/scontrol_hostnames")}
    if family == "show_text":
        answers["show_json"] = JSON_UNSUPPORTED
    fake = FakeSlurm(sbatch=answer(0, "%d\n" % job_id), **answers)
    failed, result = run_module(monkeypatch, fake, script=script, wait=True)
    assert failed
    for word in words:
        assert word in result["msg"]
    # the output files are on another host here: no tail, a warning
    assert result["stdout_tail"] is None
    assert any("cannot read the output of job %d" % job_id in w for w in result["warnings"])


def test_wait_timeout_leaves_the_job_running(monkeypatch, script, clock):
    fake = FakeSlurm(sbatch=answer(0, "10\n"), show_json=record("24.11/scontrol_json_running"))
    failed, result = run_module(monkeypatch, fake, script=script, wait=True, wait_timeout=60, poll_interval=25)
    assert failed
    assert result["timed_out"] is True
    assert result["changed"] is True
    assert result["job_id"] == 10
    assert result["state"] == "RUNNING"
    assert "keeps running" in result["msg"]
    assert "gpuops.platform.slurm_job_info job_id=10" in result["msg"] and "scancel 10" in result["msg"]
    assert clock.sleeps == [0.25] * 8 + [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 25, 1.5]
    assert not fake.argvs("scancel")


def test_wait_lookup_failure_after_submission(monkeypatch, script, clock):
    fake = FakeSlurm(sbatch=answer(0, "21\n"), show_json=JSON_UNSUPPORTED, show_text=record("22.05/ctld_down_scontrol_job"))
    failed, result = run_module(monkeypatch, fake, script=script, wait=True)
    assert failed
    assert result["changed"] is True
    assert result["job_id"] == 21
    assert result["msg"] == ("job 21 was submitted, but its state cannot be read: "
                             "slurm_load_jobs error: Unable to contact slurm controller (connect failure)")


# -- cancelling ---------------------------------------------------------------------------


def test_cancel_running_job(monkeypatch):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, hostnames=record("22.05/scontrol_hostnames"), scancel=record("22.05/scancel_running"),
                     show_text=[record("22.05/scontrol_job_running_2nodes"), record("22.05/scontrol_job_cancelling")])
    failed, result = run_module(monkeypatch, fake, state="cancelled", job_id=2)
    assert not failed, result
    assert result["changed"] is True
    assert result["cmd"] == ["/usr/bin/scancel", "2"]
    assert result["state"] == "CANCELLED"
    assert result["nodes"] == ["gpu-1", "gpu-2"]
    assert fake.argvs("scancel") == [["/usr/bin/scancel", "2"]]


def test_cancel_pending_job_in_check_mode(monkeypatch):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, show_text=record("22.05/scontrol_job_pending_resources"))
    failed, result = run_module(monkeypatch, fake, state="cancelled", job_id=3, _ansible_check_mode=True)
    assert not failed, result
    assert result["changed"] is True
    assert result["state"] == "PENDING"
    assert not fake.argvs("scancel")


@pytest.mark.parametrize("name, job_id", [
    ("22.05/scontrol_job_completed", 1),
    ("22.05/scontrol_job_cancelled_running", 2),
    ("22.05/scontrol_job_completing", 19),
])
def test_cancel_ended_job_changes_nothing(monkeypatch, name, job_id):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, show_text=record(name), hostnames=record("22.05/scontrol_hostnames"))
    failed, result = run_module(monkeypatch, fake, state="cancelled", job_id=job_id)
    assert not failed, result
    assert result["changed"] is False
    assert "nothing to cancel" in result["msg"]
    assert not fake.argvs("scancel")


def test_cancel_unknown_job(monkeypatch):
    fake = FakeSlurm(show_json=JSON_UNSUPPORTED, show_text=record("22.05/scontrol_job_invalid"), sacct=record("22.05/sacct_json_disabled"))
    failed, result = run_module(monkeypatch, fake, state="cancelled", job_id=999999)
    assert not failed, result
    assert result["changed"] is False
    assert result["state"] is None
    assert any("MinJobAge" in w for w in result["warnings"])


# -- tails ------------------------------------------------------------------------------


def test_tail_lines_0_reads_nothing_and_warns_nothing(monkeypatch, script, clock):
    fake = FakeSlurm(sbatch=record("22.05/sbatch_parsable"), show_json=JSON_UNSUPPORTED, show_text=[
        text_job("22.05/scontrol_job_completed", **{"/work/logs/train; echo $(id) | x-1.out": "/nonexistent/out",
                                                    "/work/logs/train; echo $(id) | x-1.err": "/nonexistent/err"}),
    ])
    failed, result = run_module(monkeypatch, fake, script=script, wait=True, tail_lines=0)
    assert not failed, result
    assert result["stdout_tail"] is None and result["stderr_tail"] is None
    assert not result.get("warnings")
