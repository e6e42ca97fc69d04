"""Where a playbook's time goes: Ansible's own profiling callbacks, read back from its output.

site_bench runs site.yml with ansible.posix.profile_roles and ansible.posix.profile_tasks
enabled (PROFILE_ENV). At the end of the run they print, after the PLAY RECAP:

    TASKS RECAP ****************************************************************
    <date> (0:00:00.051)       0:01:53.933 *****
    ===============================================================================
    gpuops.platform.provision : Pin the pod's SSH host keys ... --- 3.88s
    ...
    ROLES RECAP ****************************************************************
    <date> ...
    ===============================================================================
    slurm ------------------------------------------------------------------ 24.55s
    ansible.builtin.command ------------------------------------------------- 0.99s
    ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    total ----------------------------------------------------------------- 113.89s

What the figures are: profile_tasks times each task once, from its start to the next
task's start, for all its hosts together (they run in parallel, up to `forks`); two
tasks of the same name (the same role task in two plays) are two entries.
profile_roles sums those times by role, and by action (ansible.builtin.command, ...)
for tasks outside a role. Neither knows hosts: the host count of a task name comes
from the ordinary output (the hosts that answered ok, changed, failed or fatal under
its `TASK [...]` header), see task_hosts().
"""

from __future__ import annotations

import configparser
import re
import statistics
from collections.abc import Sequence
from typing import Any

from bench.common import Table, fmt_ratio, fmt_s, ratio
from tests.integration.helpers import REPO

PROFILE_CALLBACKS = ("ansible.posix.profile_roles", "ansible.posix.profile_tasks")


def callbacks_enabled(config: str | None = None) -> str:
    """ansible.cfg's callbacks_enabled (the deployment's lock) with the two profilers added.

    An environment variable replaces ansible.cfg's list instead of adding to it, so the
    repository's own entries are read from ansible.cfg and kept first.
    """
    parser = configparser.ConfigParser(interpolation=None)
    if config is None:
        parser.read(REPO / "ansible.cfg")
    else:
        parser.read_string(config)
    own = [name.strip() for name in parser.get("defaults", "callbacks_enabled", fallback="").split(",") if name.strip()]
    return ",".join([*own, *(name for name in PROFILE_CALLBACKS if name not in own)])


def profile_env() -> dict[str, str]:
    """Environment for ansible-playbook: both profilers on, every task in the TASKS RECAP, longest first."""
    return {
        "ANSIBLE_CALLBACKS_ENABLED": callbacks_enabled(),
        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
        "PROFILE_TASKS_SORT_ORDER": "descending",
        # Only the recaps: no timestamp line under every task header.
        "PROFILE_TASKS_SUMMARY_ONLY": "true",
        "PROFILE_ROLES_SUMMARY_ONLY": "true",
    }


# A banner: "TASKS RECAP ****...", "PLAY [name] ****..." (ansible's Display.banner pads the title with
# stars), not the profilers' "<weekday> <date> (...) ... *****" line under one.
_BANNER = re.compile(r"^(?P<title>[A-Z][A-Z ]*[A-Z])(?: \[.*\])? \*{3,}\s*$")
# An entry: the name, a space, dashes (none when the name fills the line), a space, seconds.
_ENTRY = re.compile(r"^(?P<name>.+?) -*\s(?P<seconds>\d+\.\d+)s\s*$")
_RECAPS = {"TASKS RECAP": "tasks", "ROLES RECAP": "roles"}


def parse_profile(output: str) -> dict[str, Any]:
    """The TASKS RECAP and ROLES RECAP of one ansible-playbook run.

    Returns {"tasks": [{"name", "seconds"}] in the recap's order, "roles": {name: seconds}
    in the recap's order (longest first), "roles_total_s": the recap's total (None if absent)}.
    Raises ValueError when the output has neither recap (the profilers were not enabled).
    """
    tasks: list[dict[str, Any]] = []
    roles: dict[str, float] = {}
    total: float | None = None
    section: str | None = None
    after_rule = False
    seen: set[str] = set()
    for line in output.splitlines():
        banner = _BANNER.match(line)
        if banner:
            section = _RECAPS.get(banner.group("title").strip())
            if section:
                seen.add(section)
            after_rule = False
            continue
        if section is None:
            continue
        if line.startswith("~~~"):
            after_rule = True
            continue
        entry = _ENTRY.match(line)
        if not entry:
            continue
        name, seconds = entry.group("name"), float(entry.group("seconds"))
        if section == "tasks":
            tasks.append({"name": name, "seconds": seconds})
        elif after_rule and name == "total":
            total = seconds
        else:
            roles[name] = round(roles.get(name, 0.0) + seconds, 3)
    if not seen:
        raise ValueError("no TASKS RECAP or ROLES RECAP in the output: were ansible.posix.profile_tasks and "
                         "profile_roles enabled?")
    return {"tasks": tasks, "roles": roles, "roles_total_s": total}


_TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\] \*+\s*$")
_HOST_RESULT = re.compile(r"^(?:ok|changed|failed|fatal): \[(?P<host>[^\]\s]+)")


def task_hosts(output: str) -> dict[str, set[str]]:
    """Per task name, the hosts that ran it (ok, changed, failed or fatal; not skipping) in the output."""
    hosts: dict[str, set[str]] = {}
    task: str | None = None
    for line in output.splitlines():
        header = _TASK_HEADER.match(line)
        if header:
            task = header.group("name")
            continue
        if line.startswith("PLAY "):
            task = None
            continue
        result = _HOST_RESULT.match(line)
        if result and task is not None:
            hosts.setdefault(task, set()).add(result.group("host"))
    return hosts


def tasks_by_name(tasks: Sequence[dict[str, Any]], hosts: dict[str, set[str]]) -> list[dict[str, Any]]:
    """TASKS RECAP entries summed by task name: entries, hosts that ran it, seconds; longest first."""
    rows: dict[str, dict[str, Any]] = {}
    for task in tasks:
        row = rows.setdefault(task["name"], {"name": task["name"], "entries": 0, "total_s": 0.0})
        row["entries"] += 1
        row["total_s"] = round(row["total_s"] + task["seconds"], 3)
    for row in rows.values():
        row["hosts"] = sorted(hosts.get(row["name"], ()))
    return sorted(rows.values(), key=lambda row: (-row["total_s"], row["name"]))


def profile(output: str) -> dict[str, Any]:
    """One run's profile: per-role seconds, their total, and every task name by summed time (see trim())."""
    parsed = parse_profile(output)
    return {"roles": parsed["roles"], "roles_total_s": parsed["roles_total_s"], "task_entries": len(parsed["tasks"]),
            "tasks": tasks_by_name(parsed["tasks"], task_hosts(output))}


def trim(run: dict[str, Any], top: int) -> dict[str, Any]:
    """A run's profile for the results file: every role, the `top` task names."""
    return {**{key: value for key, value in run.items() if key != "tasks"}, "top_tasks": run["tasks"][:top]}


def combine(profiles: Sequence[dict[str, Any]], how: str, top: int) -> dict[str, Any]:
    """Several runs' profiles (from profile()) as one: `sum` (cold's stages, one after the other) or
    `median` (warm's repetitions). A role or task name missing from a run counts 0 s there.
    """
    if not profiles:
        return {"roles": {}, "roles_total_s": None, "top_tasks": []}
    pick = sum if how == "sum" else statistics.median

    def merged(values: list[float]) -> float:
        return round(pick(values), 3)

    role_names = list(dict.fromkeys(name for run in profiles for name in run["roles"]))
    roles = {name: merged([run["roles"].get(name, 0.0) for run in profiles]) for name in role_names}
    totals = [run["roles_total_s"] for run in profiles if run["roles_total_s"] is not None]
    by_name = [{task["name"]: task for task in run["tasks"]} for run in profiles]
    tasks = []
    for name in dict.fromkeys(name for run in by_name for name in run):
        found = [run.get(name) for run in by_name]
        tasks.append({
            "name": name,
            "entries": merged([task["entries"] if task else 0 for task in found]),
            "hosts": sorted({host for task in found if task for host in task["hosts"]}),
            "total_s": merged([task["total_s"] if task else 0.0 for task in found]),
        })
    tasks.sort(key=lambda row: (-row["total_s"], row["name"]))
    return {"roles": dict(sorted(roles.items(), key=lambda item: -item[1])),
            "roles_total_s": merged(totals) if len(totals) == len(profiles) else None,
            "top_tasks": tasks[:top]}


