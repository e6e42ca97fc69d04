"""GPUs: Prometheus' recorded replies turned into rows and series; range and step checks."""

from __future__ import annotations

import pytest
from gpuops_api.durations import DurationError, parse_duration, window
from gpuops_api.gpus import history_series

from .conftest import Env, TestClient
from .fakes import INDEX, FakePrometheus, load, recorded_job


def _recorded(env: Env, metric: str, pod: str, gpu: str) -> float:
    """The value Prometheus answered the API's instant query with (the recording served)."""
    [reply] = env.prometheus.answered
    for series in reply["body"]["data"]["result"]:
        labels = series["metric"]
        if (labels["__name__"], labels["pod"], labels["gpu"]) == (metric, pod, gpu):
            return float(series["value"][1])
    raise KeyError(metric)


def test_one_row_per_gpu_with_memory_total(client: TestClient, env: Env) -> None:
    gpus = client.get("/api/v1/gpus").json()["gpus"]
    assert [(g["pod"], g["gpu"]) for g in gpus] == [(pod, gpu) for pod in sorted(INDEX["pods"]) for gpu in "01"]
    for row in gpus:
        used = _recorded(env, "DCGM_FI_DEV_FB_USED", row["pod"], row["gpu"])
        free = _recorded(env, "DCGM_FI_DEV_FB_FREE", row["pod"], row["gpu"])
        assert row["mem_used_mib"] == used and row["mem_total_mib"] == used + free
        assert row["util_percent"] == _recorded(env, "DCGM_FI_DEV_GPU_UTIL", row["pod"], row["gpu"])
        assert row["temp_c"] == _recorded(env, "DCGM_FI_DEV_GPU_TEMP", row["pod"], row["gpu"])
        assert row["power_w"] == _recorded(env, "DCGM_FI_DEV_POWER_USAGE", row["pod"], row["gpu"])
        assert row["model"] == "NVIDIA GeForce RTX 4090" and row["uuid"].startswith("GPU-")
    busy = [g for g in gpus if g["hpc_job"]]
    running = recorded_job("running")
    host = {pod_id: name for name, pod_id in INDEX["pods"].items()}[running["batch_host"]]
    gpu = running["gres_detail"][0].split("IDX:")[1].rstrip(")")  # e.g. "gpu:1(IDX:0)"
    assert [(g["pod"], g["gpu"], g["hpc_job"]) for g in busy] == [(host, gpu, str(running["job_id"]))]


def test_history_has_one_series_per_gpu_and_metric(client: TestClient, env: Env) -> None:
    body = client.get("/api/v1/gpus/history", params={"range": "2m"}).json()
    assert (body["end"] - body["start"], body["step"]) == (120, 5)
    keys = [(s["pod"], s["gpu"], s["metric"]) for s in body["series"]]
    assert len(keys) == len(set(keys)) == 4 * 4  # the job's labelled series joined with the GPU's own
    for series in body["series"]:
        stamps = [point[0] for point in series["points"]]
        assert stamps == sorted(stamps) and len(stamps) == len(set(stamps))
    sent = env.prometheus.ranges[0]
    assert (float(sent["end"]) - float(sent["start"]), sent["step"]) == (120, "5")


def test_the_api_sends_the_queries_of_the_recording(client: TestClient, env: Env) -> None:
    """Each route of the recording (tests/fixtures/api/record_prometheus.py) sends what it sent to the live
    Prometheus: the same path, query text and parameter names. A changed query fails here until it is recorded."""
    recording = load(FakePrometheus.RECORDING)
    routes = [x for x in recording["exchanges"] if x["route"]]
    assert {x["route"].split("?")[0] for x in routes} >= {"GET /api/v1/gpus", "GET /api/v1/gpus/history",
                                                           f"GET /api/v1/jobs/{INDEX['jobs']['running']}/gpus"}
    for exchange in routes:
        method, route = exchange["route"].split(" ", 1)
        sent = len(env.prometheus.requests)
        assert client.request(method, route).status_code == 200, route
        [request] = env.prometheus.requests[sent:]
        params = dict(request.url.params)
        recorded = exchange["request"]
        assert (request.url.path, params.get("query"), sorted(params)) == (
            recorded["path"], recorded["params"].get("query"), sorted(recorded["params"])), route


@pytest.mark.parametrize(("range_", "step", "expected"), [
    ("15m", None, (900, 8)), ("1m", None, (60, 5)), ("7d", None, (604800, 5040)), ("1h30m", "1m", (5400, 60)),
    ("1d", "10s", (86400, 10)),
])
def test_window_defaults_and_explicit_steps(range_: str, step: str | None, expected: tuple[int, int]) -> None:
    assert window(range_, step) == expected


@pytest.mark.parametrize(("params", "message"), [
    ({"range": "30s"}, "out of bounds: use 1m to 7d"),
    ({"range": "8d"}, "out of bounds"),
    ({"range": "15"}, "is not a duration"),
    ({"range": "m"}, "is not a duration"),
    ({"range": "-5m"}, "is not a duration"),
    ({"range": "1.5h"}, "is not a duration"),
    ({"range": ""}, "is not a duration"),
    ({"range": "15m", "step": "1s"}, "too small: use 5s or more"),
    ({"range": "15m", "step": "1h"}, "longer than the range"),
    ({"range": "7d", "step": "5s"}, "more than 11000 points"),
    ({"range": "15m", "step": "soon"}, "step 'soon' is not a duration"),
    ({"range": "9" * 40}, "query parameter 'range'"),
])
def test_bad_ranges_are_422_with_a_message(client: TestClient, env: Env, params: dict, message: str) -> None:
    for path in ("/api/v1/gpus/history", f"/api/v1/jobs/{INDEX['jobs']['running']}/gpus"):
        response = client.get(path, params=params)
        assert response.status_code == 422
        assert message in response.json()["detail"]
    assert not env.prometheus.requests


def test_parse_duration_units() -> None:
    assert parse_duration("1w2d3h4m5s", "range") == 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5
    assert parse_duration("1500ms", "step") == 1.5
    with pytest.raises(DurationError):
        parse_duration("5s1m", "range")  # units out of order


def test_non_finite_values_are_dropped() -> None:
    result = [{"metric": {"__name__": "DCGM_FI_DEV_GPU_TEMP", "pod": "p", "gpu": "0"},
               "values": [[1, "NaN"], [2, "+Inf"], [3, "41"]]},
              {"metric": {"__name__": "DCGM_FI_DEV_GPU_TEMP", "pod": "p", "gpu": "0", "hpc_job": "9"},
               "values": [[4, "42"]]},
              {"metric": {"__name__": "DCGM_FI_DEV_SM_CLOCK", "pod": "p", "gpu": "0"}, "values": [[1, "1"]]}]
    expected = [{"pod": "p", "gpu": "0", "metric": "temp_c", "points": [[3.0, 41.0], [4.0, 42.0]]}]
    assert history_series(result) == expected
