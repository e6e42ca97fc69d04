"""gpuops speaks RunPod's REST API v2 only, and against RunPod's own v2 contract (issue 10).

RunPod retired its REST v1 (rest.runpod.io/v1: /v1/pods, costPerHr,
portMappings...). No product file may name that host or a v1 pod path; the
tests may (they check that v1 is refused). The vendored OpenAPI document that
the local cloud and the Terraform provider's tests are checked against is
RunPod's, unmodified: its digest is pinned here.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTION = "collections/ansible_collections/gpuops/platform"

#: What the product is: the collection's plugins and roles, the API, the Terraform module, the local cloud, the
#: playbooks, the inventories and the top-level playbooks.
PRODUCT = (f"{COLLECTION}/plugins", f"{COLLECTION}/roles", "app/api", "terraform", "localcloud", "playbooks",
           "inventories", "site.yml", "teardown.yml", "submit_job.yml")

#: RunPod's REST v1 host, and a v1 pod path (not gpuops' own API, whose routes are /api/v1/pods...).
V1 = re.compile(r"rest\.runpod\.io|(?<!/api)/v1/pods\b")

#: localcloud/reference/runpod-rest-v2-openapi.json: RunPod's REST API v2 document ("Runpod REST API" 2.0.0,
#: OpenAPI 3.1.0), as copied from /work/shared/reference/runpod-rest-v2-openapi.json on 2026-12-04 (commit
#: 5a9d339) and checked against that copy on 2026-12-05. That directory is not in CI, so the digest is pinned here.
OPENAPI = REPO / "localcloud" / "reference" / "runpod-rest-v2-openapi.json"
OPENAPI_SHA256 = "b8bce61c5a2290d28a7cb2ed53173637166817249986cb18b101b2fd651fd313"


def _product_files() -> list[Path]:
    """The product's files git knows (tracked, or new and not ignored), outside any tests directory."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *PRODUCT],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    files = [REPO / name for name in listed if name and "tests" not in Path(name).parts]
    return [path for path in files if path.is_file() and not path.is_symlink()]


def test_the_product_tree_is_walked() -> None:
    names = {path.relative_to(REPO).as_posix() for path in _product_files()}
    # Each part of the product is read (terraform/runpod is a link into the provision role: read there).
    for expected in (f"{COLLECTION}/plugins/module_utils/_runpod_api.py", f"{COLLECTION}/plugins/inventory/runpod.py",
                     f"{COLLECTION}/roles/provision/tasks/ready.yml",
                     f"{COLLECTION}/roles/provision/files/terraform/runpod/main.tf",
                     "localcloud/api.py", "localcloud/tfprovider/client.py", "playbooks/provision.yml", "site.yml"):
        assert expected in names, expected
    assert any(name.startswith("app/api/") for name in names)
    assert not [name for name in names if "/tests/" in f"/{name}"]


def test_no_runpod_v1_in_the_product() -> None:
    found = []
    for path in _product_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        for number, line in enumerate(text.splitlines(), 1):
            if V1.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:160]}")
    assert not found, "RunPod REST v1 named in the product:\n" + "\n".join(found)


def test_the_v1_pattern_finds_v1_and_not_gpuops_own_api() -> None:
    assert V1.search('BASE = "https://rest.runpod.io/v1"')
    assert V1.search('client.get(f"{base}/v1/pods/{pod_id}")')
    assert not V1.search('@router.get("/api/v1/pods")')
    assert not V1.search('base_url: "https://api.runpod.io/v2/pods"')


def test_vendored_openapi_is_runpods_v2_document_unmodified() -> None:
    data = OPENAPI.read_bytes()
    assert hashlib.sha256(data).hexdigest() == OPENAPI_SHA256, (
        f"{OPENAPI.relative_to(REPO)} changed: it must stay RunPod's own v2 document, byte for byte")
    document = json.loads(data)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == "2.0.0"
    # Every path is under /v2 (the pods, the catalog gpuops checks before it creates anything).
    assert all(path.startswith("/v2/") for path in document["paths"])
    assert {"/v2/pods", "/v2/pods/{id}", "/v2/catalog/gpus", "/v2/catalog/datacenters"} <= set(document["paths"])
