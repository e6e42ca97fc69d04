"""Every slurmrestd OpenAPI version the API reads, replayed from recordings of the real slurmrestd.

v0.0.38: Slurm 22.05 (tests/fixtures/api/record_api_fixtures.py); v0.0.40, v0.0.41, v0.0.42: Slurm 24.11
(tests/fixtures/api/record_slurmrestd.py). Each test runs against each version's recording, with the version
found as the app finds it: from that slurmrestd's own /openapi/v3 document.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gpuops_api.errors import UpstreamError
from gpuops_api.secretfile import SecretFile
from gpuops_api.slurmdata import SLURM_API_VERSIONS, JobSpec, dialect, parse_job, parse_node
from gpuops_api.upstreams.http import HttpUpstream
from gpuops_api.upstreams.slurm import SlurmClient, SlurmRefused, choose_version, offered_versions

from .conftest import Env, TestClient, make_env, read_pods_file, replace_pods_file
from .fakes import SLURM_V38, load, recorded_job, slurm_fixture, slurm_index

NEW = ("v0.0.40", "v0.0.41", "v0.0.42")
JOB_DIR = "/var/lib/gpuops/jobs/api"


@pytest.fixture(params=SLURM_API_VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def venv(tmp_path: Path, version: str) -> Env:
    return make_env(tmp_path, slurm_version=version)


@pytest.fixture
def vclient(venv: Env) -> Iterator[TestClient]:
    with TestClient(venv.app(), raise_server_exceptions=False) as test_client:
        test_client.headers.update(venv.auth)
        yield test_client


def jobs(version: str) -> dict[str, int]:
    return slurm_index(version)["jobs"]


def client_for(env: Env, transport: httpx.AsyncBaseTransport | None = None) -> SlurmClient:
    """A SlurmClient as services.py builds it, on the fake slurmrestd (or `transport`)."""
    http = HttpUpstream("slurmrestd", "http://127.0.0.1:19401", 5, transport or env.slurm.transport())
    return SlurmClient(http, None, "root", SecretFile(env.settings.slurm_jwt_key_file, "Slurm JWT key", strip=False),
                       clock=env.clock)


def call(client: SlurmClient, method: str, *args: Any) -> Any:
    """Run one SlurmClient call to the end, closing its HTTP client."""
    async def run() -> Any:
        try:
            return await getattr(client, method)(*args)
        finally:
            await client.http.aclose()
    return asyncio.run(run())


def test_every_version_has_a_complete_recording() -> None:
    names = {p.name for p in (Path(__file__).resolve().parents[3] / "tests/fixtures/api/slurm").glob("*.json")
             if not p.name.startswith("_")}
    assert len(names) == 20
    for version in NEW:
        recorded = {p.name for p in (Path(__file__).resolve().parents[3] / "tests/fixtures/api/slurm" / version)
                    .glob("*.json")}
        assert recorded == names | {"index.json"}, version
        # Recorded through this version's URLs, by the data parser of that version.
        assert load(slurm_fixture("ping.json", version))["body"]["meta"]["plugin"]["data_parser"] == \
            f"data_parser/{version}"


def test_the_version_is_found_from_the_recorded_openapi_document(venv: Env, vclient: TestClient,
                                                                 version: str) -> None:
    assert vclient.get("/api/v1/jobs").status_code == 200
    assert venv.slurm.openapi_reads == 1
    # With v0.0.42 (Slurm 24.11) the list also comes from the accounting (slurmdbd) in the same version, and
    # slurmctld's jobs from their states (/jobs/state), then each unfinished or new job's record (/job/<id>).
    paths = {r.url.path for r in venv.slurm.requests}
    if version == "v0.0.42":
        assert paths == {"/openapi/v3", f"/slurm/{version}/jobs/state", f"/slurmdb/{version}/jobs"} | {
            f"/slurm/{version}/job/{job_id}" for job_id in venv.slurm.jobs}
    else:
        assert paths == {"/openapi/v3", f"/slurm/{version}/jobs"}


def test_slurm_24_11_offers_three_versions_and_the_newest_is_chosen() -> None:
    document = load(slurm_fixture("openapi_v3.json", "v0.0.42"))["body"]
    assert offered_versions(document) == ["v0.0.40", "v0.0.41", "v0.0.42"]
    assert choose_version(offered_versions(document)) == "v0.0.42"
    assert choose_version(["v0.0.38", "v0.0.39", "v0.0.40"]) == "v0.0.40"  # Slurm 23.11 offers v0.0.39, v0.0.40
    assert choose_version(["v0.0.37", "v0.0.38"]) == "v0.0.38"


def test_a_slurmrestd_offering_only_v0_0_39_is_a_503_naming_both(tmp_path: Path) -> None:
    env = make_env(tmp_path / "env", slurm_version="v0.0.40")
    recorded = load(slurm_fixture("openapi_v3.json", "v0.0.40"))
    recorded["body"]["paths"] = {p.replace("/v0.0.40/", "/v0.0.39/"): v for p, v in recorded["body"]["paths"].items()}
    fixtures = Path(__file__).resolve().parents[3] / "tests/fixtures/api"
    target = fixtures / "slurm" / f"_test_openapi_{tmp_path.name}.json"
    target.write_text(json.dumps(recorded))
    try:
        env.slurm.openapi_fixture = target.relative_to(fixtures).as_posix()
        with TestClient(env.app(), raise_server_exceptions=False) as client:
            response = client.get("/api/v1/jobs", headers=env.auth)
    finally:
        target.unlink()
    assert response.status_code == 503 and response.json()["upstream"] == "slurmrestd"
    assert response.json()["detail"] == (
        "slurmrestd offers the OpenAPI versions v0.0.39, and the gpuops API reads v0.0.38, v0.0.40, v0.0.41, "
        "v0.0.42: run a Slurm whose slurmrestd offers one of those")
    assert [r.url.path for r in env.slurm.requests] == ["/openapi/v3"]


# -- jobs ----------------------------------------------------------------------------------------------


def test_completed_gpu_job(vclient: TestClient, venv: Env, version: str) -> None:
    venv.slurm.use_final_jobs()
    job_id = jobs(version)["completed"]
    job = vclient.get(f"/api/v1/jobs/{job_id}").json()
    raw = recorded_job("completed", version)
    times = {key: raw[key] if version == SLURM_V38 else raw[key]["number"]
             for key in ("submit_time", "start_time", "end_time")}
    assert job == {
        "id": job_id, "name": "api-gpu-ok", "user": "root", "state": "COMPLETED", "reason": None,
        "exit_code": 0, "nodes": raw["batch_host"], "node_count": 1, "gpus": 1, "partition": "gpu",
        **times, "time_limit_minutes": 5, "stdout_path": f"{JOB_DIR}/slurm-{job_id}.out",
        "batch_host": raw["batch_host"],
        # Recorded on a cluster without gpuops' price prolog: no price, no cost.
        "usd_per_gpu_hour": None, "cost_usd": None,
        # Never requeued (restart_cnt 0), no node failed under it.
        "requeues": 0, "failed_node": None,
    }
    assert 0 < job["submit_time"] <= job["start_time"] <= job["end_time"]
    # The working directory is read (where its output may be read), but is in neither the JSON nor the schema.
    assert raw["current_working_directory"] == JOB_DIR and parse_job(raw, version).workdir == JOB_DIR
    assert "workdir" not in vclient.get("/openapi.json").json()["components"]["schemas"]["Job"]["properties"]


def test_failed_job_reports_its_exit_code(vclient: TestClient, version: str) -> None:
    job = vclient.get(f"/api/v1/jobs/{jobs(version)['failed']}").json()
    raw = recorded_job("failed", version)["exit_code"]
    if version == SLURM_V38:
        assert raw == 3 << 8  # the raw wait status
    else:
        assert (raw["status"], raw["return_code"]["number"]) == (["ERROR"], 3)
    assert (job["state"], job["exit_code"], job["reason"]) == ("FAILED", 3, "NonZeroExitCode")
    assert job["end_time"] is not None and job["gpus"] == 0


def test_cancelled_job_reports_the_signal(vclient: TestClient, version: str) -> None:
    job = vclient.get(f"/api/v1/jobs/{jobs(version)['cancelled']}").json()
    assert (job["state"], job["exit_code"], job["reason"]) == ("CANCELLED", 128 + 15, None)


def test_pending_job_has_a_reason_and_no_times_yet(vclient: TestClient, version: str) -> None:
    job = vclient.get(f"/api/v1/jobs/{jobs(version)['pending']}").json()
    assert job["state"] == "PENDING" and job["reason"] == "Resources"
    assert job["exit_code"] is None and job["start_time"] is None and job["end_time"] is None
    assert job["submit_time"] is not None and job["time_limit_minutes"] == 5
    assert job["batch_host"] is None and job["nodes"] == ""
    assert (job["node_count"], job["gpus"]) == (2, 4)  # 2 GPUs per node on 2 nodes


def test_running_job_has_no_end_or_exit_code_yet(vclient: TestClient, version: str) -> None:
    job = vclient.get(f"/api/v1/jobs/{jobs(version)['running']}").json()
    raw = recorded_job("running", version)
    assert job["state"] == "RUNNING" and job["reason"] is None
    assert job["end_time"] is None and job["exit_code"] is None  # Slurm sends the expected end and a 0 already
    assert job["start_time"] == (raw["start_time"] if version == SLURM_V38 else raw["start_time"]["number"])
    assert job["gpus"] == 1 and job["node_count"] == 1


def test_unknown_job_is_404_and_none(vclient: TestClient, venv: Env) -> None:
    response = vclient.get("/api/v1/jobs/999999")
    assert response.status_code == 404 and "999999" in response.json()["detail"]
    assert call(client_for(venv), "job", 999999) is None


def test_the_list_reads_every_recorded_job(vclient: TestClient, venv: Env, version: str) -> None:
    venv.slurm.use_final_jobs()
    body = vclient.get("/api/v1/jobs").json()
    states = {job["id"]: job["state"] for job in body["jobs"]}
    ids = jobs(version)
    assert (states[ids["completed"]], states[ids["failed"]], states[ids["cancelled"]]) == \
        ("COMPLETED", "FAILED", "CANCELLED")
    assert states[ids["pending"]] == "CANCELLED"  # cancelled while it waited
    # The submission refused for too many GPUs still left a job that never ran (BadConstraints).
    refused = [job for job in body["jobs"] if job["reason"] == "BadConstraints"]
    assert [(j["state"], j["batch_host"], j["nodes"], j["exit_code"]) for j in refused] == [("FAILED", None, "", 129)]
    assert vclient.get("/api/v1/jobs", params={"state": "cancelled"}).json()["total"] == 2


# -- submit and cancel -----------------------------------------------------------------------------------


def test_submit_sends_the_versions_body_and_reads_the_id(vclient: TestClient, venv: Env, version: str) -> None:
    with_global_networking(venv)  # 2 nodes: the pods must reach each other
    response = vclient.post("/api/v1/jobs", json={"script": "#!/bin/bash\necho hi\n", "name": "train.v1_a-b",
                                                  "nodes": 2, "gpus_per_node": 1, "time_limit_minutes": 30,
                                                  "partition": "gpu"})
    assert response.status_code == 201
    assert response.json() == {"id": jobs(version)["running"]}  # what the recorded submission answered
    common = {"name": "train.v1_a-b", "nodes": "2", "partition": "gpu", "current_working_directory": JOB_DIR,
              "standard_output": f"{JOB_DIR}/slurm-%j.out"}
    if version == SLURM_V38:
        expected = {"script": "#!/bin/bash\necho hi\n", "job": {
            **common, "time_limit": 30, "gres": "gpu:1", "environment": {"PATH": "/usr/local/bin:/usr/bin:/bin"}}}
    else:
        expected = {"job": {**common, "script": "#!/bin/bash\necho hi\n", "tres_per_node": "gres/gpu:1",
                            "time_limit": {"set": True, "infinite": False, "number": 30},
                            "environment": ["PATH=/usr/local/bin:/usr/bin:/bin"]}}
    assert venv.slurm.submitted == [expected]


def test_the_recorded_job_is_what_the_body_asked_for(version: str) -> None:
    # The recording submitted dialect(version).submit_body(...): slurmctld read each field as meant.
    raw = recorded_job("running", version)
    assert raw["name"] == "api-gpu-ok" and raw["partition"] == "gpu"
    assert raw["current_working_directory"] == JOB_DIR
    if version == SLURM_V38:
        assert (raw["tres_per_node"], raw["time_limit"], raw["standard_output"]) == \
            ("gres:gpu:1", 5, f"{JOB_DIR}/slurm-%j.out")
    else:
        assert raw["tres_per_node"] == "gres/gpu:1"
        assert raw["time_limit"] == {"set": True, "infinite": False, "number": 5}
        assert raw["standard_output"] == f"{JOB_DIR}/slurm-{raw['job_id']}.out"  # 24.11 sends it expanded


def with_global_networking(env: Env, enabled: bool | None = True) -> None:
    """The deployment's pods file with every pod's global_networking.enabled set (None: the key left out)."""
    data = read_pods_file(env.settings)
    for pod in data["pods"]:
        if enabled is None:
            pod.pop("global_networking", None)
        else:
            pod["global_networking"]["enabled"] = enabled
    replace_pods_file(env.settings, data)


@pytest.mark.parametrize("enabled", [False, None], ids=["off", "unrecorded"])
def test_a_multi_node_job_is_refused_when_the_pods_cannot_reach_each_other(
        vclient: TestClient, venv: Env, version: str, enabled: bool | None) -> None:
    with_global_networking(venv, enabled)
    response = vclient.post("/api/v1/jobs", json={"script": "#!/bin/sh\n", "name": "x", "nodes": 2})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "nodes=2" in detail and "-e provision_global_networking=true" in detail and "1 node" in detail
    assert venv.slurm.submitted == []


def test_submit_defaults_ask_for_no_gpu_and_no_partition(vclient: TestClient, venv: Env, version: str) -> None:
    assert vclient.post("/api/v1/jobs", json={"script": "#!/bin/sh\n", "name": "x"}).status_code == 201
    job = venv.slurm.submitted[0]["job"]
    assert job["nodes"] == "1"
    assert job["time_limit"] == (60 if version == SLURM_V38 else {"set": True, "infinite": False, "number": 60})
    assert not {"gres", "tres_per_node", "partition"} & set(job)


@pytest.mark.parametrize(("body", "reason"), [
    ({"partition": "nosuch"}, "Invalid partition name specified"),
    # More GPUs per node than the pods file says the pods have is refused before Slurm (test_api_job_gpus.py):
    # here the recorded deployment's pods file is gone, so Slurm judges.
    ({"gpus_per_node": 8}, "Requested node configuration is not available"),
])
def test_slurm_refusals_are_400_with_slurms_reason(vclient: TestClient, venv: Env, version: str, body: dict,
                                                   reason: str) -> None:
    venv.settings.pods_file.unlink()
    response = vclient.post("/api/v1/jobs", json={"script": "#!/bin/sh\n", "name": "x", **body})
    assert response.status_code == 400
    # 24.11 adds a description of the call that failed.
    suffix = "" if version == SLURM_V38 else " (Batch job submission failed)"
    assert response.json() == {"detail": f"Slurm refused the job: {reason}{suffix}"}


@pytest.mark.parametrize(("fixture", "reason"), [
    ("job_submit_bad_partition.json", "Invalid partition name specified"),
    ("job_submit_too_many_gpus.json", "Requested node configuration is not available"),
])
def test_the_client_raises_slurm_refused(venv: Env, version: str, fixture: str, reason: str) -> None:
    client = client_for(venv)
    spec = JobSpec(script="#!/bin/sh\n", name="x", working_directory=JOB_DIR, standard_output="/dev/null",
                   partition="nosuch" if "partition" in fixture else None,
                   gpus_per_node=8 if "gpus" in fixture else 0)
    with pytest.raises(SlurmRefused) as refused:
        call(client, "submit", spec)
    assert str(refused.value).startswith(reason)


def test_cancel_a_running_job(vclient: TestClient, venv: Env, version: str) -> None:
    running = jobs(version)["running"]
    response = vclient.delete(f"/api/v1/jobs/{running}")
    assert (response.status_code, response.json()) == (202, {"id": running, "cancelled": True})
    assert venv.slurm.cancelled == [running]
    assert [r.method for r in venv.slurm.requests if r.url.path == f"/slurm/{version}/job/{running}"] == \
        ["GET", "DELETE"]


@pytest.mark.parametrize("kind", ["failed", "cancelled"])
def test_cancel_a_finished_job_is_409(vclient: TestClient, venv: Env, version: str, kind: str) -> None:
    response = vclient.delete(f"/api/v1/jobs/{jobs(version)[kind]}")
    assert response.status_code == 409 and "already finished" in response.json()["detail"]
    assert venv.slurm.cancelled == []


def test_cancel_an_unknown_job_is_404(vclient: TestClient, venv: Env) -> None:
    assert vclient.delete("/api/v1/jobs/999999").status_code == 404
    assert venv.slurm.cancelled == []


def replaying(fixture: str, version: str) -> httpx.MockTransport:
    """slurmrestd answering its recorded reply `fixture` to a DELETE (and its OpenAPI document)."""
    def handle(request: httpx.Request) -> httpx.Response:
        name = "openapi_v3.json" if request.url.path == "/openapi/v3" else fixture
        recorded = load(slurm_fixture(name, version))
        return httpx.Response(recorded["status"], json=recorded["body"])
    return httpx.MockTransport(handle)


@pytest.mark.parametrize(("fixture", "v38", "v40", "v41", "v42"), [
    ("job_cancel.json", True, True, True, True),
    # A finished job: success (v0.0.38 to v0.0.41), ESLURM_ALREADY_DONE in `status` (v0.0.42): nothing to do.
    ("job_cancel_finished.json", True, True, True, True),
    # An unknown job: ESLURM_INVALID_JOB_ID (v0.0.38: HTTP 500 errors[]; v0.0.42: HTTP 200 status[]);
    # v0.0.40 and v0.0.41 answer a plain success (the route looks the job up first, so it is a 404 there too).
    ("job_cancel_unknown.json", False, True, True, False),
])
def test_the_client_reads_each_cancel_reply(venv: Env, version: str, fixture: str, v38: bool, v40: bool,
                                            v41: bool, v42: bool) -> None:
    expected = dict(zip(SLURM_API_VERSIONS, (v38, v40, v41, v42), strict=True))[version]
    assert call(client_for(venv, replaying(fixture, version)), "cancel", 7) is expected


def test_a_cancel_failing_otherwise_is_an_upstream_error_with_slurms_message(venv: Env) -> None:
    recorded = load(slurm_fixture("job_cancel_finished.json", "v0.0.42"))
    recorded["body"]["status"][0]["error"] = {"code": 2002, "message": "Access/permission denied",
                                              "string": "Access/permission denied"}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/openapi/v3":
            return httpx.Response(200, json=load(slurm_fixture("openapi_v3.json", "v0.0.42"))["body"])
        return httpx.Response(200, json=recorded["body"])

    with pytest.raises(UpstreamError) as failed:
        call(client_for(venv, httpx.MockTransport(handle)), "cancel", 3)
    assert failed.value.detail == "slurmrestd failed to cancel job 3 (HTTP 200): Access/permission denied"


# -- nodes, ping, metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "states", "gpus_allocated"), [
    ("nodes_idle.json", ["idle", "idle"], 0),
    ("nodes_busy.json", ["idle", "mixed"], 1),
    ("nodes_drain.json", ["drained", "draining"], 0),
])
def test_nodes(version: str, fixture: str, states: list[str], gpus_allocated: int) -> None:
    nodes = [parse_node(raw, version) for raw in load(slurm_fixture(fixture, version))["body"]["nodes"]]
    assert sorted(node.state for node in nodes) == states
    assert [node.gpus_total for node in nodes] == [2, 2]
    assert sum(node.gpus_allocated for node in nodes) == gpus_allocated


def test_metrics_of_a_busy_cluster(vclient: TestClient, version: str) -> None:
    text = vclient.get("/metrics").text
    for line in ('gpuops_slurm_up 1.0', 'gpuops_slurm_nodes{state="idle"} 1.0', 'gpuops_slurm_nodes{state="mixed"} 1.0',
                 'gpuops_slurm_jobs{state="running"} 1.0', 'gpuops_slurm_jobs{state="pending"} 1.0',
                 'gpuops_slurm_pending_jobs{reason="Resources"} 1.0', 'gpuops_slurm_gpus_allocated 1.0',
                 'gpuops_slurm_gpus_total 4.0'):
        assert line in text.splitlines(), line


def test_ping(venv: Env, version: str) -> None:
    host = load(slurm_fixture("ping.json", version))["body"]["pings"][0]["hostname"]
    assert call(client_for(venv), "ping") == f"slurmctld {host} primary UP"
    assert [r.url.path for r in venv.slurm.requests] == ["/openapi/v3", f"/slurm/{version}/ping"]


@pytest.mark.parametrize("version", NEW)
def test_a_controller_that_does_not_answer_the_ping(tmp_path: Path, version: str) -> None:
    recorded = load(slurm_fixture("ping.json", version))["body"]
    recorded["pings"][0].update(pinged="DOWN", **({"responding": False} if version == "v0.0.42" else {}))
    assert dialect(version).pings(recorded)[0].up is False
    assert dialect(version).pings(load(slurm_fixture("ping.json", version))["body"])[0].up is True
    assert dialect(SLURM_V38).pings(load(slurm_fixture("ping.json"))["body"])[0].up is True


# -- the mapping itself ---------------------------------------------------------------------------------------


def number(value: int, *, set_: bool = True, infinite: bool = False) -> dict[str, Any]:
    return {"set": set_, "infinite": infinite, "number": value}


@pytest.mark.parametrize("version", NEW)
@pytest.mark.parametrize(("flags", "state", "finished"), [
    (["RUNNING"], "RUNNING", False), (["PENDING"], "PENDING", False), (["COMPLETED"], "COMPLETED", True),
    (["CANCELLED", "COMPLETING"], "COMPLETING", False),  # as squeue's CG: slurm_protocol_defs' job_state_string
    (["PENDING", "REQUEUED"], "REQUEUED", False), (["TIMEOUT"], "TIMEOUT", True),
    (["OUT_OF_MEMORY"], "OUT_OF_MEMORY", True), ([], "UNKNOWN", False),
    (["LAUNCH_FAILED", "FAILED"], "FAILED", True), (["RUNNING", "POWER_UP_NODE"], "RUNNING", False),
])
def test_job_state_flags(version: str, flags: list[str], state: str, finished: bool) -> None:
    job = parse_job({**recorded_job("completed", version), "job_state": flags}, version)
    assert (job.state, job.finished) == (state, finished)


@pytest.mark.parametrize("version", NEW)
def test_numbers_unset_or_infinite_are_none(version: str) -> None:
    raw = recorded_job("completed", version)
    assert parse_job(raw, version).time_limit_minutes == 5
    # What "number" holds does not count unless set and finite; 0 is no time either.
    job = parse_job({**raw, "time_limit": number(5, infinite=True), "end_time": number(1796433000, set_=False),
                     "submit_time": number(0), "node_count": number(3, set_=False)}, version)
    assert (job.time_limit_minutes, job.end_time, job.submit_time, job.node_count) == (None, None, None, 0)
    killed = {"status": ["SIGNALED", "CORE_DUMPED"], "return_code": number(0, set_=False),
              "signal": {"id": number(9), "name": "KILL"}}
    assert parse_job({**raw, "exit_code": killed}, version).exit_code == 137


@pytest.mark.parametrize("version", NEW)
def test_a_version_0_0_38_record_is_not_read_as_a_newer_one(version: str) -> None:
    with pytest.raises(UpstreamError, match=rf"slurmrestd sent a {version} job record the API cannot read "
                                            r"\(job_state: "):
        parse_job(recorded_job("completed"), version)
    with pytest.raises(UpstreamError, match=rf"a {version} node record .*\(state: "):
        parse_node(load(slurm_fixture("nodes_idle.json"))["body"]["nodes"][0], version)
    with pytest.raises(UpstreamError, match=r"\(node_count: Value error, a number must be "):
        parse_job({**recorded_job("completed", version), "node_count": 1}, version)


def test_an_unknown_version_has_no_dialect() -> None:
    with pytest.raises(ValueError, match="slurmrestd OpenAPI 'v0.0.39': the API reads v0.0.38, v0.0.40"):
        dialect("v0.0.39")
