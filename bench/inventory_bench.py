"""Inventory plugin time for 10, 100 and 1000 pods, with and without the inventory cache.

A local cloud with the memory backend (records only, no containers) holds the
pods; a Terraform state file (format version 4) lists them in its `pods`
output; `ansible-inventory --list` runs the gpuops.platform.runpod plugin on
them, which calls `terraform output -json` once and `GET /v2/pods/{id}` once
per pod. With `cache: true` (jsonfile) a warm call reads neither.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import BenchError, Result, Table, fmt_ratio, fmt_s, ratio, say, summary, timed
from tests.integration.helpers import REPO, VENV_BIN, free_port, run

SIZES = (10, 100, 1000)
PREFIX = "gpuopsbench"
GPU_TYPE = "NVIDIA GeForce RTX 4090"
TERRAFORM = VENV_BIN / "terraform"


class MemoryCloud:
    """`python -m localcloud serve --backend memory` in the foreground, on its own port and state dir."""

    def __init__(self, root: Path) -> None:
        self.state_dir = root / "localcloud"
        self.port = free_port()
        self.log = root / "localcloud.log"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    @property
    def api_key_file(self) -> Path:
        return self.state_dir / "api_key"

    def start(self, timeout: float = 30) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "python"), "-m", "localcloud", "serve", "--backend", "memory",
                 "--port", str(self.port), "--state-dir", str(self.state_dir),
                 "--ssh-ready-delay", "0", "--log-level", "warning"],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the memory local cloud exited {self.process.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200 and self.api_key_file.exists():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise BenchError(f"the memory local cloud did not answer /healthz within {timeout}s (log: {self.log})")

    def client(self) -> httpx.Client:
        key = self.api_key_file.read_text().strip()
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def create_pods(cloud: MemoryCloud, count: int) -> dict[str, dict[str, Any]]:
    """Create `count` pods through POST /v2/pods; return the Terraform `pods` output value for them."""
    pods: dict[str, dict[str, Any]] = {}
    with cloud.client() as api:
        for index in range(count):
            name = f"{PREFIX}-{index:04d}"
            answer = api.post("/pods", json={
                "name": name, "image": "gpuops/pod:bookworm", "gpu": {"id": GPU_TYPE, "count": 1},
                "cloud": "SECURE", "ports": ["22/tcp"],
            })
            if answer.status_code != 201:
                raise BenchError(f"POST /v2/pods for {name} answered {answer.status_code}: {answer.text[:500]}")
            pod = answer.json()
            pods[name] = {
                "id": pod["id"], "gpu_type_id": GPU_TYPE, "gpu_count": 1,
                "cost_per_hr": pod.get("cost") or 0.0, "index": index,
            }
    return pods


def terraform_version() -> str:
    answer = subprocess.run([str(TERRAFORM), "version", "-json"], capture_output=True, text=True, timeout=60, check=False)
    try:
        return json.loads(answer.stdout)["terraform_version"]
    except (ValueError, KeyError):
        raise BenchError(f"`{TERRAFORM} version -json` did not say its version: {answer.stderr[-500:]}") from None


def write_state(path: Path, pods: dict[str, dict[str, Any]], version: str) -> None:
    """A Terraform state (format version 4) whose only content is the `pods` output."""
    attribute_types = {"id": "string", "gpu_type_id": "string", "gpu_count": "number", "cost_per_hr": "number", "index": "number"}
    state = {
        "version": 4,
        "terraform_version": version,
        "serial": 1,
        "lineage": str(uuid.uuid4()),
        "outputs": {"pods": {"value": pods, "type": ["map", ["object", attribute_types]]}},
        "resources": [],
        "check_results": None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1))


def write_config(directory: Path, cloud: MemoryCloud, state_file: Path, tf_dir: Path, cache_dir: Path | None) -> Path:
    """An inventory directory whose runpod.yml is inventories/local/runpod.yml pointed at the bench cloud."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "plugin: gpuops.platform.runpod",
        f"project_path: {REPO / 'terraform/runpod'}",
        f"state_file: {state_file}",
        f"terraform_binary: {TERRAFORM}",
        "terraform_env:",
        f"  TF_DATA_DIR: {tf_dir / 'data'}",
        f"  TF_CLI_CONFIG_FILE: {tf_dir / 'terraform.rc'}",
        f"base_url: {cloud.base_url}",
        f"api_key_file: {cloud.api_key_file}",
        "missing_state: error",
        "unavailable_pods: error",
        "wait_timeout: 60",
        "poll_interval: 1",
        "keyed_groups:",
        "  - key: runpod_gpu_type_id",
        "    prefix: gpu",
    ]
    if cache_dir is None:
        lines.append("cache: false")
    else:
        lines += ["cache: true", "cache_plugin: ansible.builtin.jsonfile",
                  f"cache_connection: {cache_dir}", "cache_timeout: 86400"]
    (directory / "runpod.yml").write_text("\n".join(lines) + "\n")
    return directory


