"""Stand-in for the official ``runpod/runpod`` Terraform provider.

This package exists only because the official provider cannot be downloaded
where gpuops is built and tested (no Terraform registry). It is installed
solely for the local cloud (``localcloud``), through ``dev_overrides`` in a
generated Terraform CLI config (see :mod:`localcloud.tfprovider.install`);
production runs use the real, pinned ``runpod/runpod`` provider.

It implements one resource, ``runpod_pod``, with the 2.x provider's attribute
names, types and replacement rules (see
``terraform/runpod/reference/runpod_pod-2.x.schema.json``), on RunPod's REST
API v2 (``RUNPOD_API_BASE_URL``, default ``https://api.runpod.io``, paths
under ``/v2``, authenticated by ``RUNPOD_API_KEY``).
"""

from __future__ import annotations

PROVIDER_ADDRESS = "runpod/runpod"
"""The provider's source address, as configurations write it: Terraform itself
adds its default registry host (the repository names no registry host)."""

DEFAULT_BASE_URL = "https://api.runpod.io"
"""RunPod's API host, used when neither ``base_url`` nor ``RUNPOD_API_BASE_URL`` is set (paths under ``/v2``)."""

EXECUTABLE_NAME = "terraform-provider-runpod"
"""File name Terraform looks for in a ``dev_overrides`` directory."""

__all__ = ["DEFAULT_BASE_URL", "EXECUTABLE_NAME", "PROVIDER_ADDRESS"]
