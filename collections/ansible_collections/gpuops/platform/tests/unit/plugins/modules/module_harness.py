# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a module's main() in-process: exit_json/fail_json raise, warnings are kept."""

from __future__ import annotations

from ansible.module_utils import basic


class ExitJson(Exception):
    """Raised by AnsibleModule.exit_json; args[0] is the result."""


class FailJson(Exception):
    """Raised by AnsibleModule.fail_json; args[0] is the result."""


def patch_module_exits(monkeypatch) -> None:
    """Make exit_json/fail_json raise with the result, warnings included."""

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        kwargs["warnings"] = list(getattr(self, "_gpuops_warnings", []))
        raise ExitJson(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        kwargs["failed"] = True
        kwargs["warnings"] = list(getattr(self, "_gpuops_warnings", []))
        raise FailJson(kwargs)

    def warn(self, warning):
        self.__dict__.setdefault("_gpuops_warnings", []).append(warning)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", warn)
