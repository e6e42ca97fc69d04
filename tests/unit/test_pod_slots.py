"""One source for everything numbered per pod: its slot (issue 13, item 10).

Each pod's exporter port and Slurm tunnel address come from its slot,
``gpuops_pod_slot`` in inventories/common.yml: the inventory plugin's
``runpod_pod_index``, the number in the pod's name. Three consumers read them:

- the tunnel (playbooks/tunnel.yml's ``forwards``);
- Slurm's controller (playbooks/stack.yml's ``slurm_controller_nodes``, turned
  into slurmctld's ``extra_hosts`` by the slurm role);
- Prometheus (the observability role's ``gpu.json`` targets).

Each is rendered here from the real files (the playbooks' own expressions, the
roles' own vars and template) with the repository's inventory variables, by
ansible-playbook: they must agree pod by pod, and no pod's port or address may
move when another pod (the middle one) drops out.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
ROLES = REPO / "collections" / "ansible_collections" / "gpuops" / "platform" / "roles"
BASE = 21000


def _task(playbook: str, name: str) -> dict:
    """The task called NAME in one of the plays of PLAYBOOK (YAML, as Ansible reads it)."""
    for play in yaml.safe_load((REPO / playbook).read_text()):
        for task in play.get("tasks", []):
            if task.get("name") == name:
                return task
    raise AssertionError(f"{playbook} has no task {name!r}")


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


def render(tmp_path: Path, pods: dict[str, int | None]) -> subprocess.CompletedProcess:
    """ansible-playbook over an inventory of PODS (name -> runpod_pod_index, None for none) with the repository's
    group_vars; writes what each consumer makes of each pod to out.json."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    for name in ("common.yml", "cloud.yml"):
        source = REPO / "inventories" / "local" / "group_vars" / "all" / name
        (inventory / "group_vars" / "all" / name).symlink_to(source.resolve())
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"gpu_pods": {"hosts": {
        name: ({"runpod_pod_index": index} if index is not None else {}) for name, index in pods.items()}}}}}))

    tunnel = _task("playbooks/tunnel.yml", "Keep the pod's tunnel open")
    nodes = _task("playbooks/stack.yml", "Write Slurm's controller files and services")["vars"]["slurm_controller_nodes"]
    observability = _defaults("observability")
    out = tmp_path / "out.json"
    play = [
        {
            "name": "What the tunnel forwards, per pod (playbooks/tunnel.yml)",
            "hosts": "gpu_pods",
            "connection": "local",
            "gather_facts": False,
            "tasks": [{"name": "The pod's forwards",
                       "ansible.builtin.set_fact": {"_forwards": tunnel["gpuops.platform.autossh_tunnel"]["forwards"]}}],
        },
        {
            "name": "What Slurm's controller and Prometheus make of the pods",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {
                "slurm_controller_name": _defaults("slurm")["slurm_controller_name"],
                **{key: observability[key] for key in
                   ("observability_pod_group", "observability_controller_group", "observability_pod_port_var")},
            },
            "tasks": [
                {"name": "The slurm role's vars",
                 "ansible.builtin.include_vars": {"file": str(ROLES / "slurm" / "vars" / "main.yml")}},
                {"name": "The observability role's vars",
                 "ansible.builtin.include_vars": {"file": str(ROLES / "observability" / "vars" / "main.yml")}},
                {"name": "The nodes as playbooks/stack.yml gives them to the slurm role",
                 "ansible.builtin.set_fact": {"slurm_controller_nodes": nodes}},
                {"name": "Write what each consumer says",
                 "ansible.builtin.copy": {
                     "dest": str(out),
                     "mode": "0600",
                     "content": "{{ {'extra_hosts': _slurm_controller_extra_hosts,"
                                " 'targets': lookup('ansible.builtin.template', '"
                                + str(ROLES / "observability" / "templates" / "prometheus" / "gpu.json.j2")
                                + "') | from_json,"
                                " 'pod_ports': dict(_observability_pods | zip(_observability_pod_ports)),"
                                " 'forwards': dict(groups['gpu_pods'] | zip(groups['gpu_pods']"
                                " | map('extract', hostvars, '_forwards')))} | to_json }}"}},
            ],
        },
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(path),
                           "-e", f"gpuops_tunnel_port_base={BASE}", "-e", f"gpuops_state_dir={tmp_path / 'state'}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def per_pod(tmp_path: Path, pods: dict[str, int | None]) -> dict[str, dict]:
    """Each pod's exporter port and Slurm address, as each consumer has them (asserting that they agree)."""
    result = render(tmp_path, pods)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    said = json.loads((tmp_path / "out.json").read_text())
    extra_hosts = dict(entry.split(":", 1) for entry in said["extra_hosts"])
    assert extra_hosts.pop("slurmctld") == "127.0.0.1"
    targets = {group["labels"]["pod"]: group["targets"] for group in said["targets"]}
    assert sorted(targets) == sorted(extra_hosts) == sorted(said["forwards"]) == sorted(pods)
    found = {}
    for pod in pods:
        exporter, slurmd = said["forwards"][pod]
        assert exporter["bind_address"] == "127.0.0.1" and exporter["remote_port"] == 9400
        # Prometheus scrapes where the tunnel listens; slurmctld finds the node where the tunnel listens.
        assert targets[pod] == [f"127.0.0.1:{exporter['local_port']}"]
        assert str(said["pod_ports"][pod]) == str(exporter["local_port"])
        assert extra_hosts[pod] == slurmd["bind_address"]
        found[pod] = {"port": int(exporter["local_port"]), "addr": slurmd["bind_address"]}
    return found


def test_consumers_agree_and_use_the_pods_slot(tmp_path):
    found = per_pod(tmp_path, {"gpuops-0": 0, "gpuops-1": 1, "gpuops-2": 2})
    assert found == {f"gpuops-{i}": {"port": BASE + 2 * i, "addr": f"127.0.1.{i + 1}"} for i in range(3)}


def test_a_pod_dropping_out_moves_no_other_pods_port_or_address(tmp_path):
    """gpuops-1 is stopped, deleted or gone from the state: gpuops-2 keeps its tunnel, target and address."""
    before = per_pod(tmp_path / "before", {"gpuops-0": 0, "gpuops-1": 1, "gpuops-2": 2})
    after = per_pod(tmp_path / "after", {"gpuops-0": 0, "gpuops-2": 2})
    assert after == {name: before[name] for name in ("gpuops-0", "gpuops-2")}


def test_a_pod_without_a_slot_is_a_clear_error(tmp_path):
    """A Terraform output from before the index (an older deployment): say what to run, not a Jinja error."""
    result = render(tmp_path, {"gpuops-0": 0, "gpuops-1": None})
    assert result.returncode != 0
    said = " ".join((result.stdout + result.stderr).split())
    assert "gpuops-1 has no runpod_pod_index" in said, said[-3000:]
    assert "ansible-playbook playbooks/provision.yml" in said
