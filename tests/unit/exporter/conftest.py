"""Fixtures of the GPU exporter tests."""

from __future__ import annotations

import pytest

from gpu_exporter_helpers import DEFAULT_COUNTERS_CSV, load_exporter, read_counters_csv


@pytest.fixture(scope="session")
def exporter():
    return load_exporter()


@pytest.fixture(scope="session")
def default_counters() -> list[tuple[str, str, str]]:
    return read_counters_csv(DEFAULT_COUNTERS_CSV.read_text())
