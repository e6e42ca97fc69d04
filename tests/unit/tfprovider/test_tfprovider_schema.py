"""The stand-in's runpod_pod schema is the one terraform/runpod/reference/runpod_pod-2.x.schema.json records.

That file was written from RunPod's docs for provider 2.x (and the v2 API
where the docs say nothing); these tests hold the stand-in to it attribute
by attribute: names, types, required/optional/computed, sensitive, replacement.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tf.utils import Diagnostics

from localcloud.tfprovider.pod_schema import POD_ATTRIBUTES, POD_SCHEMA
from localcloud.tfprovider.provider import RunPodProvider

REFERENCE = Path(__file__).resolve().parents[3] / "terraform/runpod/reference/runpod_pod-2.x.schema.json"
DOC = json.loads(REFERENCE.read_text())
ATTRS = DOC["attributes"]
STANDIN = {a.name: a for a in POD_ATTRIBUTES}


def test_reference_names_its_sources_and_date() -> None:
    urls = {s["url"] for s in DOC["sources"]}
    assert "https://docs.runpod.io/integrations/terraform/overview" in urls
    assert "https://docs.runpod.io/integrations/terraform/migration" in urls
    assert DOC["written"]
    for name, spec in ATTRS.items():
        assert spec["source"] in ("docs", "derived", "openapi"), name


def test_same_attribute_names() -> None:
    assert set(STANDIN) == set(ATTRS)


@pytest.mark.parametrize("name", sorted(ATTRS))
def test_attribute_matches_reference(name: str) -> None:
    spec, attr = ATTRS[name], STANDIN[name]
    assert json.loads(attr.type.tf_type()) == spec["type"], "type"
    assert bool(attr.required) == spec.get("required", False), "required"
    assert bool(attr.optional) == spec.get("optional", False), "optional"
    assert bool(attr.computed) == spec.get("computed", False), "computed"
    assert bool(attr.sensitive) == spec.get("sensitive", False), "sensitive"
    assert bool(attr.requires_replace) == spec.get("requires_replace", False), "requires_replace"


def test_no_removed_1x_attribute_is_back() -> None:
    assert not set(DOC["removed_in_2"]["names"]) & set(STANDIN)


def test_provider_config_matches_reference() -> None:
    schema = RunPodProvider().get_provider_schema(Diagnostics())
    got = {a.name: a for a in schema.attributes}
    assert set(got) == set(DOC["provider_config"])
    for name, spec in DOC["provider_config"].items():
        assert bool(got[name].sensitive) == spec.get("sensitive", False)
        assert got[name].optional and not got[name].required
    POD_SCHEMA.to_pb()  # serialises for Terraform


def test_provider_registers_runpod_pod() -> None:
    provider = RunPodProvider()
    # The source address as configurations write it; Terraform adds its own default registry host.
    assert provider.full_name() == "runpod/runpod"
    assert provider.full_name() == DOC["provider"]
    assert [provider.get_model_prefix() + r.get_name() for r in provider.get_resources()] == ["runpod_pod"]


def test_configure_reads_key_and_url_like_2x(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "from-env")
    monkeypatch.setenv("RUNPOD_API_BASE_URL", "http://127.0.0.1:9/v2/")
    provider = RunPodProvider()
    provider.configure_provider(Diagnostics(), {"api_key": None, "base_url": None})
    assert provider.settings.api_key == "from-env"
    assert provider.settings.base_url == "http://127.0.0.1:9"
    assert provider.client().url("/pods") == "http://127.0.0.1:9/v2/pods"
    provider.configure_provider(Diagnostics(), {"api_key": "from-config", "base_url": "http://h:1"})
    assert provider.client().settings.api_key == "from-config"
    assert provider.settings.base_url == "http://h:1"
    monkeypatch.delenv("RUNPOD_API_BASE_URL")
    provider.configure_provider(Diagnostics(), {})
    assert provider.settings.base_url == "https://api.runpod.io"
    assert "from-config" not in repr(provider.settings)


def test_key_file_fallback_and_its_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    key = tmp_path / "api_key"
    key.write_text("k-from-file\n")
    monkeypatch.setenv("RUNPOD_API_KEY_FILE", str(key))
    provider = RunPodProvider()
    provider.configure_provider(Diagnostics(), {})
    assert provider.settings.api_key == "k-from-file"
    monkeypatch.setenv("RUNPOD_API_KEY_FILE", str(tmp_path / "missing"))
    diags = Diagnostics()
    provider.configure_provider(diags, {})
    assert diags.has_errors()
