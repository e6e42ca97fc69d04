"""Helpers of the GPU exporter tests: the exporter file, imported, and dcgm-exporter test data."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "collections/ansible_collections/gpuops/platform/roles/dcgm_exporter"
EXPORTER_FILE = ROLE / "files/gpuops_gpu_exporter.py"
# dcgm-exporter's default counters, vendored unmodified from a pinned tag (see the README there).
DCGM_EXPORTER_DIR = Path(__file__).with_name("upstream") / "dcgm-exporter"
DEFAULT_COUNTERS_CSV = DCGM_EXPORTER_DIR / "default-counters.csv"
DCGM_EXPORTER_TAG = "4.5.3-4.8.2"
DCGM_EXPORTER_COMMIT = "691c92762eb551313c825f6efe4ceeee20982801"
# Git blob ids upstream (`git rev-parse <tag>:<path>`) of the vendored files.
DCGM_EXPORTER_BLOBS = {
    "default-counters.csv": "2eed7a651db300797554cb91591908f410902f21",  # etc/default-counters.csv
    "LICENSE": "d645695673349e3947e8e5ae42332d0ac3164cd7",
}

# The labels dcgm-exporter puts on every GPU series (hpc_job only where a job is mapped).
DCGM_LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"]


def load_exporter():
    """Import files/gpuops_gpu_exporter.py (a script, not a package) as a module."""
    spec = importlib.util.spec_from_file_location("gpuops_gpu_exporter", EXPORTER_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def read_counters_csv(text: str) -> list[tuple[str, str, str]]:
    """Rows of a dcgm-exporter counters CSV as dcgm-exporter reads them: (field, type, help)."""
    rows = []
    for row in csv.reader(line for line in text.splitlines() if line.strip() and not line.startswith("#")):
        assert len(row) == 3, f"a counters row has exactly 3 fields (dcgm-exporter refuses others): {row}"
        rows.append(tuple(part.strip() for part in row))
    return rows
