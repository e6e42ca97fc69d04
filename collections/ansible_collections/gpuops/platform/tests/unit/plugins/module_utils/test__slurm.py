# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of the Slurm wrapper, against answers recorded from real Slurm 22.05 and 24.11 clusters."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from ansible_collections.gpuops.platform.plugins.module_utils._slurm import (
    SbatchRequest,
    SlurmCommandFailed,
    SlurmCommands,
    SlurmJobUnknown,
    SlurmNotFound,
    SlurmParseError,
    job_from_sacct,
    job_from_scontrol_json,
    job_from_scontrol_record,
    parse_duration,
    parse_exit_code,
    parse_sbatch_parsable,
    parse_scontrol_records,
    tail_file,
    validate_env,
    validate_time_spec,
    wait_for_job,
)


FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "slurm"


def record(name: str) -> dict:
    """A recorded command run: ``record("22.05/sbatch_parsable")``."""
    with open(FIXTURES / (name + ".json"), encoding="utf-8") as handle:
        return json.load(handle)


def answer(rc: int = 0, stdout: str = "", stderr: str = "") -> dict:
    """A made-up command run, for the few cases that cannot be recorded."""
    return {"cmd": [], "rc": rc, "stdout": stdout, "stderr": stderr}


class FakeSlurm:
    """Stands in for ``module.run_command`` and ``module.get_bin_path`` on a Slurm controller.

    Each command family answers from its own list of recorded runs: every call
    takes the next answer, the last one repeats. ``calls`` holds
    ``(argv, kwargs)`` of every call.
    """

    FAMILIES = ("sbatch", "sbatch_test", "show_json", "show_text", "hostnames", "sacct", "scancel")

    def __init__(self, missing=(), **answers) -> None:
        unknown = set(answers) - set(self.FAMILIES)
        if unknown:
            raise TypeError("unknown command families %s" % sorted(unknown))
        self.answers = {name: list(value) if isinstance(value, list) else [value] for name, value in answers.items()}
        self.missing = set(missing)
        self.calls: list = []
        self.on_call = None  # optional hook(argv, kwargs), for example to look at a script file

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return None if name in self.missing else "/usr/bin/" + name

    @staticmethod
    def family(argv) -> str:
        name = os.path.basename(argv[0])
        if name == "sbatch":
            return "sbatch_test" if "--test-only" in argv else "sbatch"
        if name == "scontrol":
            if argv[1:3] == ["show", "hostnames"]:
                return "hostnames"
            return "show_json" if "--json" in argv else "show_text"
        return name

    def run_command(self, args, **kwargs):
        assert isinstance(args, list), "commands must be argument lists, got %r" % (args,)
        assert not kwargs.get("use_unsafe_shell"), "no shell"
        self.calls.append((list(args), kwargs))
        if self.on_call:
            self.on_call(args, kwargs)
        family = self.family(args)
        queue = self.answers.get(family)
        if not queue:
            raise AssertionError("unexpected command %r (family %s)" % (args, family))
        rec = queue.pop(0) if len(queue) > 1 else queue[0]
        return rec["rc"], rec["stdout"], rec["stderr"]

    def argvs(self, family=None) -> list:
        return [argv for argv, _kw in self.calls if family is None or self.family(argv) == family]


def scontrol_record(name: str) -> dict:
    records = parse_scontrol_records(record(name)["stdout"])
    assert len(records) == 1
    return records[0]


