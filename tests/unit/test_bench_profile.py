"""bench/: reading Ansible's profiling recaps, the --pods option, and a run over several pod counts.

The fixture tests/fixtures/bench/site-warm.log is the whole stdout of a real warm
`ansible-playbook site.yml` (2 pods, on the local cloud, 2026-12-05, ansible-core 2.19)
run with ansible.posix.profile_roles and ansible.posix.profile_tasks enabled: its TASKS
RECAP lists the 40 longest tasks, and both profilers print a timestamp line under every
task header (summary_only off). It was captured as /tmp/site-warm.log by a warm run in the
session that added bench/profile.py, and copied here unchanged.
No Docker here: the site benchmarks themselves are exercised by `bench/run.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import profile, run, site_bench
from bench.common import BenchError, Result, check_playbook
from tests.integration.helpers import REPO, VENV_BIN

FIXTURE = REPO / "tests" / "fixtures" / "bench" / "site-warm.log"
PROVISION_PIN = "gpuops.platform.provision : Pin the pod's SSH host keys from its log, before any SSH contact"
PROLOG = "gpuops.platform.dcgm_exporter : Write the Slurm prolog and epilog that map jobs to GPUs"
SERVICE_FACT = "gpuops.platform.supervise : Gather the service manager fact"


@pytest.fixture(scope="module")
def output() -> str:
    return FIXTURE.read_text()


# -- the recaps of a real run ----------------------------------------------------------------------
def test_parse_profile_reads_both_recaps_of_a_real_run(output):
    parsed = profile.parse_profile(output)

    assert len(parsed["tasks"]) == 40  # the run's PROFILE_TASKS_TASK_OUTPUT_LIMIT
    assert parsed["tasks"][0] == {"name": PROVISION_PIN, "seconds": 3.88}
    assert parsed["tasks"][-1] == {"name": "gpuops.platform.slurm : Install the node's job output token", "seconds": 0.75}
    # Not a task: the "<weekday> <date> (...) *****" line and the ===== rule under the banner.
    assert not [task for task in parsed["tasks"] if task["name"].startswith(("Saturday", "==="))]
    # A task outside any role has no "role : " prefix.
    assert {"name": "Wait until the pod answers SSH", "seconds": 0.84} in parsed["tasks"]

    roles = parsed["roles"]
    assert list(roles)[:3] == ["slurm", "provision", "dcgm_exporter"]
    assert roles["slurm"] == 24.55
    assert roles["gpuops.platform.deployment_lock"] == 0.16  # the lock's action, outside a role
    assert "total" not in roles
    assert len(roles) == 21
    assert parsed["roles_total_s"] == 113.89
    # The roles add up to the recap's total (each printed to 10 ms).
    assert sum(roles.values()) == pytest.approx(parsed["roles_total_s"], abs=0.01 * len(roles))


def test_parse_profile_refuses_output_without_the_profilers(output):
    without = output[:output.index("TASKS RECAP")]
    assert "PLAY RECAP" in without
    with pytest.raises(ValueError, match="profile_tasks"):
        profile.parse_profile(without)


def test_task_hosts_counts_hosts_that_ran_a_task_not_those_that_skipped_it(output):
    hosts = profile.task_hosts(output)
    assert hosts[PROLOG] == {"gpuops-0", "gpuops-1"}
    assert hosts["gpuops.platform.observability : Create the stack directories"] == {"localhost"}
    # Ran on localhost, skipped by both pods in another play: the pods do not count.
    assert hosts[SERVICE_FACT] == {"localhost"}
    assert "skipping: [gpuops-0]" in output[output.index(f"TASK [{SERVICE_FACT}]"):]


def test_tasks_by_name_sums_the_entries_of_one_name(output):
    parsed = profile.parse_profile(output)
    named = profile.tasks_by_name(parsed["tasks"], profile.task_hosts(output))
    by_name = {row["name"]: row for row in named}

    # The dcgm_exporter task runs in the Slurm play and in the exporter play: two entries.
    prolog = [task["seconds"] for task in parsed["tasks"] if task["name"] == PROLOG]
    assert prolog == [1.77, 1.66]
    assert by_name[PROLOG] == {"name": PROLOG, "entries": 2, "total_s": 3.43, "hosts": ["gpuops-0", "gpuops-1"]}
    assert by_name[PROVISION_PIN]["entries"] == 1
    assert sum(row["entries"] for row in named) == len(parsed["tasks"])
    assert [row["total_s"] for row in named] == sorted((row["total_s"] for row in named), reverse=True)
    assert named[1]["name"] == PROLOG  # 3.43 s in all: second only to 3.88 s


def test_combine_sums_stages_and_takes_the_median_of_repetitions(output):
    one = profile.profile(output)
    half = {**one, "roles": {name: seconds / 2 for name, seconds in one["roles"].items()},
            "roles_total_s": one["roles_total_s"] / 2,
            "tasks": [{**task, "total_s": task["total_s"] / 2} for task in one["tasks"]]}
    other = {"roles": {"only_here": 5.0}, "roles_total_s": 5.0, "tasks": []}

    summed = profile.combine([one, other], "sum", top=3)
    assert summed["roles"]["slurm"] == 24.55
    assert summed["roles"]["only_here"] == 5.0
    assert summed["roles_total_s"] == pytest.approx(118.89)
    assert [task["name"] for task in summed["top_tasks"]] == [task["name"] for task in one["tasks"][:3]]

    median = profile.combine([one, half, half], "median", top=5)
    assert median["roles"]["slurm"] == pytest.approx(24.55 / 2, abs=0.001)
    assert median["top_tasks"][0]["total_s"] == pytest.approx(3.88 / 2, abs=0.001)
    assert len(median["top_tasks"]) == 5
    trimmed = profile.trim(one, 4)
    assert "tasks" not in trimmed and len(trimmed["top_tasks"]) == 4 and trimmed["roles"] == one["roles"]


def test_tables_show_every_role_the_time_outside_tasks_and_the_top_tasks(output):
    combined = profile.combine([profile.profile(output)], "sum", top=10)
    roles, tasks = profile.tables("Warm", combined, wall_s=130.0)
    labels = [row[0] for row in roles.rows]
    assert labels[:3] == ["slurm", "provision", "dcgm_exporter"]
    assert labels[-3:] == ["**total in tasks**", "outside any task (Ansible's start, inventory, end)", "wall"]
    assert roles.rows[-2][1] == "16.11"  # 130 s wall - 113.89 s in tasks
    assert len(tasks.rows) == 10
    assert tasks.rows[1] == [PROLOG, "3.43", 2, 2]


def test_scaling_puts_each_pod_count_beside_the_smallest(output):
    base = profile.combine([profile.profile(output)], "median", top=5)
    bigger = {**base, "roles": {name: seconds * 3 for name, seconds in base["roles"].items()}}
    runs = {
        2: {"cold": None, "warm": {"median_s": 120.0, "profile": base}},
        8: {"cold": None, "warm": {"median_s": 300.0, "profile": bigger}},
    }
    data, tables = profile.scaling(runs)
    assert data["baseline_pods"] == 2 and "cold" not in data
    assert data["warm"]["ratio"] == {8: 2.5}
    assert data["warm"]["roles"]["slurm"]["seconds"] == {2: 24.55, 8: pytest.approx(73.65)}
    assert data["warm"]["roles"]["slurm"]["ratio"] == {8: 3.0}
    (table,) = tables
    assert table.headers == ["role, stage or whole run", "2 pods (s)", "8 pods (s)", "8 / 2"]
    assert table.rows[-1] == ["**whole run (wall)**", "120.00", "300.00", "2.50x"]
    # One pod count alone: nothing to compare.
    assert profile.scaling({2: runs[2]}) == ({"baseline_pods": 2, "pods": [2]}, [])


# -- the profilers for real: ansible-playbook on localhost -------------------------------------
def test_profile_env_makes_ansible_print_recaps_that_parse(tmp_path):
    # Longer than the recap's line: only the seconds' own filler separates it from its time.
    long_name = "A task whose name is longer than the profiler's line, so its name takes the line's width " * 2
    (tmp_path / "roles" / "sleeper" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "sleeper" / "tasks" / "main.yml").write_text(textwrap.dedent("""\
        - name: Sleep in the role
          ansible.builtin.command: sleep 0.3
          changed_when: false
        """))
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"h1": {}, "h2": {}},
                                                            "vars": {"ansible_connection": "local",
                                                                     "ansible_python_interpreter": sys.executable}}}))
    (tmp_path / "play.yml").write_text(textwrap.dedent(f"""\
        - name: Profiled
          hosts: all
          gather_facts: false
          roles:
            - sleeper
          tasks:
            - name: {long_name.strip()}
              ansible.builtin.command: sleep 0.2
              changed_when: false
            - name: Only on h1
              ansible.builtin.command: "true"
              changed_when: false
              when: inventory_hostname == 'h1'
        """))
    (tmp_path / "ansible.cfg").write_text("[defaults]\nroles_path = roles\ncallbacks_enabled = ansible.builtin.timer\n")
    env = {**os.environ, **profile.profile_env(), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
           "ANSIBLE_NOCOLOR": "1"}
    # The repository's own callback (the deployment's lock) has no business here: the list from this config.
    env["ANSIBLE_CALLBACKS_ENABLED"] = profile.callbacks_enabled((tmp_path / "ansible.cfg").read_text())
    result = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "hosts.yml", "play.yml"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    parsed = profile.parse_profile(result.stdout)
    names = [task["name"] for task in parsed["tasks"]]
    assert sorted(names) == sorted(["sleeper : Sleep in the role", long_name.strip(), "Only on h1"])
    seconds = {task["name"]: task["seconds"] for task in parsed["tasks"]}
    assert seconds["sleeper : Sleep in the role"] >= 0.3
    assert seconds[long_name.strip()] >= 0.2
    assert names[0] in ("sleeper : Sleep in the role", long_name.strip())  # longest first (descending)
    assert set(parsed["roles"]) == {"sleeper", "ansible.builtin.command"}
    assert parsed["roles"]["sleeper"] >= 0.3
    assert parsed["roles_total_s"] == pytest.approx(sum(parsed["roles"].values()), abs=0.02)

    hosts = profile.task_hosts(result.stdout)
    assert hosts["Only on h1"] == {"h1"}
    assert hosts["sleeper : Sleep in the role"] == {"h1", "h2"}
    # summary_only: no timestamp line under the task headers.
    assert "(0:00:" not in result.stdout[:result.stdout.index("PLAY RECAP")]


def test_callbacks_enabled_keeps_the_repository_callbacks_first():
    assert profile.callbacks_enabled() == ("gpuops.platform.deployment_lock,ansible.posix.profile_roles,"
                                           "ansible.posix.profile_tasks")
    assert profile.callbacks_enabled("[defaults]\ncallbacks_enabled = a.b.c, ansible.posix.profile_tasks\n") == (
        "a.b.c,ansible.posix.profile_tasks,ansible.posix.profile_roles")
    assert profile.callbacks_enabled("[defaults]\n") == "ansible.posix.profile_roles,ansible.posix.profile_tasks"
    env = profile.profile_env()
    assert env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] == "all" and env["PROFILE_TASKS_SORT_ORDER"] == "descending"


def test_a_failed_playbook_message_shows_its_output_not_the_recaps(output):
    failed = subprocess.CompletedProcess(["ansible-playbook"], 2, stdout=output, stderr="")
    with pytest.raises(BenchError) as raised:
        check_playbook(failed, "site.yml")
    message = str(raised.value)
    assert "exit 2" in message and "PLAY RECAP" in message
    assert "TASKS RECAP" not in message and "ROLES RECAP" not in message


# -- the command line --------------------------------------------------------------------------
def test_pods_defaults_to_two_and_takes_a_sorted_list():
    args = run.parse_args([])
    assert args.pods == [2] and args.top_tasks == 15
    assert run.parse_args(["--pods", "8,2,2"]).pods == [2, 8]
    assert run.parse_args(["--pods", "64"]).pods == [64]
    assert run.parse_args(["--only", "api,warm,cold"]).only == ["cold", "warm", "api"]
    assert run.parse_args(["--top-tasks", "3"]).top_tasks == 3


@pytest.mark.parametrize("value", ["0", "65", "two", ",", "2,-1"])
def test_pods_refuses_what_is_not_a_pod_count(value, capsys):
    with pytest.raises(SystemExit) as raised:
        run.parse_args(["--pods", value])
    assert raised.value.code == 2
    assert "--pods" in capsys.readouterr().err


def test_bench_key_names_a_site_benchmark_by_pod_count_only_with_several():
    assert run.bench_key("warm", 2, [2]) == "warm"
    assert run.bench_key("warm", 8, [2, 8]) == "warm@8pods"


def test_help_describes_the_pods_and_the_profiles():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--help"], capture_output=True, text=True,
                            check=True)
    assert "--pods N[,N...]" in result.stdout and "--top-tasks N" in result.stdout
    assert "profile_roles" in result.stdout


class _Session:
    """Stands in for site_bench.SiteSession (which needs Docker): records what happened to it."""

    events: list[str] = []

    def __init__(self, root: Path, pods: int) -> None:
        self.pods = pods
        self.root = root
        self.site = type("SiteStub", (), {"state_dir": root})()
        self.events.append(f"open {pods}")

    def close(self) -> None:
        self.events.append(f"close {self.pods}")


def test_several_pod_counts_run_one_deployment_at_a_time_and_compare(monkeypatch, tmp_path, output):
    """The orchestration of `--pods 2,4`: a deployment per count, closed before the next, then the scaling table."""
    base = profile.combine([profile.profile(output)], "median", top=5)
    _Session.events = []

    def warm(session, runs, top):
        _Session.events.append(f"warm {session.pods}")
        factor = session.pods / 2
        prof = {**base, "roles": {name: seconds * factor for name, seconds in base["roles"].items()}}
        return Result({"pods": session.pods, "median_s": 100.0 * factor, "profile": prof}, [])

    def cold(session, top):
        raise BenchError(f"cold failed at {session.pods} pods")

    monkeypatch.setattr(run, "docker_available", lambda: True)
    monkeypatch.setattr(site_bench, "SiteSession", _Session)
    monkeypatch.setattr(site_bench, "warm", warm)
    monkeypatch.setattr(site_bench, "cold", cold)

    status = run.main(["--only", "cold,warm", "--pods", "4,2", "--out", str(tmp_path)])

    assert status == 1  # cold failed, and warm still ran
    assert _Session.events == ["open 2", "warm 2", "close 2", "open 4", "warm 4", "close 4"]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["args"]["pods"] == [2, 4]
    assert set(results["benchmarks"]) == {"cold@2pods", "warm@2pods", "cold@4pods", "warm@4pods", "scaling"}
    assert results["benchmarks"]["cold@4pods"] == {"error": "cold failed at 4 pods"}
    scaling = results["benchmarks"]["scaling"]["data"]
    assert scaling["warm"]["ratio"] == {"4": 2.0}
    assert scaling["warm"]["roles"]["slurm"]["ratio"] == {"4": 2.0}
    latest = (tmp_path / "latest.md").read_text()
    assert "Scaling, warm" in latest and "| **whole run (wall)** | 100.00 | 200.00 | 2.00x |" in latest
