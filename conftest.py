"""Repository-wide pytest hooks.

`make test` (and so CI) sets GPUOPS_NO_SKIP=1: there, a skipped test is a
failure, since a skip would otherwise turn a missing prerequisite (no Docker
engine, an image setup did not build) into a green run. Run pytest by hand
without it to allow skips while developing.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("GPUOPS_NO_SKIP") == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} was skipped ({reason}), and this run forbids skips (GPUOPS_NO_SKIP=1, "
                           "set by make test): install what it needs (scripts/setup.sh) instead")
