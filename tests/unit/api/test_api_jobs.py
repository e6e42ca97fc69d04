"""Jobs: listing, output, GPU series on the v0.0.38 recording (states, submit, cancel in every version:
test_api_slurm_versions.py)."""

from __future__ import annotations

import json
from datetime import datetime

import jwt
import pytest
from gpuops_api.slurmdata import exit_code, gpu_count, parse_job
from gpuops_api.upstreams.slurm import TOKEN_LIFESPAN_SECONDS

from .conftest import Env, TestClient, read_pods_file, replace_pods_file
from .fakes import INDEX, recorded_job

JOBS = INDEX["jobs"]
#: Where the recorded GPU job and the failing job ran (pod ids are the Slurm node names).
HOST = recorded_job("completed")["batch_host"]
FAILED_HOST = recorded_job("failed")["batch_host"]
POD_NAMES = {pod_id: name for name, pod_id in INDEX["pods"].items()}
#: The pods' jobs root and the API's jobs' directory in it (the settings' job_output_dir, as recorded).
JOBS_ROOT = "/var/lib/gpuops/jobs"
API_DIR = f"{JOBS_ROOT}/api"
#: A directory of submit_job.yml's (<root>/<UTC time>-<random>, made by the slurm role's job directory Prolog).
SUBMIT_DIR = f"{JOBS_ROOT}/20261205T101500-424242"


@pytest.mark.parametrize("job_id", ["0", "-1", "abc", "4294967295", "99999999999999999999999"])
def test_invalid_job_ids_are_422(client: TestClient, env: Env, job_id: str) -> None:
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 422
    assert not env.slurm.requests


def test_list_is_newest_first_with_total(client: TestClient, env: Env) -> None:
    body = client.get("/api/v1/jobs").json()
    ids = [job["id"] for job in body["jobs"]]
    assert ids == sorted(env.slurm.jobs, reverse=True)
    assert body["total"] == len(env.slurm.jobs)


def test_list_filters_by_state_case_insensitively(client: TestClient, env: Env) -> None:
    expected = sorted((i for i, j in env.slurm.jobs.items() if j["job_state"] == "CANCELLED"), reverse=True)
    assert expected
    for state in ("CANCELLED", "cancelled", "Cancelled"):
        body = client.get("/api/v1/jobs", params={"state": state}).json()
        assert [job["id"] for job in body["jobs"]] == expected
        assert body["total"] == len(expected)
    running = client.get("/api/v1/jobs", params={"state": "RUNNING"}).json()
    assert [job["id"] for job in running["jobs"]] == [JOBS["running"]]


def test_list_filters_by_user(client: TestClient) -> None:
    assert client.get("/api/v1/jobs", params={"user": "root"}).json()["total"] > 0
    assert client.get("/api/v1/jobs", params={"user": "alice"}).json() == {"jobs": [], "total": 0, "next": None}


def test_list_paginates(client: TestClient, env: Env) -> None:
    ids = sorted(env.slurm.jobs, reverse=True)
    page = client.get("/api/v1/jobs", params={"limit": 2, "offset": 1}).json()
    assert [job["id"] for job in page["jobs"]] == ids[1:3]
    assert page["total"] == len(ids) and page["next"] == ids[2]
    assert client.get("/api/v1/jobs", params={"offset": 1000}).json() == {"jobs": [], "total": len(ids), "next": None}
    # The cursor (`next`) goes on from there, to the last page (next: null).
    rest = client.get("/api/v1/jobs", params={"limit": 2, "cursor": page["next"]}).json()
    assert [job["id"] for job in rest["jobs"]] == ids[3:5] and rest["total"] == len(ids)
    assert rest["next"] == (ids[4] if len(ids) > 5 else None)


