# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the Terraform CLI for gpuops.platform.

Every Terraform call goes through ``TerraformCommands``: commands are argument
lists (never a shell), JSON answers are parsed into small dataclasses and
failures raise typed errors with a message a user can act on.

Controller side only (the inventory plugin runs Terraform on the controller),
so it lives in plugin_utils: it is never shipped to a managed host.

Private to the collection: the interface may change without notice.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import typing as t

from dataclasses import dataclass, field


SETUP_HINT = (
    "install Terraform (https://developer.hashicorp.com/terraform/install) or run `make setup`, "
    "which provides .venv/bin/terraform"
)
PROVISION_HINT = "run ansible-playbook playbooks/provision.yml first"
_STDERR_EXCERPT = 2000


class TerraformError(Exception):
    """A Terraform command failed. ``rc`` and ``stderr`` are set when it ran."""

    def __init__(self, message: str, command: list[str] | None = None, rc: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.command = list(command or [])
        self.rc = rc
        self.stderr = stderr


class TerraformNotFound(TerraformError):
    """The Terraform binary does not exist or cannot be executed."""


class TerraformNoState(TerraformError):
    """There is no state yet, or the state holds no outputs."""


@dataclass(frozen=True)
class TerraformOutput:
    """One entry of ``terraform output -json``. The value of a sensitive output never shows in repr."""

    name: str
    value: t.Any = field(repr=False)
    sensitive: bool = False
    type: t.Any = None

    def __repr__(self) -> str:
        shown = "<sensitive>" if self.sensitive else repr(self.value)
        return "TerraformOutput(name=%r, value=%s, sensitive=%r, type=%r)" % (self.name, shown, self.sensitive, self.type)


def _excerpt(text: str) -> str:
    text = text.strip()
    if len(text) > _STDERR_EXCERPT:
        text = "..." + text[-_STDERR_EXCERPT:]
    return text


class TerraformCommands:
    """Terraform CLI bound to one root module directory.

    ``env`` holds extra environment variables (such as TF_DATA_DIR or
    TF_CLI_CONFIG_FILE) laid over the current environment.
    """

    def __init__(
        self,
        project_path: str,
        binary: str = "terraform",
        env: dict[str, t.Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.project_path = project_path
        self.binary = binary or "terraform"
        self.env = {str(k): str(v) for k, v in (env or {}).items() if v is not None}
        self.timeout = timeout

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("TF_IN_AUTOMATION", "1")
        env.setdefault("TF_INPUT", "0")
        return env

    def find_binary(self, env: dict[str, str] | None = None) -> str:
        """Return the path of the Terraform executable or raise TerraformNotFound."""
        env = self.environment() if env is None else env
        binary = os.path.expanduser(self.binary)
        if os.sep in binary:
            found = binary if os.path.isfile(binary) and os.access(binary, os.X_OK) else None
        else:
            found = shutil.which(binary, path=env.get("PATH", os.defpath))
        if not found:
            raise TerraformNotFound(
                "Terraform binary %r not found or not executable: %s, or point the terraform binary "
                "setting (GPUOPS_TERRAFORM) at it" % (self.binary, SETUP_HINT))
        return found

    def run(self, args: list[str]) -> tuple[int, str, str]:
        """Run ``terraform ARGS`` in the project directory; return (rc, stdout, stderr)."""
        if not os.path.isdir(self.project_path):
            raise TerraformError("Terraform project directory %s does not exist" % self.project_path)
        env = self.environment()
        command = [self.find_binary(env)] + list(args)
        try:
            proc = subprocess.run(
                command,
                cwd=self.project_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TerraformError(
                "`terraform %s` in %s did not finish within %s seconds" % (" ".join(args), self.project_path, self.timeout),
                command=command) from None
        except OSError as err:
            raise TerraformNotFound("cannot run Terraform binary %s: %s; %s" % (command[0], err, SETUP_HINT), command=command) from None
        stdout = proc.stdout.decode("utf-8", errors="replace")
        stderr = proc.stderr.decode("utf-8", errors="replace")
        return proc.returncode, stdout, stderr

    def output(self, state_file: str | None = None) -> dict[str, TerraformOutput]:
        """``terraform output -json``: a dict of output name to TerraformOutput.

        Raises TerraformNoState when there is no state or it holds no outputs
        (Terraform then prints ``{}`` and exits 0).
        """
        args = ["output", "-json", "-no-color"]
        if state_file:
            args.append("-state=%s" % state_file)
        rc, stdout, stderr = self.run(args)
        where = state_file or self.project_path
        if rc != 0:
            raise TerraformError(
                "`terraform output` for %s failed (rc=%d): %s" % (where, rc, _excerpt(stderr) or "no error output"),
                command=args, rc=rc, stderr=stderr)
        try:
            data = json.loads(stdout) if stdout.strip() else {}
        except ValueError:
            # never echo stdout: it may hold sensitive values
            raise TerraformError(
                "`terraform output -json` for %s printed %d bytes that are not JSON" % (where, len(stdout)),
                command=args, rc=rc, stderr=stderr) from None
        if not isinstance(data, dict):
            raise TerraformError("`terraform output -json` for %s did not print a JSON object" % where, command=args, rc=rc, stderr=stderr)
        if not data:
            raise TerraformNoState(
                "no Terraform state at %s: %s" % (where, PROVISION_HINT),
                command=args, rc=rc, stderr=stderr)
        outputs = {}
        for name, entry in data.items():
            if not isinstance(entry, dict) or "value" not in entry:
                raise TerraformError("`terraform output -json` for %s: output %r has no value" % (where, name), command=args, rc=rc, stderr=stderr)
            outputs[name] = TerraformOutput(
                name=name,
                value=entry["value"],
                sensitive=bool(entry.get("sensitive", False)),
                type=entry.get("type"),
            )
        return outputs


BACKEND_MARKER = "backend.json"


def backend_working_copy(state_file: str | None) -> tuple[str, str, str] | None:
    """Where Terraform runs when gpuops.platform.provision keeps the state in a backend.

    The provision role writes ``backend.json`` (``{"type", "working_directory", "data_dir"}``, paths relative to
    the file, no secret) next to the local state file when ``provision_terraform_backend`` names another backend
    than ``local``, and removes it otherwise. Returns ``(backend type, working copy, TF_DATA_DIR)``, or None when
    there is no such file (the state is the local file). A file that is not such a record raises TerraformError.
    """
    if not state_file:
        return None
    base = os.path.dirname(state_file)
    marker = os.path.join(base, BACKEND_MARKER)
    try:
        with open(marker, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise TerraformError("cannot read %s, the record of the deployment's Terraform backend: %s" % (marker, err)) from None
    if not isinstance(data, dict) or not all(isinstance(data.get(key), str) and data.get(key)
                                             for key in ("type", "working_directory", "data_dir")):
        raise TerraformError(
            "%s is not a record of a Terraform backend ({type, working_directory, data_dir}); rerun "
            "playbooks/provision.yml, which writes it" % marker)
    return (data["type"], os.path.normpath(os.path.join(base, data["working_directory"])),
            os.path.normpath(os.path.join(base, data["data_dir"])))
