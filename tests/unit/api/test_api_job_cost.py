"""A job's cost: its GPU-hours times the price per GPU-hour that gpuops' PrologSlurmctld recorded in its
AdminComment when slurmctld allocated it (images/slurm-controller/gpuops-job-price), which slurmdbd keeps."""

from __future__ import annotations

import pytest
from gpuops_api.slurmdata import job_cost, recorded_price


@pytest.mark.parametrize(("comment", "price"), [
    ("gpuops_usd_per_gpu_hour=0.690000", 0.69),
    ("gpuops_usd_per_gpu_hour=2", 2.0),
    ("note from an admin; gpuops_usd_per_gpu_hour=1.5", 1.5),
    ("", None),
    (None, None),
    ("gpuops_usd_per_gpu_hour=", None),
    ("gpuops_usd_per_gpu_hour=-1", None),
    ("gpuops_usd_per_gpu_hour=1e9", None),
    ("xgpuops_usd_per_gpu_hour=1.0", None),
])
def test_the_recorded_price_is_read_and_nothing_else_passes_for_one(comment, price):
    assert recorded_price(comment) == price


def test_cost_is_gpu_hours_times_the_price():
    # 2 GPUs for 90 minutes at 0.69 USD per GPU-hour.
    assert job_cost(0.69, 2, start=1_000, end=1_000 + 5_400) == 2.07
    assert job_cost(0.69, 0, start=1_000, end=4_600) == 0.0


def test_a_running_jobs_cost_runs_up_to_now_and_a_pending_one_has_none():
    assert job_cost(1.2, 1, start=1_000, end=None, now=1_000 + 1_800) == 0.6
    assert job_cost(1.2, 1, start=None, end=None, now=5_000) is None


def test_no_price_no_cost():
    assert job_cost(None, 4, start=1_000, end=2_000) is None
