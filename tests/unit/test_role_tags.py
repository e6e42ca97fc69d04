"""Each role's tags are its own: `--tags X` selects one role's tasks, never another's.

The scheme (as prometheus.prometheus: `node_exporter_install`, `prometheus_configure`):
- every tag a role's tasks carry is the role's name or starts with `<role>_`, so no two roles share a tag
  and `--tags install` (say) can no longer hit every role that installs something;
- every task of the main entry point carries the role's name (`--tags provision` is the whole role);
- every task of another entry point (`tasks_from: <entry>`, from meta/argument_specs.yml) carries
  `<role>_<entry>`, whether the entry point runs alone or imported by the main one;
- each role's README names exactly the tags its tasks carry, on its `Tags:` line.

Ansible itself says which tags each task has: one play per role and entry point, imported with
`ansible.builtin.import_role` (static, so every imported task is listed) and listed with
`ansible-playbook --list-tasks`, which runs nothing. Checked for every role of the collection, present and future.
Playbook-level tags (site.yml's stages such as `stack` or `smoke`) are the playbooks' business, not checked here.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
ROLES = REPO / "collections" / "ansible_collections" / "gpuops" / "platform" / "roles"
ROLE_DIRS = sorted(path for path in ROLES.iterdir() if path.is_dir() and (path / "tasks" / "main.yml").is_file())

#: Ansible's own tags, which mean something to every run rather than naming tasks.
SPECIAL = {"always", "never"}
#: The task ansible-core adds to each entry point that has an argument spec (tagged `always` by Ansible).
ARG_SPEC_TASK = "Validating arguments against arg spec"

PLAY = re.compile(r"^\s*play #\d+ \([^)]*\): (?P<name>.*?)\tTAGS: \[.*\]$")
TASK = re.compile(r"^\s{6}(?P<name>.*?)\tTAGS: \[(?P<tags>.*)\]$")


def _entry_points(role: Path) -> list[str]:
    spec = role / "meta" / "argument_specs.yml"
    entries = list((yaml.safe_load(spec.read_text()) or {}).get("argument_specs") or {}) if spec.is_file() else []
    return ["main"] + sorted(entry for entry in entries if entry != "main")


CASES = [(role.name, entry) for role in ROLE_DIRS for entry in _entry_points(role)]


def _play_name(role: str, entry: str) -> str:
    return f"role={role} entry={entry}"


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> dict[tuple[str, str], list[tuple[str, set[str]]]]:
    """(role, entry point) -> [(task, its tags)], as `ansible-playbook --list-tasks` lists them."""
    plays = []
    for role, entry in CASES:
        args = {"name": f"gpuops.platform.{role}"}
        if entry != "main":
            args["tasks_from"] = entry
        plays.append({"name": _play_name(role, entry), "hosts": "localhost", "gather_facts": False,
                      "tasks": [{"name": f"Import {role} {entry}", "ansible.builtin.import_role": args}]})
    playbook = tmp_path_factory.mktemp("role_tags") / "roles.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    # The project's configuration: its collections path finds gpuops.platform and the collections it uses.
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_INVENTORY_ENABLED"] = "ansible.builtin.host_list"  # `-i localhost,` only: no cloud is asked
    result = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "--list-tasks"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    by_play: dict[tuple[str, str], list[tuple[str, set[str]]]] = {}
    names = {_play_name(role, entry): (role, entry) for role, entry in CASES}
    current = None
    for line in result.stdout.splitlines():
        if (play := PLAY.match(line)) is not None:
            current = names[play["name"]]
            by_play[current] = []
        elif current is not None and (task := TASK.match(line)) is not None:
            if task["name"].split(" : ", 1)[-1].startswith(ARG_SPEC_TASK):
                continue
            tags = {tag.strip() for tag in task["tags"].split(",") if tag.strip()}
            by_play[current].append((task["name"], tags))
    assert set(by_play) == set(CASES), f"plays missing from --list-tasks: {set(CASES) - set(by_play)}\n{result.stdout}"
    return by_play


def _role_tags(listed, role: str) -> set[str]:
    return {tag for (name, _), tasks in listed.items() if name == role for _, tags in tasks for tag in tags} - SPECIAL


def _owned(role: str, tag: str) -> bool:
    return tag == role or tag.startswith(f"{role}_")


def test_roles_are_found():
    assert {"app", "dcgm_exporter", "observability", "provision", "slurm"} <= {role.name for role in ROLE_DIRS}
    assert ("slurm", "controller") in CASES and ("provision", "orphans") in CASES


@pytest.mark.parametrize(("role", "entry"), CASES, ids=[f"{role}-{entry}" for role, entry in CASES])
def test_every_task_carries_its_roles_tags_only(listed, role, entry):
    tasks = listed[(role, entry)]
    assert tasks, f"{role}: entry point {entry} lists no task"
    required = role if entry == "main" else f"{role}_{entry}"
    untagged = [name for name, tags in tasks if required not in tags]
    assert not untagged, (
        f"{role} (entry point {entry}): these tasks lack the tag {required!r}, so `--tags {required}` would skip "
        f"them: {untagged}")
    foreign = {name: sorted(tag for tag in tags - SPECIAL if not _owned(role, tag)) for name, tags in tasks}
    foreign = {name: tags for name, tags in foreign.items() if tags}
    assert not foreign, (
        f"{role} (entry point {entry}): tags that are neither {role!r} nor start with '{role}_' select other roles' "
        f"tasks too; prefix them: {foreign}")


def test_no_two_roles_share_a_tag(listed):
    roles = sorted({role for role, _ in CASES})
    shared = {(a, b): sorted(_role_tags(listed, a) & _role_tags(listed, b))
              for a, b in itertools.combinations(roles, 2)}
    shared = {pair: tags for pair, tags in shared.items() if tags}
    assert not shared, f"tags shared by two roles, so `--tags <tag>` runs both: {shared}"


@pytest.mark.parametrize("role", [role.name for role in ROLE_DIRS])
def test_readme_names_the_roles_tags(listed, role):
    readme = (ROLES / role / "README.md").read_text()
    paragraph = re.search(r"^Tags:(.*?)(?:\n\n|\Z)", readme, re.MULTILINE | re.DOTALL)
    assert paragraph, f"{role}/README.md has no paragraph starting with 'Tags:'"
    named = {tag for tag in re.findall(r"`([a-z0-9_]+)`", paragraph[1]) if _owned(role, tag)}
    assert named == _role_tags(listed, role), (
        f"{role}/README.md's Tags: paragraph names {sorted(named)}; its tasks carry {sorted(_role_tags(listed, role))}")