# -- small parsers -----------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("0:0", (0, 0)),
    ("3:0", (3, 0)),
    ("0:53", (0, 53)),
    ("255:0", (255, 0)),
    ("", (None, None)),
    (None, (None, None)),
    ("3", (None, None)),
])
def test_parse_exit_code(text, expected):
    assert parse_exit_code(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("00:00:02", 2),
    ("00:01:06", 66),
    ("12:34", 754),
    ("1-02:03:04", 93784),
    ("10-00:00:00", 864000),
    ("INVALID", None),
    ("UNLIMITED", None),
    ("", None),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


def test_parse_sbatch_parsable_recorded():
    assert parse_sbatch_parsable(record("22.05/sbatch_parsable")["stdout"]) == (1, None)
    assert parse_sbatch_parsable(record("24.11/sbatch_uid")["stdout"]) == (7, None)


def test_parse_sbatch_parsable_with_cluster_and_garbage():
    assert parse_sbatch_parsable("4242;gpuops\n") == (4242, "gpuops")
    with pytest.raises(ValueError):
        parse_sbatch_parsable("Submitted batch job 12\n")
    with pytest.raises(ValueError):
        parse_sbatch_parsable("")


@pytest.mark.parametrize("value", ["30", "0", "90:00", "1:30:00", "2-0", "2-12:00", "2-00:00:00", "UNLIMITED", "infinite", "-1"])
def test_valid_time_specs(value):
    validate_time_spec(value)


@pytest.mark.parametrize("value", ["", "1h", "bogus", "1:2:3:4", "2-", "-5", "1.5", "30 min", "1:30:00\n"])
def test_invalid_time_specs(value):
    with pytest.raises(ValueError) as err:
        validate_time_spec(value)
    assert "HH:MM:SS" in str(err.value)


def test_validate_env():
    assert validate_env({"A": "a,b", "B": 3, "C": True, "D": "", "_E1": "x\ny"}) == {
        "A": "a,b", "B": "3", "C": "true", "D": "", "_E1": "x\ny"}
    for bad in ({"1A": "x"}, {"A-B": "x"}, {"A,B": "x"}, {"A=B": "x"}, {"": "x"}):
        with pytest.raises(ValueError, match="not a valid environment variable name"):
            validate_env(bad)
    with pytest.raises(ValueError, match="has no value"):
        validate_env({"A": None})
    with pytest.raises(ValueError, match="NUL"):
        validate_env({"A": "x\x00y"})


# -- scontrol show job -o (Slurm 22.05) ------------------------------------------------------

# fixture: (state, reason, exit_code, signal, nodelist, elapsed)
SCONTROL_TEXT_CASES = {
    "22.05/scontrol_job_pending_priority": ("PENDING", None, 0, 0, "", 0),
    "22.05/scontrol_job_pending_resources": ("PENDING", "Resources", 0, 0, "", 0),
    "22.05/scontrol_job_pending_nodelimit": ("PENDING", "PartitionConfig", 0, 0, "", 0),
    "22.05/scontrol_job_running_2nodes": ("RUNNING", None, 0, 0, "gpu-[1-2]", 2),
    "22.05/scontrol_job_timeout_running": ("RUNNING", None, 0, 0, "gpu-1", 2),
    "22.05/scontrol_job_completing": ("COMPLETING", None, 0, 0, "gpu-1", 0),
    "22.05/scontrol_job_completed": ("COMPLETED", None, 0, 0, "gpu-1", 2),
    "22.05/scontrol_job_failed_exit3": ("FAILED", "NonZeroExitCode", 3, 0, "gpu-1", 0),
    "22.05/scontrol_job_failed_signal9": ("FAILED", "JobLaunchFailure", 0, 9, "gpu-1", 0),
    "22.05/scontrol_job_failed_launch": ("FAILED", "JobLaunchFailure", 0, 53, "gpu-2", 0),
    "22.05/scontrol_job_cancelled_pending": ("CANCELLED", "Resources", 0, 0, "", 0),
    "22.05/scontrol_job_cancelling": ("CANCELLED", None, 0, 15, "gpu-[1-2]", 3),
    "22.05/scontrol_job_cancelled_running": ("CANCELLED", None, 0, 15, "gpu-[1-2]", 3),
    "22.05/scontrol_job_timeout": ("TIMEOUT", "TimeLimit", 0, 15, "gpu-1", 66),
    "22.05/scontrol_job_nodefail": ("NODE_FAIL", "NodeDown", 0, 15, "gpu-[1-2]", 31),
    "22.05/scontrol_job_requeued_after_nodefail": ("PENDING", "BeginTime", 0, 0, "", 0),
    "24.11/scontrol_o_completed": ("COMPLETED", None, 0, 0, "trixie1", 2),
    "24.11/scontrol_o_completing": ("COMPLETING", None, 0, 0, "trixie1", 0),
}


@pytest.mark.parametrize("name", sorted(SCONTROL_TEXT_CASES))
def test_scontrol_text_fixtures(name):
    state, reason, exit_code, signal, nodelist, elapsed = SCONTROL_TEXT_CASES[name]
    job = job_from_scontrol_record(scontrol_record(name))
    assert (job.state, job.reason, job.exit_code, job.signal, job.nodelist, job.elapsed) == (
        state, reason, exit_code, signal, nodelist, elapsed)
    assert job.source == "scontrol"
    assert job.finished is (state not in ("PENDING", "RUNNING", "COMPLETING"))
    assert job.cancellable is (state in ("PENDING", "RUNNING"))
    assert job.succeeded is (state == "COMPLETED")


def test_scontrol_text_keeps_spaces_and_metacharacters():
    job = job_from_scontrol_record(scontrol_record("22.05/scontrol_job_completed"))
    assert job.job_id == 1
    assert job.name == "train; echo $(id) | x"
    assert job.stdout_path == "/work/logs/train; echo $(id) | x-1.out"
    assert job.stderr_path == "/work/logs/train; echo $(id) | x-1.err"
    assert job.work_dir == "/work"
    assert job.partition == "gpu"
    assert job.batch_host == "gpu-1"


def test_scontrol_text_default_output_and_keys_with_slashes():
    rec = scontrol_record("22.05/scontrol_job_running_2nodes")
    assert rec["AllocNode:Sid"].startswith("gpu-1:")
    assert rec["CPUs/Task"] == "1"
    assert rec["TRES"] == "cpu=4,node=2,billing=4"
    assert rec["ReqNodeList"] == "(null)"
    job = job_from_scontrol_record(rec)
    assert job.stdout_path == job.stderr_path == "/work/logs/multi-2.out"


def test_scontrol_text_job_name_cannot_fake_fields():
    line = record("22.05/scontrol_job_failed_exit3")["stdout"]
    line = line.replace("JobName=fail ", "JobName=lr=0.1 x JobState=COMPLETED ExitCode=0:0 ")
    line = line.replace("StdOut=/work/logs/fail-4.out", "StdOut=/work/my logs/fail 4.out")
    job = job_from_scontrol_record(parse_scontrol_records(line)[0])
    assert (job.state, job.exit_code) == ("FAILED", 3)
    assert job.stdout_path == "/work/my logs/fail 4.out"
    assert job.name.startswith("lr=0.1 x")


def test_scontrol_record_without_job_id():
    with pytest.raises(ValueError):
        job_from_scontrol_record({"JobName": "x"})


# -- scontrol show job --json (Slurm 24.11) ---------------------------------------------------

SCONTROL_JSON_CASES = {
    # fixture: (job_id, state, reason, exit_code, signal, nodelist, elapsed)
    "24.11/scontrol_json_completed": (1, "COMPLETED", None, 0, 0, "trixie1", 2),
    "24.11/scontrol_json_completing": (11, "COMPLETING", None, 0, 0, "trixie1", None),
    "24.11/scontrol_json_failed_exit3": (3, "FAILED", "NonZeroExitCode", 3, 0, "trixie1", 0),
    "24.11/scontrol_json_failed_signal9": (8, "FAILED", "RaisedSignal", 0, 9, "trixie1", 0),
    "24.11/scontrol_json_timeout": (2, "TIMEOUT", "TimeLimit", 0, 15, "trixie1", 72),
    "24.11/scontrol_json_cancelled": (4, "CANCELLED", "Resources", 0, 0, "", 0),
    "24.11/scontrol_json_pending": (5, "PENDING", "Priority", 0, 0, "", 0),
    "24.11/scontrol_json_pending_resources": (4, "PENDING", "Resources", 0, 0, "", 0),
    "24.11/scontrol_json_running": (10, "RUNNING", None, 0, 0, "trixie1", None),
}


@pytest.mark.parametrize("name", sorted(SCONTROL_JSON_CASES))
def test_scontrol_json_fixtures(name):
    job_id, state, reason, exit_code, signal, nodelist, elapsed = SCONTROL_JSON_CASES[name]
    job = job_from_scontrol_json(json.loads(record(name)["stdout"]), job_id)
    assert (job.state, job.reason, job.exit_code, job.signal, job.nodelist) == (state, reason, exit_code, signal, nodelist)
    if elapsed is None:
        assert job.elapsed is not None and job.elapsed >= 0  # counts up from start_time
    else:
        assert job.elapsed == elapsed


def test_scontrol_json_paths_are_expanded():
    job = job_from_scontrol_json(json.loads(record("24.11/scontrol_json_completed")["stdout"]), 1)
    assert job.name == "train; x"
    assert job.stdout_path == "/work/logs/train; x-1.out"
    assert job.stderr_path == "/work/logs/train; x-1.err"
    assert job.batch_host == "trixie1"


def test_scontrol_price_comment_and_allocated_tres():
    # Recorded on the stand-in cluster: a one-GPU job whose PrologSlurmctld recorded the GPU price.
    job = job_from_scontrol_json(json.loads(record("24.11/scontrol_json_completed_gpu_price")["stdout"]), 26)
    assert job.admin_comment == "gpuops_usd_per_gpu_hour=0.690000"
    assert job.alloc_tres == "cpu=1,node=1,billing=1,gres/gpu=1"
    assert (job.state, job.elapsed) == ("COMPLETED", 1)
    text = job_from_scontrol_record(scontrol_record("24.11/scontrol_o_completed_gpu_price"))
    assert (text.admin_comment, text.alloc_tres) == (job.admin_comment, job.alloc_tres)
    # Slurm 22.05's one-line form names the allocation TRES; a job without a comment has none.
    older = job_from_scontrol_record(scontrol_record("22.05/scontrol_job_running_2nodes"))
    assert (older.admin_comment, older.alloc_tres) == (None, "cpu=4,node=2,billing=4")
    assert job_from_scontrol_json(json.loads(record("24.11/scontrol_json_completed")["stdout"]), 1).admin_comment is None


def test_scontrol_json_unknown_and_other_ids():
    assert job_from_scontrol_json(json.loads(record("24.11/scontrol_json_unknown")["stdout"]), 999999) is None
    assert job_from_scontrol_json(json.loads(record("24.11/scontrol_json_completed")["stdout"]), 2) is None
    with pytest.raises(ValueError):
        job_from_scontrol_json({"errors": []}, 1)


def test_scontrol_json_raw_wait_status_of_v0038():
    # squeue --json of 22.05 (data_parser v0.0.38) reported exit_code 4021 for ExitCode=0:53
    base = {"job_id": 6, "job_state": "FAILED", "nodes": "gpu-2"}
    assert job_from_scontrol_json({"jobs": [dict(base, exit_code=4021)]}, 6).signal == 53
    assert job_from_scontrol_json({"jobs": [dict(base, exit_code=4021)]}, 6).exit_code == 0
    assert job_from_scontrol_json({"jobs": [dict(base, exit_code=3 << 8)]}, 6).exit_code == 3


# -- sacct (text form; accounting enabled) --------------------------------------------------

SACCT_CASES = {
    # fixture: (job_id, state, exit_code, signal, nodelist, elapsed, name)
    "22.05/sacct_completed": (15, "COMPLETED", 0, 0, "gpu-1", 1, "acct ok"),
    "22.05/sacct_failed": (16, "FAILED", 3, 0, "gpu-1", 0, "acct-fail"),
    "22.05/sacct_multi": (17, "COMPLETED", 0, 0, "gpu-[1-2]", 2, "acct-multi"),
    "22.05/sacct_cancelled": (18, "CANCELLED", 0, 0, "", 0, "acct-cancel"),
    "22.05/sacct_timeout": (20, "TIMEOUT", 0, 0, "gpu-1", 64, "acct-timeout"),
}


@pytest.mark.parametrize("name", sorted(SACCT_CASES))
def test_sacct_fixtures(name):
    job_id, state, exit_code, signal, nodelist, elapsed, job_name = SACCT_CASES[name]
    job = job_from_sacct(record(name)["stdout"], job_id)
    assert (job.state, job.exit_code, job.signal, job.nodelist, job.elapsed, job.name) == (
        state, exit_code, signal, nodelist, elapsed, job_name)
    assert job.source == "sacct"
    assert job.stdout_path is None


def test_sacct_unknown_job_and_pipes_in_names():
    assert job_from_sacct(record("22.05/sacct_unknown")["stdout"], 999999) is None
    job = job_from_sacct("7|COMPLETED|0:0|gpu-1|5|gpu|/work|None|a|b|c\n", 7)
    assert job.name == "a|b|c"
    assert job.reason is None
    with pytest.raises(ValueError):
        job_from_sacct("7|COMPLETED\n", 7)


def test_sacct_json_of_2205_loses_the_exit_code():
    """Why the wrapper reads sacct's text form: the same job, the same database, two answers."""
    data = json.loads(record("22.05/sacct_json_failed")["stdout"])
    assert data["jobs"][0]["state"]["current"] == "FAILED"
    assert data["jobs"][0]["exit_code"]["return_code"] == 0
    assert job_from_sacct(record("22.05/sacct_failed")["stdout"], 16).exit_code == 3


# -- SlurmCommands ------------------------------------------------------------------------


def test_submit_runs_an_argument_list_without_expansion():
    fake = FakeSlurm(sbatch=record("22.05/sbatch_parsable"))
    request = SbatchRequest(
        script="/work/train.sh", job_name="train; echo $(id) | x", partition="gpu", nodes=1, ntasks=1, gpus=1,
        time="00:10:00", chdir="/work", output="/work/logs/%x-%j.out", error="/work/logs/%x-%j.err",
        env={"FOO": "a,b=c,d", "BAR": "x y $HOME"})
    submission = SlurmCommands(fake).submit(request)
    assert submission.job_id == 1
    argv, kwargs = fake.calls[0]
    # the recorded command line, with sbatch's full path and --export=ALL instead of the export list
    expected = record("22.05/sbatch_parsable")["cmd"]
    expected[0] = "/usr/bin/sbatch"
    expected[expected.index("--export=ALL,FOO,BAR")] = "--export=ALL"
    assert argv == expected
    assert submission.cmd == expected
    assert kwargs["expand_user_and_vars"] is False
    assert kwargs["environ_update"] == {"FOO": "a,b=c,d", "BAR": "x y $HOME"}
    assert not any("a,b=c,d" in arg for arg in argv)


def test_recorded_job_saw_the_env_values_intact():
    text = (FIXTURES / "22.05" / "job_output_train.out").read_text(encoding="utf-8")
    assert "FOO=a,b=c,d\n" in text
    assert "BAR=x y $HOME\n" in text


def test_why_export_all_and_not_an_export_list():
    """Recorded on 22.05: an export list turns on SLURM_GET_USER_ENV, --export=ALL does not; both carry the value."""
    assert "--export=ALL" in record("22.05/sbatch_export_all")["cmd"]
    assert "--export=ALL,FOO" in record("22.05/sbatch_export_list")["cmd"]
    read = (FIXTURES / "22.05" / "job_output_export_all.out").read_text(encoding="utf-8")
    assert read == "GET=unset FOO=a,b=c,d\n"
    read = (FIXTURES / "22.05" / "job_output_export_list.out").read_text(encoding="utf-8")
    assert read == "GET=1 FOO=a,b=c,d\n"
    assert SbatchRequest(script="s", env={"FOO": "a,b=c,d", "BAR": "x"}).options() == ["--export=ALL"]


def test_sbatch_options():
    request = SbatchRequest(script="-weird.sh", job_name="-n 5", gpus=0, user="alice",
                            extra_args=["--mem=16G", "--cpus-per-task=8"])
    assert request.options() == ["--job-name=-n 5", "--uid=alice", "--mem=16G", "--cpus-per-task=8"]
    assert SbatchRequest(script="s").options() == []


@pytest.mark.parametrize("name", [
    "22.05/sbatch_err_partition",
    "22.05/sbatch_err_time",
    "22.05/sbatch_err_missing_script",
    "22.05/sbatch_err_no_shebang",
    "22.05/sbatch_err_empty",
    "22.05/sbatch_err_too_many_gpus",
    "22.05/sbatch_err_bad_uid",
    "22.05/ctld_down_sbatch",
    "24.11/sbatch_err_partition",
])
def test_submit_failure_carries_stderr_verbatim(name):
    rec = record(name)
    fake = FakeSlurm(sbatch=rec)
    with pytest.raises(SlurmCommandFailed) as err:
        SlurmCommands(fake).submit(SbatchRequest(script="/work/train.sh"))
    assert err.value.message == rec["stderr"].strip()
    assert err.value.rc == rec["rc"]
    assert err.value.stderr == rec["stderr"]
    assert err.value.cmd == ["/usr/bin/sbatch", "--parsable", "/work/train.sh"]


def test_submit_with_unreadable_answer():
    fake = FakeSlurm(sbatch=answer(0, "Submitted batch job 5\n"))
    with pytest.raises(SlurmParseError):
        SlurmCommands(fake).submit(SbatchRequest(script="/s.sh"))


def test_submit_failure_without_output():
    fake = FakeSlurm(sbatch=answer(1))
    with pytest.raises(SlurmCommandFailed, match="sbatch exited with rc=1 and printed nothing"):
        SlurmCommands(fake).submit(SbatchRequest(script="/s.sh"))


def test_test_only():
    fake = FakeSlurm(sbatch_test=record("22.05/sbatch_test_only"))
    said = SlurmCommands(fake).test_only(SbatchRequest(script="/work/train.sh", gpus=1, env={"A": "1"}))
    assert said.startswith("sbatch: Job 12 to start at")
    argv, kwargs = fake.calls[0]
    assert argv == ["/usr/bin/sbatch", "--test-only", "--gpus=1", "--export=ALL", "/work/train.sh"]
    assert kwargs["environ_update"] == {"A": "1"}

    fake = FakeSlurm(sbatch_test=record("22.05/sbatch_test_only_err"))
    with pytest.raises(SlurmCommandFailed) as err:
        SlurmCommands(fake).test_only(SbatchRequest(script="/work/train.sh", partition="nope"))
    assert err.value.message == record("22.05/sbatch_test_only_err")["stderr"].strip()


def test_gpus_per_node_is_one_sbatch_option():
    request = SbatchRequest(script="/work/train.sh", nodes=2, gpus_per_node=2)
    assert request.options() == ["--nodes=2", "--gpus-per-node=2"]
    assert SbatchRequest(script="/s.sh", gpus_per_node=0).options() == []
    fake = FakeSlurm(sbatch_test=record("24.11/sbatch_test_only_gpus_two_nodes"))
    said = SlurmCommands(fake).test_only(SbatchRequest(script="/work/train.sh", nodes=2, gpus=2))
    assert said.startswith("sbatch: Job 69 to start at") and "nodes gpuops-[0-1]" in said
    assert fake.calls[0][0] == ["/usr/bin/sbatch", "--test-only", "--nodes=2", "--gpus=2", "/work/train.sh"]


def test_missing_binary():
    with pytest.raises(SlurmNotFound) as err:
        SlurmCommands(FakeSlurm(missing={"sbatch"})).submit(SbatchRequest(script="/s.sh"))
    assert "sbatch not found" in err.value.message
    assert "controller" in err.value.message


def test_job_on_2205_falls_back_to_the_text_form_once():
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"),
                     show_text=[record("22.05/scontrol_job_running_2nodes"), record("22.05/scontrol_job_cancelled_running")])
    commands = SlurmCommands(fake)
    assert commands.job(2).state == "RUNNING"
    assert commands.job(2).state == "CANCELLED"
    assert fake.argvs() == [
        ["/usr/bin/scontrol", "show", "job", "2", "--json"],
        ["/usr/bin/scontrol", "show", "job", "-o", "2"],
        ["/usr/bin/scontrol", "show", "job", "-o", "2"],
    ]


