# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Slurm's version rule for a joining slurmd, on outputs recorded from real Slurm packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gpuops.platform.plugins.filter.slurm_versions import (
    FilterModule,
    slurm_join_refusal,
    slurm_release,
)

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "slurm_versions.json").read_text())
CONTROLLER = RECORDED["debian-13-slurmctld"]


def test_the_filters_are_exported_by_name():
    assert set(FilterModule().filters()) == {"slurm_release", "slurm_join_refusal"}


@pytest.mark.parametrize("key, version", [
    ("debian-12-slurmd", "22.05.8"),
    ("debian-13-slurmd", "24.11.5"),
    ("debian-13-slurmctld", "24.11.5"),
    ("missing-slurmd-sh", ""),
])
def test_the_release_is_read_from_recorded_outputs(key, version):
    assert slurm_release(RECORDED[key]) == version


def test_the_month_gets_two_digits_and_upstream_builds_are_read():
    assert slurm_release("slurm 24.5.1\n") == "24.05.1"
    assert slurm_release("slurm 25.11.0-0rc1\n") == "25.11.0"


def test_the_same_release_joins():
    assert slurm_join_refusal(RECORDED["debian-13-slurmd"], CONTROLLER) == ""


def test_debian_12s_slurmd_is_refused_by_a_24_11_controller_with_what_to_do():
    refusal = slurm_join_refusal(RECORDED["debian-12-slurmd"], CONTROLLER)
    assert refusal.startswith("its slurmd 22.05.8 is older than the controller's Slurm 24.11.5 allows")
    assert "slurmctld 24.11 serves slurmd 23.02, 23.11, 24.05, 24.11 only" in refusal
    assert "within 3 older releases" in refusal
    assert "Use a pod image" in refusal


def test_a_slurmd_newer_than_the_controller_is_refused():
    refusal = slurm_join_refusal(RECORDED["debian-13-slurmd"], RECORDED["debian-12-slurmd"])
    assert refusal.startswith("its slurmd 24.11.5 is newer than the controller's Slurm 22.05.8 allows")
    # Before 24.05 the window was 2 older releases.
    assert "serves slurmd 20.11, 21.08, 22.05 only" in refusal
    assert "within 2 older releases" in refusal


@pytest.mark.parametrize("slurmd, joins", [
    ("slurm-wlm 23.02.7", True),     # 3 releases older: the edge of 24.11's window
    ("slurm-wlm 23.11.4", True),     # Ubuntu 24.04's package
    ("slurm-wlm 22.05.8", False),    # 4 releases older
    ("slurm-wlm 21.08.5", False),    # Ubuntu 22.04's package
    ("slurm-wlm 25.05.0", False),    # newer than the controller
])
def test_the_window_of_a_24_11_controller(slurmd, joins):
    assert (slurm_join_refusal(slurmd + "\n", CONTROLLER) == "") is joins


def test_a_missing_slurmd_is_refused_with_the_command_s_words():
    refusal = slurm_join_refusal(RECORDED["missing-slurmd-sh"], CONTROLLER)
    assert refusal.startswith("it has no slurmd (`slurmd -V` said 'sh: 1: slurmd: not found')")


@pytest.mark.parametrize("controller", ["", "slurm-wlm 26.05.1\n"])
def test_a_controller_without_a_known_release_is_an_error(controller):
    with pytest.raises(AnsibleFilterError):
        slurm_join_refusal(RECORDED["debian-13-slurmd"], controller)


def test_a_24_05_controller_has_the_older_window_of_two_releases():
    controller = "slurm-wlm 24.05.4\n"
    assert slurm_join_refusal("slurm-wlm 23.02.7\n", controller) == ""
    refusal = slurm_join_refusal(RECORDED["debian-12-slurmd"], controller)
    assert "slurmctld 24.05 serves slurmd 23.02, 23.11, 24.05 only" in refusal and "within 2 older" in refusal


def test_an_unknown_old_release_is_called_older():
    assert " is older than " in slurm_join_refusal("slurm 16.05.1\n", CONTROLLER)
