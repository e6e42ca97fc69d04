# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Slurm's version rule for a node joining a controller (docs: slurm_join_refusal.yml, slurm_release.yml)."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# Slurm's major releases in order (year.month). A daemon talks to the same
# release and to a window of older ones: 2 older releases up to 24.05, 3 from
# 24.11 on (Slurm's Upgrade Guide, "Compatibility Window": "Slurm 24.11
# introduced compatibility with the previous three major releases").
RELEASES = (
    "17.02", "17.11", "18.08", "19.05", "20.02", "20.11", "21.08", "22.05",
    "23.02", "23.11", "24.05", "24.11", "25.05", "25.11",
)
WIDER_WINDOW_FROM = "24.11"

_VERSION = re.compile(r"^\s*slurm(?:-wlm)?\s+(\d+)\.(\d+)\.(\d+)\S*\s*$", re.MULTILINE)


def slurm_release(text):
    """'slurm-wlm 24.11.5' (any `slurmd -V` / `slurmctld -V` output) -> '24.11.5'; '' when there is none."""
    if not isinstance(text, str):
        raise AnsibleFilterError("slurm_release expects the text of a `slurmd -V`, got %s" % type(text).__name__)
    match = _VERSION.search(text)
    if not match:
        return ""
    return "%02d.%02d.%s" % (int(match.group(1)), int(match.group(2)), match.group(3))


def _major(version):
    return ".".join(version.split(".")[:2])


def slurm_join_refusal(slurmd_text, controller_text):
    """Why a slurmd of `slurmd_text` cannot join a controller of `controller_text`; '' when it can."""
    controller = slurm_release(controller_text)
    if not controller:
        raise AnsibleFilterError("no Slurm version in the controller's output %r" % (controller_text,))
    controller_major = _major(controller)
    if controller_major not in RELEASES:
        raise AnsibleFilterError(
            "the controller's Slurm %s is a release gpuops does not know (%s): add it to slurm_versions.RELEASES"
            % (controller, ", ".join(RELEASES)))
    slurmd = slurm_release(slurmd_text)
    if not slurmd:
        return ("it has no slurmd (`slurmd -V` said %r). Use an image with Slurm's slurmd and munge (RunPod's "
                "Ubuntu 24.04 images have slurmd 23.11; Debian 13 ships 24.11)." % (slurmd_text.strip()[:200],))
    window = 3 if RELEASES.index(controller_major) >= RELEASES.index(WIDER_WINDOW_FROM) else 2
    position = RELEASES.index(controller_major)
    accepted = RELEASES[max(0, position - window):position + 1]
    slurmd_major = _major(slurmd)
    if slurmd_major in accepted:
        return ""
    newer = tuple(int(part) for part in slurmd_major.split(".")) > tuple(int(part) for part in controller_major.split("."))
    return ("its slurmd %s is %s than the controller's Slurm %s allows: slurmctld %s serves slurmd %s only "
            "(Slurm's rule: slurmdbd >= slurmctld >= slurmd, within %d older releases). Use a pod image with "
            "one of these Slurm releases (RunPod's Ubuntu 24.04 images: 23.11; Debian 13: 24.11)."
            % (slurmd, "newer" if newer else "older", controller, controller_major,
               ", ".join(accepted), window))


class FilterModule:
    """Slurm version filters."""

    def filters(self):
        return {"slurm_release": slurm_release, "slurm_join_refusal": slurm_join_refusal}