def test_job_on_2411_uses_json():
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_failed_exit3"))
    commands = SlurmCommands(fake)
    job = commands.job(3)
    assert (job.state, job.exit_code, job.source) == ("FAILED", 3, "scontrol")
    commands.job(3)
    assert fake.argvs() == [["/usr/bin/scontrol", "show", "job", "3", "--json"]] * 2


def test_job_unknown_without_accounting_2205():
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"),
                     show_text=record("22.05/scontrol_job_invalid"),
                     sacct=record("22.05/sacct_json_disabled"))
    with pytest.raises(SlurmJobUnknown) as err:
        SlurmCommands(fake).job(999999)
    assert "MinJobAge" in err.value.message
    assert "accounting is disabled" in err.value.message
    assert [os.path.basename(argv[0]) for argv in fake.argvs()] == ["scontrol", "scontrol", "sacct"]
    assert fake.argvs("sacct")[0] == [
        "/usr/bin/sacct", "--allocations", "--noheader", "--parsable2", "--jobs", "999999",
        "--format", "JobIDRaw,State,ExitCode,NodeList,ElapsedRaw,Partition,WorkDir,Reason,JobName"]


def test_job_unknown_without_accounting_2411():
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_unknown"), sacct=record("24.11/sacct_json_disabled"))
    with pytest.raises(SlurmJobUnknown, match="MinJobAge"):
        SlurmCommands(fake).job(999999)


