# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The gpuops.platform.runpod doc fragment is the one text of the RunPod API options.

A module or plugin that describes one of these options again replaces the fragment's text with its own. It may only add
what the fragment cannot say for everyone (the inventory plugin's ``env`` entries, its ``type``).
"""

from __future__ import annotations

import importlib

import pytest
import yaml

from ansible_collections.gpuops.platform.plugins.doc_fragments.runpod import ModuleDocFragment

FRAGMENT_OPTIONS = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
USERS = [
    "ansible_collections.gpuops.platform.plugins.modules.runpod_pod_info",
    "ansible_collections.gpuops.platform.plugins.modules.runpod_catalog_info",
    "ansible_collections.gpuops.platform.plugins.inventory.runpod",
]


@pytest.mark.parametrize("name", USERS)
def test_users_keep_the_fragment_text(name):
    doc = yaml.safe_load(importlib.import_module(name).DOCUMENTATION)
    assert "gpuops.platform.runpod" in doc["extends_documentation_fragment"]
    for option, own in doc.get("options", {}).items():
        if option in FRAGMENT_OPTIONS:
            assert "description" not in own, (
                "%s describes the fragment's option %s again: its text would replace the fragment's" % (name, option))


def test_fragment_names_the_environment_fallbacks():
    # The modules fall back to RUNPOD_BASE_URL and RUNPOD_API_KEY (runpod_argument_spec), the plugin reads the same
    # variables through its env entries; the fragment's text says so for both.
    assert "E(RUNPOD_BASE_URL)" in " ".join(FRAGMENT_OPTIONS["base_url"]["description"])
    assert "E(RUNPOD_API_KEY)" in " ".join(FRAGMENT_OPTIONS["api_key"]["description"])