def tables(what: str, combined: dict[str, Any], wall_s: float | None) -> list[Table]:
    """Markdown tables of a combined profile: per role (and outside any task), then the top tasks."""
    total = combined["roles_total_s"]
    roles = Table(f"{what}: time per role (ansible.posix.profile_roles)", ["role (or action outside a role)", "s", "share"])
    for name, seconds in combined["roles"].items():
        roles.rows.append([name, fmt_s(seconds), f"{seconds / total:.0%}" if total else "-"])
    roles.rows.append(["**total in tasks**", f"**{fmt_s(total)}**", "100%" if total else "-"])
    if wall_s is not None and total is not None:
        roles.rows.append(["outside any task (Ansible's start, inventory, end)", fmt_s(max(wall_s - total, 0.0)), ""])
        roles.rows.append(["wall", fmt_s(wall_s), ""])
    roles.notes = ["A role's time is the wall time of its tasks, all hosts at once (they run in parallel). Tasks outside "
                   "a role count under their action."]
    tasks = Table(f"{what}: the {len(combined['top_tasks'])} task names that took longest (ansible.posix.profile_tasks)",
                  ["task", "s", "entries", "hosts"],
                  [[task["name"], fmt_s(task["total_s"]), task["entries"], len(task["hosts"])]
                   for task in combined["top_tasks"]],
                  ["s: the task's wall time for all its hosts together, summed over its entries (a task of the same "
                   "name in several plays or stages is several entries). hosts: those that ran it (ok, changed or "
                   "failed; skipped hosts are not counted)."])
    return [roles, tasks]


def say_lines(what: str, combined: dict[str, Any], roles: int = 8, tasks: int = 5) -> list[str]:
    """A few lines for the console: the longest roles and tasks."""
    role_text = ", ".join(f"{name} {seconds:.1f}" for name, seconds in list(combined["roles"].items())[:roles])
    lines = [f"{what}: per role (s): {role_text}"]
    lines += [f"{what}: task {task['total_s']:6.1f} s  x{task['entries']:<3} hosts={len(task['hosts'])}  {task['name']}"
              for task in combined["top_tasks"][:tasks]]
    return lines


# -- growth with the pod count ------------------------------------------------------------------
def scaling(runs: dict[int, dict[str, Any]]) -> tuple[dict[str, Any], list[Table]]:
    """cold and warm at several pod counts, each against the smallest: per role, per stage and the whole run.

    runs: {pods: {"cold": cold's data or None, "warm": warm's data or None}}, as the site benchmarks return.
    """
    counts = sorted(runs)
    base = counts[0]
    data: dict[str, Any] = {"baseline_pods": base, "pods": counts}
    out_tables: list[Table] = []
    for bench, wall_key in (("cold", "total_s"), ("warm", "median_s")):
        present = [pods for pods in counts if runs[pods].get(bench)]
        if base not in present or len(present) < 2:
            continue
        datas = {pods: runs[pods][bench] for pods in present}
        others = [pods for pods in present if pods != base]
        headers = ["", f"{base} pods (s)"]
        for pods in others:
            headers += [f"{pods} pods (s)", f"{pods} / {base}"]

        def row(label: str, values: dict[int, float | None]) -> list[Any]:
            cells: list[Any] = [label, fmt_s(values[base])]
            for pods in others:
                cells += [fmt_s(values[pods]), fmt_ratio(ratio(values[pods], values[base]))]
            return cells

        entry: dict[str, Any] = {"whole_run_s": {pods: datas[pods][wall_key] for pods in present}}
        table = Table(f"Scaling, {bench}: seconds per role at {', '.join(map(str, present))} pods, against {base} pods",
                      ["role, stage or whole run", *headers[1:]])
        role_names = list(dict.fromkeys(name for pods in present for name in datas[pods]["profile"]["roles"]))
        entry["roles"] = {}
        for name in role_names:
            values = {pods: datas[pods]["profile"]["roles"].get(name, 0.0) for pods in present}
            entry["roles"][name] = {"seconds": values, "ratio": {pods: ratio(values[pods], values[base]) for pods in others}}
            table.rows.append(row(name, values))
        if bench == "cold":
            for tag in [stage["tag"] for stage in datas[base]["stages"]]:
                values = {pods: next((s["wall_s"] for s in datas[pods]["stages"] if s["tag"] == tag), None)
                          for pods in present}
                table.rows.append(row(f"stage {tag} (wall)", values))
        entry["ratio"] = {pods: ratio(entry["whole_run_s"][pods], entry["whole_run_s"][base]) for pods in others}
        table.rows.append(row("**whole run (wall)**", entry["whole_run_s"]))
        table.notes = [f"Roles: the profile of {'all cold stages summed' if bench == 'cold' else 'warm (median over runs)'}. "
                       "A ratio near 1 means the stage does not grow with the pods (they run in parallel, forks=20); "
                       "near the pod ratio, it grows linearly (a serial step or a saturated machine)."]
        data[bench] = entry
        out_tables.append(table)
    return data, out_tables
