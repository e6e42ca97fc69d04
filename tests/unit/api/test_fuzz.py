"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis, in process).

With the fake upstreams up, no input may produce a 5xx and every answer must
match the published schema. With every upstream down, the only 5xx allowed
is the deliberate 503 naming an upstream.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import make_env

_TMP = tempfile.TemporaryDirectory(prefix="gpuops-api-fuzz-")
UP = make_env(Path(_TMP.name) / "up")
DOWN = make_env(Path(_TMP.name) / "down")
for fake in (DOWN.slurm, DOWN.cloud, DOWN.prometheus, DOWN.ssh):
    fake.down = True

up_schema = schemathesis.openapi.from_asgi("/openapi.json", UP.app())
down_schema = schemathesis.openapi.from_asgi("/openapi.json", DOWN.app())

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
UPSTREAMS = {"prometheus", "slurmrestd", "cloud", "ssh"}


def only_deliberate_503s(response: Any, case: Any) -> None:
    """5xx only as 503 {"detail", "upstream"} naming a real upstream (or /readyz's not-ready body)."""
    if response.status_code >= 500:
        assert response.status_code == 503, f"{case.method} {case.formatted_path} answered {response.status_code}"
        body = response.json()
        if case.formatted_path == "/readyz":
            assert body["ready"] is False and not any(check["ok"] for check in body["upstreams"].values()), body
        else:
            assert body.get("upstream") in UPSTREAMS and body.get("detail"), body




@up_schema.parametrize()
@FUZZ
def test_no_input_makes_the_api_fail(case: Any) -> None:
    case.call_and_validate(headers=UP.auth, checks=[not_a_server_error, status_code_conformance,
                                                    content_type_conformance, response_schema_conformance])


@down_schema.parametrize()
@FUZZ
def test_with_upstreams_down_only_deliberate_503s(case: Any) -> None:
    response = case.call(headers=DOWN.auth)
    only_deliberate_503s(response, case)
    if response.status_code != 503:
        case.validate_response(response, checks=[status_code_conformance, response_schema_conformance],
                               headers=DOWN.auth)
