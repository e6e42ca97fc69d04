"""The published collection works on a machine with no gpuops checkout (issue 13, item 3).

The collection is built and installed as a Galaxy user gets it (tests/installed_collection.py: build_ignore
applied, installed into a directory of its own, run from a directory outside the checkout with no ansible.cfg
anywhere, ANSIBLE_COLLECTIONS_PATH naming that directory only). Then:
- the tarball holds what each role needs (the provision role's Terraform module, the observability role's image
  definitions and dashboards), declares every collection the roles call as a dependency, and leaves out the app
  role, which builds gpuops' own app from a checkout (galaxy.yml, build_ignore);
- no role of it names a variable that points into a checkout (gpuops_root, app_root, the directory of the
  Ansible configuration file, playbook_dir, inventory_dir);
- every entry point of every role passes `ansible-playbook --syntax-check` (which resolves every module, so a
  dependency missing from the install fails it), and each role's argument spec validation passes;
- every default of every role (but the internal `_name` ones, which take their caller's variables) resolves
  there, names nothing in the checkout, and the paths that point into the
  role exist in the installed copy;
- the provision role's preflight runs from the installed copy and, with no cloud named, targets RunPod.
The provision role's whole apply and destroy from the installed copy, against a RunPod-compatible endpoint, is
tests/integration/test_installed_collection.py.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.installed_collection import REPO, SOURCE, Installed, install

#: Variables that point into a gpuops checkout (or into wherever ansible-playbook happens to run).
CHECKOUT_VARIABLES = re.compile(r"\b(gpuops_root|app_root|ansible_config_file|playbook_dir|inventory_dir)\b")
#: Roles that need a checkout, left out of the published collection by galaxy.yml's build_ignore.
CHECKOUT_ONLY_ROLES = {"app"}
#: A module or action named by its FQCN in a task.
FQCN_KEY = re.compile(r"^\s*-?\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    return install(tmp_path_factory.mktemp("galaxy"))


def _roles(installed: Installed, internal: bool = True) -> list[str]:
    """The installed roles; internal ones (`_name`, included by other roles with the caller's variables) too."""
    return sorted(path.name for path in (installed.path / "roles").iterdir()
                  if path.is_dir() and (internal or not path.name.startswith("_")))


def _entry_points(installed: Installed, role: str) -> list[str]:
    specs = installed.path / "roles" / role / "meta" / "argument_specs.yml"
    if specs.is_file():
        return list(yaml.safe_load(specs.read_text())["argument_specs"])
    return ["main"]


def _write(installed: Installed, name: str, plays: list[dict]) -> str:
    (installed.work / name).write_text(yaml.safe_dump(plays, sort_keys=False))
    return name


def _output(result) -> str:
    return f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"


def test_the_tarball_has_what_the_roles_need_and_not_the_app_role(installed):
    source_roles = {path.name for path in (SOURCE / "roles").iterdir() if path.is_dir()}
    assert CHECKOUT_ONLY_ROLES <= source_roles
    assert set(_roles(installed)) == source_roles - CHECKOUT_ONLY_ROLES
    with tarfile.open(installed.tarball) as tar:
        names = set(tar.getnames())
        links = [member.name for member in tar.getmembers() if member.issym() or member.islnk()]
    assert not links, f"links in the tarball point outside it once installed: {links}"
    assert not [name for name in names if name.startswith("roles/app")]
    module = installed.path / "roles" / "provision" / "files" / "terraform" / "runpod"
    assert {path.name for path in module.glob("*.tf")} >= {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    files = installed.path / "roles" / "observability" / "files"
    assert (files / "prometheus-offline" / "Dockerfile").is_file()
    assert (files / "alertmanager-offline" / "Dockerfile").is_file()
    assert list((files / "dashboards").glob("*.json"))


def test_every_collection_the_roles_call_is_a_declared_dependency(installed):
    used = set()
    for path in (installed.path / "roles").rglob("tasks/*.yml"):
        used |= set(FQCN_KEY.findall(path.read_text()))
    used -= {"ansible.builtin", "gpuops.platform"}
    assert "cloud.terraform" in used and "community.docker" in used
    declared = set(installed.manifest()["collection_info"]["dependencies"])
    assert used <= declared, f"galaxy.yml's dependencies lack {sorted(used - declared)}"


def test_no_role_names_a_variable_of_the_checkout(installed):
    found = []
    for path in sorted((installed.path / "roles").rglob("*")):
        if path.is_file() and path.suffix in (".yml", ".yaml", ".j2"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.lstrip().startswith("#") and CHECKOUT_VARIABLES.search(line):
                    found.append(f"{path.relative_to(installed.path)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_every_entry_point_passes_syntax_check_from_the_installed_collection(installed):
    tasks = []
    for role in _roles(installed):
        for entry in _entry_points(installed, role):
            args = {"name": f"gpuops.platform.{role}"} | ({} if entry == "main" else {"tasks_from": entry})
            tasks.append({"name": f"{role} {entry}", "ansible.builtin.import_role": args})
    assert len(tasks) > len(_roles(installed, internal=False))
    name = _write(installed, "syntax.yml", [{"name": "Every entry point", "hosts": "localhost",
                                             "gather_facts": False, "tasks": tasks}])
    result = installed.playbook(name, "--syntax-check")
    assert result.returncode == 0, _output(result)


def test_argument_specs_validate_with_the_defaults_and_no_checkout(installed):
    # Only the tasks tagged `always` run: ansible-core's argument spec validation of each role, in the role.
    roles = _roles(installed, internal=False)
    name = _write(installed, "validate.yml", [{"name": "Every role", "hosts": "localhost", "gather_facts": False,
                                               "roles": [f"gpuops.platform.{r}" for r in roles]}])
    result = installed.playbook(name, "--tags", "gpuops_no_such_tag")
    assert result.returncode == 0, _output(result)
    assert result.stdout.count("Validating arguments against arg spec 'main'") == len(roles)


def test_every_default_resolves_outside_the_checkout(installed):
    plays = []
    for role in _roles(installed, internal=False):
        names = sorted(yaml.safe_load((installed.path / "roles" / role / "defaults" / "main.yml").read_text()))
        plays.append({"name": role, "hosts": "localhost", "gather_facts": False, "tasks": [
            # Static: the role's defaults are the play's, and no task of it runs.
            {"name": "Load the role's defaults", "ansible.builtin.import_role": {"name": f"gpuops.platform.{role}"},
             "when": False},
            {"name": "Write every default as it resolves",
             "ansible.builtin.copy": {"content": "{{ dict(_names | zip(_names | map('extract', vars))) | to_json }}",
                                      "dest": str(installed.root / f"{role}.json"), "mode": "0600"},
             # role_path as inside the role (it is defined only there).
             "vars": {"_names": names, "role_path": str(installed.path / "roles" / role)}},
        ]})
    result = installed.playbook(_write(installed, "defaults.yml", plays))
    assert result.returncode == 0, _output(result)
    values = {role: json.loads((installed.root / f"{role}.json").read_text())
              for role in _roles(installed, internal=False)}
    text = json.dumps(values)
    assert str(REPO) not in text, [f"{role}.{k}" for role in values for k, v in values[role].items()
                                   if str(REPO) in json.dumps(v)]
    state = installed.home / ".gpuops"
    assert values["provision"]["provision_state_dir"] == str(state)
    assert values["provision"]["provision_cloud"] == "runpod"
    assert values["observability"]["observability_stack_dir"] == str(state / "stack")
    assert values["slurm"]["slurm_controller_stack_dir"] == str(state / "stack")
    inside = {"provision": ["provision_terraform_project"],
              "observability": ["observability_prometheus_offline_build_path",
                                "observability_alertmanager_offline_build_path"]}
    for role, names in inside.items():
        for name in names:
            path = Path(values[role][name])
            assert path.is_dir() and path.is_relative_to(installed.path / "roles" / role), (name, path)


def test_provision_preflight_runs_from_the_installed_collection_and_targets_runpod(installed):
    name = _write(installed, "provision.yml", [{"name": "Provision", "hosts": "localhost", "gather_facts": False,
                                                "roles": ["gpuops.platform.provision"]}])
    result = installed.playbook(name)
    # No cloud named and no RUNPOD_API_KEY: the preflight stops before anything is made.
    assert result.returncode != 0, _output(result)
    assert "RUNPOD_API_KEY is not set" in result.stdout, _output(result)
    assert "gpuops.platform.provision : Check the pod count" in result.stdout
    assert not (installed.home / ".gpuops").exists()