def list_inventory(source: str, expected_hosts: int | None) -> float:
    """Time one `ansible-inventory -i SOURCE --list`; check that it lists the pods."""
    result, seconds = timed(lambda: run([str(VENV_BIN / "ansible-inventory"), "-i", source, "--list"], check=False))
    if result.returncode != 0:
        raise BenchError(f"ansible-inventory -i {source} --list exited {result.returncode}:\n{result.stderr[-3000:]}")
    if expected_hosts is not None:
        hosts = json.loads(result.stdout).get("gpu_pods", {}).get("hosts", [])
        if len(hosts) != expected_hosts:
            raise BenchError(f"ansible-inventory -i {source} listed {len(hosts)} pods in gpu_pods, not {expected_hosts}")
    return seconds


def measure(root: Path, runs: int, sizes: tuple[int, ...] = SIZES) -> Result:
    root.mkdir(parents=True, exist_ok=True)
    cloud = MemoryCloud(root)
    try:
        cloud.start()
        tf_dir = root / "terraform"
        (tf_dir / "data").mkdir(parents=True)
        (tf_dir / "terraform.rc").write_text("# no provider overrides: `terraform output` only reads the state\n")
        version = terraform_version()
        (all_pods, created_s) = timed(lambda: create_pods(cloud, max(sizes)))
        say(f"inventory: created {len(all_pods)} pods on the memory local cloud in {created_s:.1f} s")

        baseline = summary([list_inventory("localhost,", None) for _ in range(runs)])
        say(f"inventory: ansible-inventory startup (host_list, 1 host): median {fmt_s(baseline['median_s'])} s")

        data: dict[str, Any] = {"runs": runs, "pods_created_s": round(created_s, 3), "startup": baseline, "sizes": {}}
        table = Table(
            "Inventory plugin: `ansible-inventory --list` (median of %d)" % runs,
            ["pods", "no cache (s)", "cache fill (s)", "cached (s)", "no cache / cached", f"no cache, per pod beyond {sizes[0]} (ms)"],
        )
        for size in sizes:
            names = sorted(all_pods)[:size]
            state_file = root / f"state-{size}" / "terraform.tfstate"
            write_state(state_file, {name: all_pods[name] for name in names}, version)
            plain = write_config(root / f"inv-{size}-nocache", cloud, state_file, tf_dir, None)
            cache_dir = root / f"cache-{size}"
            cached = write_config(root / f"inv-{size}-cache", cloud, state_file, tf_dir, cache_dir)

            uncached = summary([list_inventory(str(plain), size) for _ in range(runs)])
            fill = list_inventory(str(cached), size)
            if not cache_dir.is_dir() or not any(cache_dir.iterdir()):
                raise BenchError(f"the cached inventory call wrote nothing to {cache_dir}")
            warm = summary([list_inventory(str(cached), size) for _ in range(runs)])
            speedup = ratio(uncached["median_s"], warm["median_s"])
            first = data["sizes"].get(str(sizes[0]))
            per_pod_ms = (round((uncached["median_s"] - first["no_cache"]["median_s"]) / (size - sizes[0]) * 1000, 2)
                          if first and size > sizes[0] else None)
            data["sizes"][str(size)] = {"no_cache": uncached, "cache_fill_s": round(fill, 3), "cached": warm,
                                        "ratio_no_cache_to_cached": speedup, "per_pod_ms": per_pod_ms}
            table.rows.append([size, fmt_s(uncached["median_s"]), fmt_s(fill), fmt_s(warm["median_s"]),
                               fmt_ratio(speedup), "-" if per_pod_ms is None else f"{per_pod_ms:.1f}"])
            say(f"inventory: {size:>4} pods: no cache {fmt_s(uncached['median_s'])} s, cache fill {fmt_s(fill)} s, "
                f"cached {fmt_s(warm['median_s'])} s ({fmt_ratio(speedup)})")
        table.notes = [
            f"ansible-inventory's own startup (`-i localhost,`, no plugin): {fmt_s(baseline['median_s'])} s median.",
            f"Pods on a memory-backend local cloud (`--ssh-ready-delay 0`); creating {max(sizes)} over HTTP took {created_s:.1f} s.",
            "No cache: one `terraform output -json` plus one `GET /v2/pods/{id}` per pod, one after the other. "
            "Cached: jsonfile cache filled by the previous call; neither Terraform nor the API is asked.",
            "Per pod: the slope of the no-cache median between the smallest size and this one.",
        ]
        return Result(data, [table])
    finally:
        cloud.stop()
