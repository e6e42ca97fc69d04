"""What the role gpuops.platform.supervise writes for a program (issue 13, items 6 and 7).

The SSH tunnels of playbooks/tunnel.yml are systemd units of this role where
systemd is PID 1: a program given as ``argv`` (gpuops.platform.autossh_tunnel's
``command`` with supervisor=external) and its ``environment``, whose words are
data (paths). The role's own templates and vars are rendered here by
ansible-playbook, for systemd and for supervisord: each word must reach the
program as it is (quoted where needed, ``%`` and, for systemd, ``$`` escaped),
the unit restarts the program whenever it exits, and a ``command`` string (the
slurm and dcgm_exporter roles) is written as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
ROLE = REPO / "collections" / "ansible_collections" / "gpuops" / "platform" / "roles" / "supervise"

ARGV = ["/usr/bin/autossh", "-M", "0", "-o", "UserKnownHostsFile=/home/o p/known_hosts", "-i", "/home/o p/100%/key",
        "-o", "HostKeyAlias=x$y", "-L", "127.0.0.1:19400:127.0.0.1:9400", "127.0.0.1"]
PROGRAMS = {
    "tunnel-t1": {"argv": ARGV, "description": "gpuops SSH tunnel t1", "success_exit_status": [1],
                  "environment": {"GPUOPS_TUNNEL": "/home/o p/t1", "QUOTED": 'say "hi" 5% \\o/', "AUTOSSH_POLL": "10"}},
    "slurmd": {"command": "/usr/sbin/slurmd -D -N node-1", "environment": {}},
}


def render(tmp_path: Path, systemd: bool) -> dict[str, str]:
    """Each program's unit (systemd) or program file (supervisord), from the role's templates and vars."""
    out = tmp_path / ("systemd.json" if systemd else "supervisord.json")
    template = "systemd-unit.service.j2" if systemd else "supervisor-program.conf.j2"
    play = [{
        "name": "Render the supervise role's files",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"_supervise_systemd": systemd, "_supervise_programs": PROGRAMS},
        "tasks": [
            {"name": "The role's vars", "ansible.builtin.include_vars": {"file": str(ROLE / "vars" / "main.yml")}},
            # One lookup per program: the role's templates read `item`.
            {"name": "Write each program's file",
             "ansible.builtin.copy": {"dest": str(out), "mode": "0600", "content": "{{ _rendered | to_json }}"},
             "vars": {"_rendered": "{% set out = {} %}{% for name in _supervise_programs %}{% set _ = out.update({name: "
                                   "lookup('ansible.builtin.template', '" + str(ROLE / "templates" / template) + "', "
                                   "template_vars={'item': name})}) %}{% endfor %}{{ out }}"}},
        ],
    }]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(path),
                           "-e", "ansible_python_interpreter=%s" % sys.executable], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def units(tmp_path_factory) -> dict[str, str]:
    return render(tmp_path_factory.mktemp("systemd"), systemd=True)


def test_systemd_unit_of_an_argv_program(units):
    lines = units["tunnel-t1"].splitlines()
    assert 'ExecStart=/usr/bin/autossh -M 0 -o "UserKnownHostsFile=/home/o p/known_hosts" -i "/home/o p/100%%/key" ' \
           '-o "HostKeyAlias=x$$y" -L 127.0.0.1:19400:127.0.0.1:9400 127.0.0.1' in lines
    assert 'Environment="GPUOPS_TUNNEL=/home/o p/t1"' in lines
    assert 'Environment="QUOTED=say \\"hi\\" 5%% \\\\o/"' in lines
    assert 'Environment="AUTOSSH_POLL=10"' in lines
    # systemd restarts it whenever it exits (autossh restarts ssh), and starts it at boot.
    assert "Restart=always" in lines and "RestartSec=5" in lines and "WantedBy=multi-user.target" in lines
    assert "Description=gpuops SSH tunnel t1" in lines and "User=root" in lines
    # autossh ends with 1 when systemd stops it: a clean stop, the unit is not left failed.
    assert "SuccessExitStatus=1" in lines


def test_no_success_exit_status_unless_given(units):
    assert not [line for line in units["slurmd"].splitlines() if line.startswith("SuccessExitStatus")]


def test_command_strings_are_written_as_they_were(units, tmp_path):
    assert "ExecStart=/usr/sbin/slurmd -D -N node-1" in units["slurmd"].splitlines()
    program = render(tmp_path, systemd=False)["slurmd"].splitlines()
    assert "command=/usr/sbin/slurmd -D -N node-1" in program


def test_supervisord_program_of_an_argv_program(tmp_path):
    lines = render(tmp_path, systemd=False)["tunnel-t1"].splitlines()
    # supervisord expands %(...)s but not $: only % is doubled.
    assert 'command=/usr/bin/autossh -M 0 -o "UserKnownHostsFile=/home/o p/known_hosts" -i "/home/o p/100%%/key" ' \
           '-o "HostKeyAlias=x$y" -L 127.0.0.1:19400:127.0.0.1:9400 127.0.0.1' in lines
    assert "autorestart=true" in lines


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (package systemd)")
def test_systemd_accepts_the_unit(units, tmp_path):
    unit = tmp_path / "gpuops-tunnel-t1.service"
    # systemd-analyze checks that the program exists: the same words, run by a shell that is there.
    unit.write_text(units["tunnel-t1"].replace("ExecStart=/usr/bin/autossh ", "ExecStart=/bin/sh "))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and "gpuops-tunnel-t1.service" not in done.stderr, done.stderr