def test_job_unknown_without_sacct_binary():
    fake = FakeSlurm(missing={"sacct"}, show_json=record("24.11/scontrol_json_unknown"))
    with pytest.raises(SlurmJobUnknown, match="accounting is disabled"):
        SlurmCommands(fake).job(5)


def test_aged_out_job_comes_from_accounting():
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"),
                     show_text=record("22.05/scontrol_job_aged_out"),
                     sacct=record("22.05/sacct_completed"))
    job = SlurmCommands(fake).job(15)
    assert (job.state, job.exit_code, job.source, job.name) == ("COMPLETED", 0, "sacct", "acct ok")


def test_job_unknown_to_accounting_too():
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"),
                     show_text=record("22.05/scontrol_job_invalid"),
                     sacct=record("22.05/sacct_unknown"))
    with pytest.raises(SlurmJobUnknown, match="neither slurmctld nor the accounting database"):
        SlurmCommands(fake).job(999999)


def test_controller_down():
    rec = record("22.05/ctld_down_scontrol_job")
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"), show_text=rec)
    with pytest.raises(SlurmCommandFailed) as err:
        SlurmCommands(fake).job(21)
    assert err.value.message == "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"


def test_garbled_json():
    fake = FakeSlurm(show_json=answer(0, "not json"))
    with pytest.raises(SlurmParseError):
        SlurmCommands(fake).job(1)


