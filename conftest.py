"""Repository-wide pytest hooks.

In CI a skip fails the run: a skip would otherwise turn a missing prerequisite
(no Docker engine, an image setup did not build, a tool not installed) into a
green run. Skips are forbidden where GPUOPS_NO_SKIP=1, which `make test` and
.ci/run set, and wherever the CI variable is true (as CI services set it).
Run pytest by hand without either to allow skips while developing.

Forbidden, every kind of skip fails: a skip mark or a call of pytest.skip in a test
or a fixture (the test is reported failed, or as an error where it was
skipped in setup), and a module skipped at collection (pytest.skip(...,
allow_module_level=True), a module-level importorskip). The run ends with a
section naming each skipped test and its reason, and exits non-zero.
Expected failures (xfail) are not skips.
"""

from __future__ import annotations

import os

import pytest

_CI_TRUE = ("1", "true", "yes")


def skips_forbidden() -> bool:
    """True where a skip must fail the run: GPUOPS_NO_SKIP=1, or CI=true."""
    return os.environ.get("GPUOPS_NO_SKIP") == "1" or os.environ.get("CI", "").strip().lower() in _CI_TRUE


def _why() -> str:
    return "GPUOPS_NO_SKIP=1" if os.environ.get("GPUOPS_NO_SKIP") == "1" else f"CI={os.environ.get('CI', '')}"


def _reason(report) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


class SkipGuard:
    """Turns skips into failures and lists them at the end (registered only where skips are forbidden)."""

    def __init__(self) -> None:
        self.skips: list[tuple[str, str]] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.skipped and not hasattr(report, "wasxfail"):
            reason = _reason(report)
            self.skips.append((item.nodeid, reason))
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid} was skipped ({reason}), and this run forbids skips ({_why()}, set by "
                               "make test and CI): install what it needs (scripts/setup.sh) instead")
        return report

    def pytest_collectreport(self, report):
        # A module (or class) skipped while collected: its tests never run and
        # no test report comes for them, so the session's end fails the run.
        if report.skipped:
            self.skips.append((report.nodeid, _reason(report)))

    def pytest_sessionfinish(self, session, exitstatus):
        if self.skips and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if not self.skips:
            return
        terminalreporter.section(f"skips are failures in this run ({_why()})", sep="=", red=True, bold=True)
        for nodeid, reason in self.skips:
            terminalreporter.line(f"SKIPPED {nodeid}: {reason}")
        terminalreporter.line(f"{len(self.skips)} skipped: install what they need (scripts/setup.sh), or run "
                              "pytest without GPUOPS_NO_SKIP=1 and CI to allow skips while developing")


def pytest_configure(config):
    if skips_forbidden():
        config.pluginmanager.register(SkipGuard(), "gpuops-skip-guard")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        # Side by side (make test-integration runs pytest-xdist), each worker's local clouds put their pods on a
        # Docker network of their own: on a shared one, two clouds would pin the same address, and one's
        # `stop --purge` would remove the network from under the other's pods.
        os.environ.setdefault("GPUOPS_LOCALCLOUD_NETWORK", f"gpuops-localcloud-{worker}")


# -- running the integration tests side by side (pytest-xdist) -------------------------------------------------
# Each scope runs whole on one worker, in file order: a test file, whose module-scoped deployment its tests share,
# or a package whose files share one deployment (tests/integration/site: one site.yml run for all its files).
_SHARED_PACKAGES = ("tests/integration/site/",)
# The longest scopes first (minutes in a serial run on 2 cores, late 2026), so that no long one starts last and
# keeps a worker busy after the others are done. Scopes not named here follow in collection order.
_LONGEST_FIRST = (
    "tests/integration/site/",                              # ~22
    "tests/integration/test_stack.py",                      # ~8
    "tests/integration/test_service_plane_ssh.py",          # ~8
    "tests/integration/test_provision.py",                  # ~7
    "tests/integration/test_submit_job.py",                 # ~6
    "tests/integration/test_slurm_controller_stack.py",     # ~6
    "tests/integration/test_exporter.py",                   # ~5
    "tests/integration/test_job_output.py",                 # ~5
    "tests/integration/test_pod_sshd.py",                   # ~4
    "tests/integration/test_awx_runner.py",                 # ~4
    "tests/integration/test_multinode.py",                  # ~4
    "tests/integration/test_localcloud_docker.py",
    "tests/integration/test_tunnel.py",
    "tests/integration/test_alerting.py",
    "tests/integration/test_orphans.py",
)


def _scope(nodeid: str) -> str:
    """The scope a test runs in under --dist loadscope: its shared package, else its file."""
    return next((package for package in _SHARED_PACKAGES if nodeid.startswith(package)), nodeid.split("::", 1)[0])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """The longest scopes first (a stable sort: the tests of a scope keep their order, the site's files theirs)."""
    rank = {scope: index for index, scope in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_scope(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadscope with this file's scopes, given out in collection order (--no-loadscope-reorder)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return ScopeScheduling(config, log)
