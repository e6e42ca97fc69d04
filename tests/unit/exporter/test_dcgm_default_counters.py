"""The collection's counter table is dcgm-exporter's default list, from the vendored upstream file.

tests/unit/exporter/upstream/dcgm-exporter/default-counters.csv is
etc/default-counters.csv of NVIDIA/dcgm-exporter at a pinned tag, unmodified
(its README names the tag, the commit and the licence).
"""

from __future__ import annotations

import pytest

from gpu_exporter_helpers import (
    DCGM_EXPORTER_BLOBS,
    DCGM_EXPORTER_COMMIT,
    DCGM_EXPORTER_DIR,
    DCGM_EXPORTER_TAG,
    EXPORTER_FILE,
    git_blob_id,
    read_counters_csv,
)

# Where gpuops deliberately departs from dcgm-exporter's default list: nowhere.
# The table (and so the counters CSV the role's dcgm backend hands to
# dcgm-exporter) is the upstream list row for row; the nvml backend serves the
# subset NVML can supply (NVML_SUPPLIED in test_gpu_exporter_metrics.py), and
# the dcgm backend drops the profiling rows DCGM cannot collect on a host
# (tested there too). A deliberate difference is written here, with why:
#   "added": rows (field, type, help) upstream does not have,
#   "removed": fields of upstream rows the table leaves out,
#   "changed": {field: (type, help)} where the table says otherwise.
DELIBERATE_DIFFERENCES: dict = {"added": [], "removed": [], "changed": {}}


def differences(table: list[tuple[str, str, str]], upstream: list[tuple[str, str, str]]) -> dict:
    ours = {row[0]: row for row in table}
    theirs = {row[0]: row for row in upstream}
    return {
        "added": [row for row in table if row[0] not in theirs],
        "removed": [row[0] for row in upstream if row[0] not in ours],
        "changed": {name: ours[name][1:] for name in ours if name in theirs and ours[name] != theirs[name]},
    }


@pytest.mark.parametrize("name", sorted(DCGM_EXPORTER_BLOBS))
def test_the_vendored_files_are_upstreams_unmodified(name):
    data = (DCGM_EXPORTER_DIR / name).read_bytes()
    assert git_blob_id(data) == DCGM_EXPORTER_BLOBS[name], (
        f"{DCGM_EXPORTER_DIR / name} is not NVIDIA/dcgm-exporter's file at {DCGM_EXPORTER_TAG}: vendor it again "
        f"(see the README there) instead of editing it")


def test_the_pin_is_named_where_people_look():
    readme = (DCGM_EXPORTER_DIR / "README.md").read_text()
    for fact in (DCGM_EXPORTER_TAG, DCGM_EXPORTER_COMMIT, *DCGM_EXPORTER_BLOBS.values(), "Apache License"):
        assert fact in readme, fact
    assert f"at tag {DCGM_EXPORTER_TAG}" in " ".join(EXPORTER_FILE.read_text().replace("#", " ").split())


def test_upstream_parses_as_dcgm_exporter_reads_it(default_counters):
    # Every row 3 fields (read_counters_csv asserts it), unique, and the profiling block at the end.
    names = [row[0] for row in default_counters]
    assert len(names) == len(set(names)) and len(names) > 20
    assert all(kind in ("gauge", "counter", "label") for _name, kind, _help in default_counters)


def test_table_is_dcgm_exporters_default_counters(exporter, default_counters):
    table = [(c.name, c.type, c.help) for c in exporter.DCGM_DEFAULT_COUNTERS]
    assert differences(table, default_counters) == DELIBERATE_DIFFERENCES
    # The rows both have come in upstream's order.
    common = [row[0] for row in table if row[0] in {r[0] for r in default_counters}]
    assert common == [row[0] for row in default_counters if row[0] in common]


def test_the_role_hands_dcgm_exporter_the_table(exporter):
    # What the dcgm backend writes (every profiling row kept) is the table, as dcgm-exporter reads it.
    table = [(c.name, c.type, c.help) for c in exporter.DCGM_DEFAULT_COUNTERS]
    assert read_counters_csv(exporter.dcgm_counters_csv()) == table


def test_differences_sees_each_kind_of_departure(default_counters):
    # The comparison itself can fail: a type changed, a row dropped, a row added.
    edited = [row if row[0] != "DCGM_FI_DEV_GPU_UTIL" else (row[0], "counter", row[2]) for row in default_counters]
    edited = [row for row in edited if row[0] != "DCGM_FI_DEV_FB_FREE"] + [("DCGM_FI_DEV_XYZ", "gauge", "x")]
    assert differences(edited, default_counters) == {
        "added": [("DCGM_FI_DEV_XYZ", "gauge", "x")],
        "removed": ["DCGM_FI_DEV_FB_FREE"],
        "changed": {"DCGM_FI_DEV_GPU_UTIL": ("counter", "GPU utilization (in %).")},
    }
