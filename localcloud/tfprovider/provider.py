"""The stand-in ``runpod/runpod`` provider: configuration and resource registry."""

from __future__ import annotations

from typing import Type

from tf import types
from tf.iface import Config, DataSource, Provider, Resource
from tf.schema import Attribute, Schema
from tf.utils import Diagnostics

from localcloud.tfprovider import DEFAULT_BASE_URL, PROVIDER_ADDRESS
from localcloud.tfprovider.client import ApiError, RunPodClient, Settings
from localcloud.tfprovider.mapping import is_set
from localcloud.tfprovider.resource_pod import PodResource


class RunPodProvider(Provider):
    """Stand-in for the ``runpod/runpod`` provider of Terraform's public registry (local cloud only).

    Configured like the 2.x provider: ``api_key`` in the provider block, else
    ``RUNPOD_API_KEY``; the API's host from ``base_url``, else
    ``RUNPOD_API_BASE_URL``; ``graphql_url`` is accepted and ignored (nothing
    here uses GraphQL).
    """

    def __init__(self) -> None:
        # Real settings come in configure_provider, which reports errors.
        self.settings = Settings(base_url=DEFAULT_BASE_URL, api_key="")

    def get_model_prefix(self) -> str:
        return "runpod_"

    def full_name(self) -> str:
        return PROVIDER_ADDRESS

    def get_provider_schema(self, diags: Diagnostics) -> Schema:
        return Schema(
            attributes=[
                Attribute(
                    "api_key",
                    types.String(),
                    description="RunPod API key; defaults to RUNPOD_API_KEY.",
                    optional=True,
                    sensitive=True,
                ),
                Attribute(
                    "base_url",
                    types.String(),
                    description="API host (paths under /v2); defaults to RUNPOD_API_BASE_URL, else RunPod's.",
                    optional=True,
                ),
                Attribute(
                    "graphql_url",
                    types.String(),
                    description="Accepted for compatibility with 2.x and ignored.",
                    optional=True,
                ),
            ],
        )

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        """Nothing to check before configuration."""

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        """Resolve the API key and base URL (the key is never logged)."""
        api_key, base_url = config.get("api_key"), config.get("base_url")
        try:
            self.settings = Settings.from_env(
                api_key if is_set(api_key) else None, base_url if is_set(base_url) else None
            )
        except ApiError as error:
            diags.add_error(error.summary, error.detail)

    def get_data_sources(self) -> list[Type[DataSource]]:
        return []

    def get_resources(self) -> list[Type[Resource]]:
        return [PodResource]

    def client(self) -> RunPodClient:
        """A client for the configured API."""
        return RunPodClient(self.settings)
