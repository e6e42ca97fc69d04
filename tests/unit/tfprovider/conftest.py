"""Fixtures for the stand-in provider's unit tests: a fake RunPod API and a provider aimed at it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
for path in (str(REPO_ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fake_runpod import FakeRunPod, start_fake, stop_fake  # noqa: E402

from localcloud.tfprovider.client import Settings  # noqa: E402
from localcloud.tfprovider.provider import RunPodProvider  # noqa: E402
from localcloud.tfprovider.resource_pod import PodResource  # noqa: E402


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    """A fake RunPod REST v2 (checked against the vendored OpenAPI) on a free local port."""
    server = start_fake()
    yield server
    stop_fake(server)


@pytest.fixture
def provider(fake: FakeRunPod) -> RunPodProvider:
    """The stand-in provider, configured for the fake."""
    prov = RunPodProvider()
    prov.settings = Settings(base_url=fake.host_url, api_key=fake.api_key)
    return prov


@pytest.fixture
def resource(provider: RunPodProvider) -> PodResource:
    """A runpod_pod resource instance of that provider."""
    return PodResource(provider)
