# -*- coding: utf-8 -*-
# Copyright (c) 2026, gpuops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""backend.json, the provision role's record of a Terraform backend, as the inventory plugin reads it."""

from __future__ import annotations

import json

import pytest

from ansible_collections.gpuops.platform.plugins.plugin_utils._terraform import (
    TerraformError,
    backend_working_copy,
)


def test_no_record_means_the_local_state_file(tmp_path):
    assert backend_working_copy(str(tmp_path / "terraform.tfstate")) is None
    assert backend_working_copy(None) is None


def test_a_record_names_the_working_copy_and_data_dir_next_to_it(tmp_path):
    (tmp_path / "backend.json").write_text(json.dumps({"type": "pg", "working_directory": "module", "data_dir": "data"}))
    assert backend_working_copy(str(tmp_path / "terraform.tfstate")) == (
        "pg", str(tmp_path / "module"), str(tmp_path / "data"))


@pytest.mark.parametrize("content", ["not json", "[]", '{"type": "pg"}', '{"type": "pg", "working_directory": 1, "data_dir": "d"}'])
def test_a_broken_record_is_an_error_naming_it(tmp_path, content):
    (tmp_path / "backend.json").write_text(content)
    with pytest.raises(TerraformError) as err:
        backend_working_copy(str(tmp_path / "terraform.tfstate"))
    assert str(tmp_path / "backend.json") in err.value.message
