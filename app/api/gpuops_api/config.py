"""The API's configuration: a YAML file named by the environment variable GPUOPS_API_CONFIG."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .slurmdata import SLURM_API_VERSIONS

ENV_VAR = "GPUOPS_API_CONFIG"
#: A Unix user name (the API's own users, and a job's owner it reads output as).
USER_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
#: Host header values the API always accepts (it listens on the loopback address).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value.rstrip("/")


class Settings(BaseModel):
    """Every key of the configuration file (unknown keys are refused, to catch typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8081, ge=1, le=65535)
    token_file: Path
    # A second token that opens GET /metrics only (Prometheus reads it from its own, less private, file).
    metrics_token_file: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)
    # Host header values accepted besides 127.0.0.1 and localhost (any other answers 400: DNS rebinding).
    trusted_hosts: list[str] = Field(default_factory=list)
    cloud: Literal["local", "runpod"] = "local"
    prometheus_url: str
    grafana_url: str | None = None
    # None: no Alertmanager (GET /api/v1/alerts answers configured: false).
    alertmanager_url: str | None = None
    slurmrestd_url: str
    # None: the newest version the controller's slurmrestd offers that the API reads (asked at first use).
    slurm_api_version: str | None = None
    slurm_user: str = "root"
    slurm_jwt_key_file: Path
    cloud_api_url: str
    # A key that can read pods (on RunPod: one with Read Only permission, never the account-wide key that
    # creates them). None: the API has no key, and every answer that needs the cloud's view of a pod says so.
    cloud_api_key_file: Path | None = None
    # The deployment's pods as the inventory knows them (ids, Slurm node names, GPUs, price, SSH endpoints), a
    # JSON file the app role renders from the inventory at every deployment; read again when it changes.
    pods_file: Path
    ssh_private_key_file: Path
    ssh_known_hosts_file: Path
    ssh_user: str = "root"
    job_output_dir: str = "/var/lib/gpuops/jobs/api"
    # The service plane's store of finished jobs' output (tokens/<node>, jobs/<id>/); None: none, and a
    # finished job's output is read on its pod over SSH.
    job_output_store: Path | None = None
    upstream_timeout_seconds: float = Field(5, gt=0, le=120)

    @field_validator("slurm_api_version")
    @classmethod
    def _slurm_version(cls, value: str | None) -> str | None:
        if value is not None and value not in SLURM_API_VERSIONS:
            raise ValueError(f"the API reads slurmrestd's {', '.join(SLURM_API_VERSIONS)}; leave it unset to use "
                             "the newest of those that slurmrestd offers")
        return value

    @field_validator("prometheus_url", "slurmrestd_url", "cloud_api_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("cloud_api_url")
    @classmethod
    def _cloud_v2(cls, value: str) -> str:
        if not value.endswith("/v2"):
            raise ValueError(f"{value!r} is not a RunPod REST v2 base URL: use https://api.runpod.io/v2 for RunPod, "
                             "http://127.0.0.1:8765/v2 for the local cloud (REST v1 was retired in November 2026)")
        return value

    @field_validator("grafana_url", "alertmanager_url")
    @classmethod
    def _optional_url(cls, value: str | None) -> str | None:
        return None if value in (None, "") else _http_url(value)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not re.match(r"^https?://[^\s/]+$", origin):
                raise ValueError(f"{origin!r} is not an origin such as http://127.0.0.1:8080 (no path, no '*')")
        return value

    @field_validator("trusted_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not _HOST.match(host):
                raise ValueError(f"{host!r} is not a host name or IPv4 address such as api.example.internal "
                                 "(no port, no scheme, no '*')")
        return value

    @field_validator("slurm_user", "ssh_user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not USER_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid user name")
        return value

    @field_validator("job_output_dir")
    @classmethod
    def _job_dir(cls, value: str) -> str:
        if not value.startswith("/") or not re.match(r"^[A-Za-z0-9/._-]+$", value):
            raise ValueError(f"{value!r} must be an absolute path of letters, digits and / . _ -")
        return value.rstrip("/") or "/"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and check the configuration file (default: the file named by GPUOPS_API_CONFIG)."""
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise ConfigError(f"{ENV_VAR} is not set: point it at the API's YAML configuration file")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read the configuration file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"the configuration file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the configuration file {path} must hold a mapping of keys to values")
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(file)'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"the configuration file {path} is not valid: {problems}") from None


def read_secret(path: Path, what: str) -> str:
    """The stripped text of a secret file; ConfigError naming the file when it is missing or empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(f"cannot read the {what} file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} file {path} is not text") from None
    if not value:
        raise ConfigError(f"the {what} file {path} is empty")
    return value
