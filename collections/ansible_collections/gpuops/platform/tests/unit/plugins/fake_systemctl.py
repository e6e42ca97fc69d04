# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The unit tests' one systemctl: the real systemctl's answers, replayed.

``fixtures/systemctl.json`` holds what systemd 257's ``systemctl`` answered to the
collection's own ``SystemdSupervisor`` (recorded by ``tests/fixtures/record_systemctl.py``
of the gpuops repository: systemd as PID 1 in a Debian 13 container). The fake keeps
only the unit's state (enabled, running, which start it is), which picks the recorded
answer; it writes nothing. A command line the recording has no answer for fails the
test: record it rather than make one up.

``systemctl --user`` with a user manager could not be recorded (the image has no
D-Bus, so no user manager): it gets the system manager's answers, which have the same
form. ``FakeSystemctl(user_manager=False)`` answers ``--user`` as recorded for a login
with no user manager.
"""

from __future__ import annotations

import json
import os

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "systemctl.json")


def _verb(argv):
    return argv[2] if len(argv) > 2 and argv[1] == "--user" else argv[1]


class FakeSystemctl:
    """Call it as the supervisor's ``run(cmd)``, or patch ``AnsibleModule.run_command`` with ``run_command``."""

    def __init__(self, user_manager=True):
        with open(FIXTURE, encoding="utf-8") as handle:
            self.recording = json.load(handle)
        self.user_manager = user_manager
        self.calls = []
        self.active = False
        self.enabled = False
        self.starts = 0
        self._answers = {}
        for call in self.recording["system"]:
            self._answers.setdefault((_verb(call["argv"]), self._state_of(call)), []).append(call)
        self._no_manager = {_verb(call["argv"]): call for call in self.recording["user_without_manager"] if "argv" in call}
        self.no_manager_error = next(call["error"] for call in self.recording["user_without_manager"] if "error" in call)

    @staticmethod
    def _state_of(call):
        """What decided the recorded answer: a show's ActiveState, enable/disable's symlink message."""
        verb = _verb(call["argv"])
        if verb == "show":
            return "active" if "ActiveState=active" in call["stdout"] else "inactive"
        if verb in ("enable", "disable"):
            return "changed" if call["stderr"] else "unchanged"
        return None

    @property
    def main_pids(self):
        """MainPID of each recorded start, in order (a later start reuses the last)."""
        return [int(call["stdout"].split("MainPID=")[1].split()[0]) for call in self._answers[("show", "active")]
                if call["step"] in ("start", "start again")]

    @property
    def main_pid(self):
        """The MainPID the fake reports while the unit runs (the recorded one of this start)."""
        pids = self.main_pids
        return pids[min(max(self.starts, 1), len(pids)) - 1]

    def verbs(self):
        return [_verb(cmd) for cmd in self.calls]

    def __call__(self, cmd):
        self.calls.append(list(cmd))
        if cmd[1] == "--user" and not self.user_manager:
            return self._replay(self._no_manager[_verb(cmd)], cmd)
        verb = _verb(cmd)
        state = None
        if verb == "show":
            state = "active" if self.active else "inactive"
        elif verb == "enable":
            state = "unchanged" if self.enabled else "changed"
        elif verb == "disable":
            state = "changed" if self.enabled else "unchanged"
        answers = self._answers.get((verb, state))
        if not answers:
            raise AssertionError("systemctl %s (unit %s) has no recorded answer in %s: record it with "
                                 "tests/fixtures/record_systemctl.py" % (" ".join(cmd[1:]), state, FIXTURE))
        answer = answers[0]
        if verb == "show" and self.active:
            answer = next(call for call in answers if "MainPID=%d\n" % self.main_pid in call["stdout"])
        if verb in ("restart", "start"):
            self.active = True
            self.starts += 1
        elif verb == "stop":
            self.active = False
        elif verb == "enable":
            self.enabled = True
        elif verb == "disable":
            self.enabled = False
        return self._replay(answer, cmd)

    def run_command(self, cmd, **_kwargs):
        return self(cmd)

    def _replay(self, answer, cmd):
        """The recorded (rc, stdout, stderr), with the recorded unit's name replaced by the one asked about."""
        unit = next((arg for arg in cmd if arg.endswith(".service")), self.recording["unit"])
        return (answer["rc"], answer["stdout"].replace(self.recording["unit"], unit),
                answer["stderr"].replace(self.recording["unit"], unit))
