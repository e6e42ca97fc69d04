"""teardown.yml: no pod, no tunnel, no stack container left; with keep_stack the stack stays."""

from __future__ import annotations

import pytest

from tests.integration.helpers import recap

pytestmark = pytest.mark.integration


def test_bad_keep_stack_is_refused_before_anything_is_removed(converged):
    result = converged.playbook("./teardown.yml", "-e", "keep_stack=maybe", check=False)
    assert result.returncode != 0
    assert "keep_stack must be true or false, not 'maybe'. Nothing was removed." in result.stdout
    assert len([p for p in converged.pod_list() if p["status"] == "RUNNING"]) == 2
    assert converged.tunnel_pids() and converged.stack_containers()


def test_teardown_with_keep_stack_keeps_only_the_stack(converged):
    result = converged.teardown("-e", "keep_stack=true")
    assert result.returncode == 0, result.stdout[-4000:]
    assert converged.api().get("/pods").json() == {"pods": []}
    assert converged.tunnel_pids() == []
    assert converged.stack_containers(), "the stack should have been kept"
    assert "The local stack was kept" in result.stdout


def test_teardown_leaves_no_pod_tunnel_or_stack_container_and_a_second_changes_nothing(converged):
    result = converged.teardown()
    assert result.returncode == 0, result.stdout[-4000:]
    assert converged.api().get("/pods").json() == {"pods": []}
    assert converged.containers() == []
    assert converged.tunnel_pids() == []
    assert converged.stack_containers() == []
    again = converged.teardown()
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout[-3000:]
