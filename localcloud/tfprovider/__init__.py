"""Stand-in for the official ``runpod/runpod`` Terraform provider.

This package exists only because the official provider cannot be downloaded
where gpuops is built and tested (no Terraform registry). It is installed
solely for the local cloud (``localcloud``), through ``dev_overrides`` in a
generated Terraform CLI config (see :mod:`localcloud.tfprovider.install`);
production runs use the real, pinned ``runpod/runpod`` provider.

It implements one resource, ``runpod_pod``, with the official provider's
attribute names and types, on RunPod's REST API v1 (``RUNPOD_BASE_URL``,
default ``https://rest.runpod.io/v1``, authenticated by ``RUNPOD_API_KEY``).
"""

from __future__ import annotations

PROVIDER_ADDRESS = "registry.terraform.io/runpod/runpod"
"""The full address Terraform knows the provider by."""

DEFAULT_BASE_URL = "https://rest.runpod.io/v1"
"""RunPod's REST API v1, used when ``RUNPOD_BASE_URL`` is not set."""

EXECUTABLE_NAME = "terraform-provider-runpod"
"""File name Terraform looks for in a ``dev_overrides`` directory."""

__all__ = ["DEFAULT_BASE_URL", "EXECUTABLE_NAME", "PROVIDER_ADDRESS"]