def test_expand_hostlist():
    fake = FakeSlurm(hostnames=record("22.05/scontrol_hostnames_list"))
    commands = SlurmCommands(fake)
    assert commands.expand_hostlist("gpu-[1-2],login,node[08-10]") == ["gpu-1", "gpu-2", "login", "node08", "node09", "node10"]
    assert fake.argvs() == [["/usr/bin/scontrol", "show", "hostnames", "gpu-[1-2],login,node[08-10]"]]
    assert commands.expand_hostlist("gpu-1,login") == ["gpu-1", "login"]
    assert commands.expand_hostlist("") == []
    assert len(fake.calls) == 1


def test_cancel():
    fake = FakeSlurm(scancel=record("22.05/scancel_running"))
    assert SlurmCommands(fake).cancel(2) == ["/usr/bin/scancel", "2"]
    fake = FakeSlurm(scancel=answer(1, "", "scancel: error: Invalid job id 2x\n"))
    with pytest.raises(SlurmCommandFailed, match="Invalid job id 2x"):
        SlurmCommands(fake).cancel(2)


# -- waiting --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_until_the_job_ends():
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"), show_text=[
        record("22.05/scontrol_job_pending_priority"),
        record("22.05/scontrol_job_pending_priority"),
        record("22.05/scontrol_job_completed"),
    ])
    clock = FakeClock()
    job, timed_out = wait_for_job(SlurmCommands(fake), 1, timeout=60, interval=5, clock=clock, sleep=clock.sleep)
    assert (job.state, timed_out) == ("COMPLETED", False)
    # Short waits first: a short job is seen ending at once.
    assert clock.sleeps == [0.25, 0.25]


