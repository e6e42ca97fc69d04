"""Every role's meta/argument_specs.yml mirrors its defaults/main.yml key for key.

A variable documented but not defaulted (or defaulted but not documented), or a
documented default that drifted from the real one, fails here. Checked for
every role of the collection, present and future.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "collections/ansible_collections/gpuops/platform/roles"
ROLE_DIRS = sorted(path for path in ROLES.iterdir() if path.is_dir())

# Python types a documented `type` accepts (templated string defaults aside).
TYPES = {
    "str": (str,),
    "path": (str,),
    "int": (int,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "float": (float, int),
}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _entry_points(role: Path) -> dict:
    specs = _load(role / "meta" / "argument_specs.yml")["argument_specs"]
    assert "main" in specs, f"{role.name}: meta/argument_specs.yml has no 'main' entry point"
    return specs


def _options(role: Path) -> dict:
    """Every entry point's options (main first); an option several entry points take must be documented alike."""
    options: dict = {}
    for entry, spec in _entry_points(role).items():
        for name, option in (spec.get("options") or {}).items():
            if name in options:
                assert (options[name].get("default"), options[name].get("type")) == (
                    option.get("default"), option.get("type")), f"{role.name}: {name} differs in entry point {entry}"
            else:
                options[name] = option
    return options


def test_roles_are_found():
    assert {"provision", "slurm"} <= {role.name for role in ROLE_DIRS}


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[role.name for role in ROLE_DIRS])
def test_role_has_defaults_and_argument_specs(role):
    assert (role / "defaults" / "main.yml").is_file(), f"{role.name}: no defaults/main.yml"
    assert (role / "meta" / "argument_specs.yml").is_file(), f"{role.name}: no meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[role.name for role in ROLE_DIRS])
def test_argument_specs_mirror_defaults_key_for_key(role):
    defaults = _load(role / "defaults" / "main.yml")
    options = _options(role)
    assert sorted(set(defaults) - set(options)) == [], f"{role.name}: defaulted but not in meta/argument_specs.yml"
    assert sorted(set(options) - set(defaults)) == [], f"{role.name}: documented but not in defaults/main.yml"
    # Same order, so that both files read alike (for a role with one entry point).
    if len(_entry_points(role)) == 1:
        assert list(options) == list(defaults), f"{role.name}: options are not in the order of defaults/main.yml"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[role.name for role in ROLE_DIRS])
def test_documented_defaults_are_the_real_ones(role):
    defaults = _load(role / "defaults" / "main.yml")
    options = _options(role)
    drift = {}
    for name, value in defaults.items():
        spec = options.get(name, {})
        if spec.get("required") or (isinstance(value, str) and "{{" in value):
            # A templated default (from the inventory, e.g. gpuops_root) has no literal value to compare;
            # it is documented by what it resolves to, or made required.
            continue
        if spec.get("default") != value:
            drift[name] = (spec.get("default"), value)
    assert drift == {}, f"{role.name}: documented default != defaults/main.yml: {drift}"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[role.name for role in ROLE_DIRS])
def test_every_option_is_described_and_typed(role):
    defaults = _load(role / "defaults" / "main.yml")
    for name, spec in _options(role).items():
        assert spec.get("description"), f"{role.name}: {name} has no description"
        assert spec.get("type"), f"{role.name}: {name} has no type"
        value = defaults.get(name)
        if value is None or (isinstance(value, str) and "{{" in value) or spec["type"] not in TYPES:
            continue
        assert isinstance(value, TYPES[spec["type"]]), f"{role.name}: {name} defaults to {value!r}, not a {spec['type']}"
        if spec["type"] == "int":
            assert not isinstance(value, bool), f"{role.name}: {name} defaults to a bool, documented as int"
        if "choices" in spec:
            assert value in spec["choices"], f"{role.name}: {name} defaults to {value!r}, not one of {spec['choices']}"
