"""gpuops' deployment tag rides in what RunPod's v2 API allows: no invented field.

The tag (GPUOPS_DEPLOYMENT, set by terraform/runpod, read by the collection's
module_utils/_runpod_api.py) is an entry of CreatePodRequest.env, a string map,
and every Pod the API returns carries its env: checked against the vendored
OpenAPI and against the local cloud's own request model, which must stay as
strict as RunPod.
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "localcloud" / "reference" / "runpod-rest-v2-openapi.json"


def test_env_is_a_string_map_of_create_pod_request_and_of_every_pod():
    schemas = json.loads(OPENAPI.read_text(encoding="utf-8"))["components"]["schemas"]
    env = schemas["BaseContainerConfig"]["properties"]["env"]
    assert env["type"] == "object" and env["additionalProperties"] == {"type": "string"}
    assert {"$ref": "#/components/schemas/ContainerConfig"} in schemas["CreatePodRequest"]["allOf"]
    assert schemas["CreatePodRequest"]["unevaluatedProperties"] is False
    assert "env" in schemas["Pod"]["allOf"][1]["required"]


def test_terraform_tags_through_env_only():
    main_tf = (REPO / "terraform" / "runpod" / "main.tf").read_text(encoding="utf-8")
    assert "GPUOPS_DEPLOYMENT = var.deployment_id" in main_tf