def test_wait_backs_off_to_the_interval():
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_running"))
    clock = FakeClock()
    wait_for_job(SlurmCommands(fake), 10, timeout=40, interval=5, clock=clock, sleep=clock.sleep)
    # Every 0.25 s for the first 2 s, then doubling up to the interval.
    assert clock.sleeps[:14] == [0.25] * 8 + [0.5, 1.0, 2.0, 4.0, 5, 5]
    assert max(clock.sleeps) == 5 and sum(clock.sleeps) == 40


def test_wait_sees_completing_as_not_finished():
    completing = record("22.05/scontrol_job_completing")
    job_id = int(parse_scontrol_records(completing["stdout"])[0]["JobId"])
    completed = dict(completing, stdout=completing["stdout"].replace("JobState=COMPLETING", "JobState=COMPLETED"))
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"), show_text=[completing, completing, completed])
    clock = FakeClock()
    job, timed_out = wait_for_job(SlurmCommands(fake), job_id, timeout=60, interval=2, clock=clock, sleep=clock.sleep)
    assert (job.state, timed_out, len(clock.sleeps)) == ("COMPLETED", False, 2)


def test_wait_times_out_without_cancelling():
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_running"))
    clock = FakeClock()
    job, timed_out = wait_for_job(SlurmCommands(fake), 10, timeout=12, interval=5, clock=clock, sleep=clock.sleep)
    assert (job.state, timed_out) == ("RUNNING", True)
    assert clock.sleeps == [0.25] * 8 + [0.5, 1.0, 2.0, 4.0, 2.5]
    assert clock.now == 1012
    assert not fake.argvs("scancel")


