"""The configuration file: the keys of the deploy role's file, checked with messages naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from gpuops_api.config import ENV_VAR, ConfigError, Settings, load_settings

from .conftest import write_config

#: The example of the configuration contract (notes/common.md), with the cloud's REST v2 URL.
CONTRACT_EXAMPLE = """
listen_host: 127.0.0.1
listen_port: 8081
token_file: /run/gpuops/api/token
cors_origins: ["http://127.0.0.1:8080", "http://localhost:8080"]
trusted_hosts: []
cloud: local
prometheus_url: http://127.0.0.1:9090
grafana_url: null
alertmanager_url: http://127.0.0.1:9093
slurmrestd_url: http://127.0.0.1:19401
slurm_api_version: v0.0.38
slurm_user: root
slurm_jwt_key_file: /run/gpuops/slurm_jwt_hs256.key
cloud_api_url: http://127.0.0.1:8765/v2
cloud_api_key_file: /run/gpuops/cloud_api_key
pods_file: /var/lib/gpuops/inventory/pods.json
ssh_private_key_file: /run/gpuops/ssh/id_ed25519
ssh_known_hosts_file: /run/gpuops/ssh/known_hosts
ssh_user: root
job_output_dir: /var/lib/gpuops/jobs/api
job_output_store: /var/lib/gpuops/job-output
upstream_timeout_seconds: 5
metrics_token_file: /run/gpuops/metrics/api-metrics-token
"""


def test_the_contract_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(CONTRACT_EXAMPLE)
    settings = load_settings(path)
    assert settings.listen_port == 8081 and settings.grafana_url is None
    assert set(yaml.safe_load(CONTRACT_EXAMPLE)) == set(Settings.model_fields)


def test_the_deploy_roles_template_sets_every_setting_and_only_those() -> None:
    import re

    template = (Path(__file__).resolve().parents[3]
                / "collections/ansible_collections/gpuops/platform/roles/app/templates/api.yml.j2").read_text()
    keys = set(re.findall(r"^(\w+):", template, re.M))
    assert keys == set(Settings.model_fields)


def test_the_file_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(write_config(tmp_path)))
    assert load_settings().cloud == "local"
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(ConfigError, match=f"{ENV_VAR} is not set"):
        load_settings()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"listen_prot": 1}, "listen_prot: Extra inputs are not permitted"),
    ({"listen_port": 70000}, "listen_port"),
    ({"cloud": "aws"}, "cloud"),
    ({"prometheus_url": "localhost:9090"}, "prometheus_url: Value error, 'localhost:9090' is not an http"),
    ({"cors_origins": ["*"]}, "cors_origins"),
    ({"cors_origins": ["http://127.0.0.1:8080/"]}, "cors_origins"),
    ({"slurm_api_version": "v0.0.39"}, "slurm_api_version"),
    ({"slurm_user": "root; rm"}, "slurm_user"),
    ({"job_output_dir": "relative/dir"}, "job_output_dir"),
    ({"upstream_timeout_seconds": 0}, "upstream_timeout_seconds"),
    ({"cloud_api_url": "http://127.0.0.1:8765/v1"}, "cloud_api_url: Value error, 'http://127.0.0.1:8765/v1' is not a RunPod REST v2"),
])
def test_bad_values_name_the_key(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(write_config(tmp_path, **overrides))


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_settings(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(tmp_path / "bad.yaml")
    (tmp_path / "partial.yaml").write_text("listen_port: 8081\n")
    with pytest.raises(ConfigError, match="token_file: Field required"):
        load_settings(tmp_path / "partial.yaml")