@pytest.mark.parametrize(("params", "message"), [
    ({"state": "SLEEPING"}, "query parameter 'state': 'SLEEPING' is not a Slurm job state"),
    ({"limit": 0}, "query parameter 'limit'"),
    ({"limit": 1001}, "query parameter 'limit'"),
    ({"offset": -1}, "query parameter 'offset'"),
    ({"cursor": 0}, "query parameter 'cursor'"),
    ({"since": -1}, "query parameter 'since'"),
    ({"since": 100, "until": 100}, "'until' must be later than 'since'"),
    ({"user": "a b"}, "query parameter 'user'"),
])
def test_bad_list_parameters_are_422_with_a_message(client: TestClient, params: dict, message: str) -> None:
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_slurm_tokens_are_short_lived_hs256_for_the_configured_user(client: TestClient, env: Env) -> None:
    client.get("/api/v1/jobs")
    client.get("/api/v1/jobs")
    version_read, first, second = env.slurm.tokens  # the first call also read slurmrestd's OpenAPI version
    assert version_read["sun"] == "root"
    for claims in (first, second):
        assert set(claims) == {"exp", "iat", "sun"}
        assert claims["sun"] == "root"
        assert claims["iat"] == int(env.clock())
        assert 0 < claims["exp"] - claims["iat"] <= TOKEN_LIFESPAN_SECONDS
    token = env.slurm.requests[0].headers["X-SLURM-USER-TOKEN"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize(("body", "field"), [
    ({"script": "echo no interpreter line"}, "body field 'script'"),
    ({"script": ""}, "body field 'script'"),
    ({"script": "#!/bin/sh\n\x00"}, "NUL"),
    ({"script": "#!/bin/sh\n\ud800"}, "body field 'script'"),
    ({"script": "#!" + "x" * (1024 * 1024)}, "body field 'script'"),
    ({"name": ""}, "body field 'name'"),
    ({"name": "a/b"}, "body field 'name'"),
    ({"name": "x" * 65}, "body field 'name'"),
    ({"nodes": 0}, "body field 'nodes'"),
    ({"nodes": 65}, "body field 'nodes'"),
    ({"gpus_per_node": -1}, "body field 'gpus_per_node'"),
    ({"gpus_per_node": 65}, "body field 'gpus_per_node'"),
    ({"gpus": 1}, "body: gpus is not a field of a job request"),
    ({"time_limit_minutes": 0}, "body field 'time_limit_minutes'"),
    ({"time_limit_minutes": 10081}, "body field 'time_limit_minutes'"),
    ({"partition": "a b"}, "body field 'partition'"),
    ({"nodes": "two"}, "body field 'nodes'"),
])
def test_bad_submissions_are_422_and_never_reach_slurm(client: TestClient, env: Env, body: dict, field: str) -> None:
    # Sent as ASCII JSON, so that a lone surrogate travels as the escape "\\ud800".
    content = json.dumps({"script": "#!/bin/sh\n", "name": "ok", **body}).encode()
    response = client.post("/api/v1/jobs", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert not env.slurm.submitted


def test_a_body_that_is_not_json_is_422(client: TestClient) -> None:
    response = client.post("/api/v1/jobs", content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"detail": "body: the body is not valid JSON"}


def test_output_is_read_over_ssh_from_the_batch_host(client: TestClient, env: Env) -> None:
    env.slurm.use_final_jobs()
    pod = env.cloud.pods[HOST]
    path = f"/var/lib/gpuops/jobs/api/slurm-{JOBS['completed']}.out"
    # the host key is pinned under runpod-<podId>-<startedAt as UTC epoch seconds>
    started = int(datetime.fromisoformat(pod["startedAt"].replace("Z", "+00:00")).timestamp())
    alias = f"runpod-{HOST}-{started}"
    env.ssh.files[(alias, path)] = INDEX["completed_output"]
    body = client.get(f"/api/v1/jobs/{JOBS['completed']}/output", params={"lines": 3}).json()
    assert body == {"id": JOBS["completed"], "text": "line 39\nline 40\ndone\n", "lines": 3, "truncated": True,
                    "source": "pod"}
    assert env.ssh.reads == [(pod["ssh"]["direct"]["host"], pod["ssh"]["direct"]["port"], alias, path, 3)]
    # As the job's user, never root, and confined to the job's own directory (the API's: the recorded cwd).
    assert env.ssh.users == [recorded_job("completed")["user_name"]]
    assert recorded_job("completed")["current_working_directory"] == API_DIR and env.ssh.withins == [API_DIR]
    whole = client.get(f"/api/v1/jobs/{JOBS['completed']}/output").json()
    assert whole["text"] == INDEX["completed_output"] and whole["truncated"] is False


def completed_job_at(env: Env, **fields: str) -> str:
    """The recorded completed job with some of its (v0.0.38) fields changed; the alias its pod is read under."""
    env.slurm.use_final_jobs()
    env.slurm.jobs[JOBS["completed"]] = {**env.slurm.jobs[JOBS["completed"]], **fields}
    return next(p for p in read_pods_file(env.settings)["pods"] if p["id"] == HOST)["ssh"]["host_key_alias"]


def test_output_outside_the_pods_job_directories_is_never_read(client: TestClient, env: Env) -> None:
    """A job named ../../../../etc/shadow, with output slurm-%x.out, must not make the API read /etc/shadow."""
    completed_job_at(env, name="../../../../../etc/shadow", standard_output=f"{API_DIR}/%x")
    response = client.get(f"/api/v1/jobs/{JOBS['completed']}/output")
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == (
        f"job {JOBS['completed']}'s output file {API_DIR}/../../../../../etc/shadow is not inside the job's "
        f"directory {API_DIR}: gpuops does not read it")
    assert not env.ssh.reads


@pytest.mark.parametrize("stdout", [
    f"{API_DIR}/../../../../etc/shadow",
    f"{API_DIR}/../20261205T090000-1/slurm-7.out",  # a sibling job's file through ..
    f"{API_DIR}/logs/../slurm-%j.out",  # inside once normalised, but a link at logs/ would lead elsewhere
    "../../etc/shadow",  # relative: from the job's directory, as Slurm opens it
], ids=["escape", "sibling", "inside-after-normpath", "relative-escape"])
def test_output_with_a_dotdot_component_is_never_read(client: TestClient, env: Env, stdout: str) -> None:
    completed_job_at(env, standard_output=stdout)
    response = client.get(f"/api/v1/jobs/{JOBS['completed']}/output")
    assert response.status_code == 404, response.text
    assert f"is not inside the job's directory {API_DIR}: gpuops does not read it" in response.json()["detail"]
    assert not env.ssh.reads


@pytest.mark.parametrize(("cwd", "stdout"), [
    (API_DIR, f"{SUBMIT_DIR}/slurm-%j.out"),  # an API job pointing at a submit_job.yml job's file
    (SUBMIT_DIR, f"{API_DIR}/slurm-1.out"),  # a submit_job.yml job pointing at an API job's file
    (SUBMIT_DIR, f"{JOBS_ROOT}/20261205T090000-1/slurm-7.out"),  # ... at another submit_job.yml job's
    (SUBMIT_DIR, f"{SUBMIT_DIR}-other/slurm-%j.out"),  # a sibling whose name starts with this one's
    (API_DIR, "/etc/shadow"),
], ids=["api-to-submit", "submit-to-api", "submit-to-submit", "prefix-sibling", "absolute"])
def test_output_in_another_jobs_directory_is_never_read(client: TestClient, env: Env, cwd: str, stdout: str) -> None:
    completed_job_at(env, current_working_directory=cwd, standard_output=stdout)
    response = client.get(f"/api/v1/jobs/{JOBS['completed']}/output")
    assert response.status_code == 404, response.text
    assert f"is not inside the job's directory {cwd}: gpuops does not read it" in response.json()["detail"]
    assert not env.ssh.reads


@pytest.mark.parametrize("cwd", [
    "/tmp",  # sbatch run from anywhere else
    "/etc",
    JOBS_ROOT,  # the root itself: every job's directory is below it
    f"{SUBMIT_DIR}/nested",  # not directly under the root
    f"{JOBS_ROOT}/../../../etc",  # .. in the working directory itself
    f"{JOBS_ROOT}/..",
    f"{JOBS_ROOT}/.hidden",  # not a name the job directory Prolog makes
    f"{JOBS_ROOT}-old/x",  # a directory beside the root whose name starts with the root's
    "jobs/x",  # relative
    "",  # slurmrestd sent none
], ids=["tmp", "etc", "root", "nested", "dotdot", "parent", "hidden", "root-prefix", "relative", "none"])
def test_output_of_a_job_outside_the_job_directories_is_never_read(client: TestClient, env: Env, cwd: str) -> None:
    stdout = f"{cwd or '/tmp'}/slurm-%j.out"
    completed_job_at(env, current_working_directory=cwd, standard_output=stdout)
    response = client.get(f"/api/v1/jobs/{JOBS['completed']}/output")
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == (
        f"job {JOBS['completed']}'s directory {cwd or '(none)'} is not a job directory gpuops reads output in "
        f"({API_DIR}, or a directory of the job's own directly under {JOBS_ROOT}): gpuops does not read its "
        f"output file {stdout.replace('%j', str(JOBS['completed']))}")
    assert not env.ssh.reads


@pytest.mark.parametrize(("cwd", "stdout", "path"), [
    (API_DIR, f"{API_DIR}/slurm-%j.out", f"{API_DIR}/slurm-{{id}}.out"),  # what POST /api/v1/jobs submits
    (f"{API_DIR}/", f"{API_DIR}//slurm-%j.out", f"{API_DIR}/slurm-{{id}}.out"),  # the same, spelt loosely
    (SUBMIT_DIR, f"{SUBMIT_DIR}/slurm-%j.out", f"{SUBMIT_DIR}/slurm-{{id}}.out"),  # what submit_job.yml submits
    (SUBMIT_DIR, f"{SUBMIT_DIR}/logs/%x.out", f"{SUBMIT_DIR}/logs/api-gpu-ok.out"),  # below the job's directory
    (SUBMIT_DIR, "slurm-%j.out", f"{SUBMIT_DIR}/slurm-{{id}}.out"),  # relative: from the job's directory
], ids=["api", "api-loose", "submit-job", "below", "relative"])
def test_output_in_the_jobs_own_directory_is_read_there(client: TestClient, env: Env, cwd: str, stdout: str,
                                                        path: str) -> None:
    alias = completed_job_at(env, current_working_directory=cwd, standard_output=stdout)
    path = path.format(id=JOBS["completed"])
    env.ssh.files[(alias, path)] = "done\n"
    response = client.get(f"/api/v1/jobs/{JOBS['completed']}/output")
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "done\n"
    assert [read[3] for read in env.ssh.reads] == [path]
    # The pod refuses a link on the way, the job's directory included (tests/unit/api/test_api_ssh.py).
    assert env.ssh.withins == [cwd.rstrip("/")]


def test_output_of_a_job_without_its_file_is_404(client: TestClient) -> None:
    response = client.get(f"/api/v1/jobs/{JOBS['failed']}/output")
    assert response.status_code == 404
    assert "does not exist" in response.json()["detail"]


def test_output_of_a_pending_job_is_409(client: TestClient, env: Env) -> None:
    assert client.get(f"/api/v1/jobs/{JOBS['pending']}/output").status_code == 409
    assert not env.ssh.reads


def test_output_of_a_job_slurm_refused_to_place_is_404(client: TestClient, env: Env) -> None:
    # A submission Slurm refuses still leaves a FAILED job (BadConstraints) that never ran anywhere.
    env.slurm.use_final_jobs()
    refused = next(i for i, j in env.slurm.jobs.items() if j["state_reason"] == "BadConstraints")
    response = client.get(f"/api/v1/jobs/{refused}/output")
    assert response.status_code == 404
    assert "ended without running on a node (FAILED, BadConstraints)" in response.json()["detail"]
    assert not env.ssh.reads


def test_output_when_the_pods_file_has_no_ssh_endpoint_is_503(client: TestClient, env: Env) -> None:
    data = read_pods_file(env.settings)
    for pod in data["pods"]:
        if pod["id"] == FAILED_HOST:
            pod["ssh"] = {"host": None, "port": None, "host_key_alias": None}
    replace_pods_file(env.settings, data)
    response = client.get(f"/api/v1/jobs/{JOBS['failed']}/output")
    assert response.status_code == 503 and response.json()["upstream"] == "inventory"
    assert "no SSH endpoint in the pods file" in response.json()["detail"]
    assert "playbooks/stack.yml" in response.json()["detail"]
    assert not env.ssh.reads


def test_output_is_read_at_the_inventorys_endpoint_without_asking_the_cloud(client: TestClient, env: Env) -> None:
    """The cloud, even one that no longer gives the pod an ssh.direct, is not asked where the pod's sshd is."""
    env.slurm.use_final_jobs()
    live = env.cloud.pods[HOST]
    env.cloud.pods[HOST] = {**live, "ssh": {**live["ssh"], "direct": None}}
    pod = next(p for p in read_pods_file(env.settings)["pods"] if p["id"] == HOST)
    path = f"/var/lib/gpuops/jobs/api/slurm-{JOBS['completed']}.out"
    env.ssh.files[(pod["ssh"]["host_key_alias"], path)] = "done\n"
    assert client.get(f"/api/v1/jobs/{JOBS['completed']}/output").json()["text"] == "done\n"
    assert env.ssh.reads == [(pod["ssh"]["host"], pod["ssh"]["port"], pod["ssh"]["host_key_alias"], path, 200)]
    assert not env.cloud.requests


def test_output_finds_the_pod_by_its_slurm_node_name(client: TestClient, env: Env) -> None:
    """Slurm's batch host is the pod's node name (slurm_node_name, else its inventory name)."""
    env.slurm.use_final_jobs()
    data = read_pods_file(env.settings)
    pod = next(p for p in data["pods"] if p["id"] == HOST)
    pod["node"] = "gpu-node-7"
    replace_pods_file(env.settings, data)
    job = env.slurm.jobs[JOBS["completed"]]
    env.slurm.jobs[JOBS["completed"]] = {**job, "batch_host": "gpu-node-7"}
    path = f"/var/lib/gpuops/jobs/api/slurm-{JOBS['completed']}.out"
    env.ssh.files[(pod["ssh"]["host_key_alias"], path)] = "done\n"
    assert client.get(f"/api/v1/jobs/{JOBS['completed']}/output").status_code == 200
    assert env.ssh.reads[0][:3] == (pod["ssh"]["host"], pod["ssh"]["port"], pod["ssh"]["host_key_alias"])


def test_output_from_a_host_that_is_not_a_pod_is_503(client: TestClient, env: Env) -> None:
    env.slurm.jobs[JOBS["failed"]] = {**env.slurm.jobs[JOBS["failed"]], "batch_host": "somewhere-else"}
    response = client.get(f"/api/v1/jobs/{JOBS['failed']}/output")
    assert response.status_code == 503 and response.json()["upstream"] == "inventory"
    assert "somewhere-else" in response.json()["detail"]


@pytest.mark.parametrize("lines", [0, 10001, "x"])
def test_output_lines_are_bounded(client: TestClient, lines: object) -> None:
    assert client.get(f"/api/v1/jobs/{JOBS['failed']}/output", params={"lines": lines}).status_code == 422


def test_job_gpus_are_the_series_labelled_with_the_job(client: TestClient, env: Env) -> None:
    body = client.get(f"/api/v1/jobs/{JOBS['running']}/gpus", params={"range": "30m"}).json()
    assert body["series"]
    assert {s["pod"] for s in body["series"]} == {POD_NAMES[recorded_job("running")["batch_host"]]}
    assert len({s["gpu"] for s in body["series"]}) == 1
    assert {s["metric"] for s in body["series"]} == {"util_percent", "mem_used_mib", "temp_c", "power_w"}
    assert f'hpc_job="{JOBS["running"]}"' in env.prometheus.ranges[0]["query"]
    other = client.get(f"/api/v1/jobs/{JOBS['failed']}/gpus").json()
    assert other["series"] == []


# -- the mapping itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(0, 0), (768, 3), (256 * 255, 255), (9, 137), (15, 143), (None, None)])
def test_exit_code_decodes_the_wait_status(status: int | None, code: int | None) -> None:
    assert exit_code(status) == code


@pytest.mark.parametrize(("spec", "count"), [
    ("gres:gpu:2", 2), ("gres/gpu=3", 3), ("gpu:a100:1(IDX:0)", 1), ("cpu=1,node=1,billing=1", None),
    ("gpu:2(S:0),gpu:rtx:1", 3), ("gres:gpu", 1), ("", None), ("gres:gpuish:2", None),
])
def test_gpu_count_reads_tres_and_gres_strings(spec: str, count: int | None) -> None:
    assert gpu_count(spec) == count


def test_output_path_patterns_are_expanded() -> None:
    raw = {**recorded_job("completed"), "standard_output": "/o/%x-%j-%u-%N-%5j-%%.out"}
    job = parse_job(raw)
    assert job.stdout_path == f"/o/api-gpu-ok-{JOBS['completed']}-root-{HOST}-{JOBS['completed']:05d}-%.out"
    assert parse_job({**raw, "standard_output": "/plain/path"}).stdout_path == "/plain/path"
    assert parse_job({**raw, "standard_output": ""}).stdout_path is None


def test_a_job_record_of_the_wrong_shape_is_an_upstream_error(client: TestClient, env: Env) -> None:
    env.slurm.jobs[JOBS["failed"]] = {**env.slurm.jobs[JOBS["failed"]], "node_count": "many"}
    response = client.get("/api/v1/jobs")
    assert response.status_code == 503 and response.json()["upstream"] == "slurmrestd"