def test_wait_tolerates_a_few_failed_lookups():
    down = record("22.05/ctld_down_scontrol_job")
    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"), show_text=[
        record("22.05/scontrol_job_running_2nodes"), down, down, record("22.05/scontrol_job_cancelled_running")])
    clock = FakeClock()
    job, _timed_out = wait_for_job(SlurmCommands(fake), 2, timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert job.state == "CANCELLED"

    fake = FakeSlurm(show_json=record("22.05/scontrol_json_unsupported"), show_text=down)
    with pytest.raises(SlurmCommandFailed):
        wait_for_job(SlurmCommands(fake), 2, timeout=60, interval=1, clock=clock, sleep=clock.sleep, retries=3)
    assert len(fake.argvs("show_text")) == 4


def test_wait_for_unknown_job_fails_at_once():
    fake = FakeSlurm(show_json=record("24.11/scontrol_json_unknown"), sacct=record("24.11/sacct_json_disabled"))
    clock = FakeClock()
    with pytest.raises(SlurmJobUnknown):
        wait_for_job(SlurmCommands(fake), 9, timeout=60, interval=1, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


# -- output tails ---------------------------------------------------------------------------


def test_tail_file(tmp_path):
    path = tmp_path / "out"
    path.write_bytes((FIXTURES / "22.05" / "job_output_train.out").read_bytes())
    assert tail_file(str(path), 3) == "line 58\nline 59\nline 60"
    assert tail_file(str(path), 1000).startswith("job 1 on gpu-1")
    assert tail_file(str(path), 0) == ""
    # only the end of a big file is read, and its cut first line is dropped
    assert tail_file(str(path), 1000, max_bytes=20) == "line 59\nline 60"
    path.write_bytes(b"ok\n\xff\xfe broken\n")
    assert tail_file(str(path), 5) == "ok\n\ufffd\ufffd broken"
    with pytest.raises(OSError):
        tail_file(str(tmp_path / "missing"), 5)
