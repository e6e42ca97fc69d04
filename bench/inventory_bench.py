"""Inventory plugin time for 10, 100 and 1000 pods, with and without the inventory cache.

A local cloud with the memory backend (records only, no containers) holds the
pods; a Terraform state file (format version 4) lists them in its `pods`
output; `ansible-inventory --list` runs the gpuops.platform.runpod plugin on
them, which calls `terraform output -json` once and `GET /v2/pods` (beyond
`list_threshold` pods). With `cache: true` (jsonfile) a warm call reads neither.

Two comparisons frame a cached call: ansible-inventory's own startup (`-i localhost,`),
and a static YAML inventory with the same hosts, groups and variables (ansible-core's
yaml plugin, which is itself slow with 1,000 hosts: a comparison, not a floor). With a git revision as `baseline`, that revision's collection is timed too,
its calls alternating with this checkout's, on the same pods.
"""

from __future__ import annotations

import json
import os
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


def list_inventory(source: str, expected_hosts: int | None, collections: Path | None = None,
                   keep: list[str] | None = None) -> float:
    """Time one `ansible-inventory -i SOURCE --list`; check that it lists the pods.

    collections: a collections path to use instead of ansible.cfg's (the baseline's collection).
    keep: a list to append the output to.
    """
    env = None
    if collections is not None:
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    result, seconds = timed(lambda: run([str(VENV_BIN / "ansible-inventory"), "-i", source, "--list"], check=False, env=env))
    if result.returncode != 0:
        raise BenchError(f"ansible-inventory -i {source} --list exited {result.returncode}:\n{result.stderr[-3000:]}")
    if expected_hosts is not None:
        hosts = json.loads(result.stdout).get("gpu_pods", {}).get("hosts", [])
        if len(hosts) != expected_hosts:
            raise BenchError(f"ansible-inventory -i {source} listed {len(hosts)} pods in gpu_pods, not {expected_hosts}")
    if keep is not None:
        keep.append(result.stdout)
    return seconds


def _yaml_value(value: Any) -> str:
    """A value of `ansible-inventory --list` as YAML flow text; unsafe strings stay unsafe (`!unsafe`)."""
    if isinstance(value, dict) and set(value) == {"__ansible_unsafe"}:
        return "!unsafe " + json.dumps(value["__ansible_unsafe"])
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)}: {_yaml_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(item) for item in value) + "]"
    return json.dumps(value)


def write_static(path: Path, listed: str) -> Path:
    """A YAML inventory (ansible.builtin.yaml) with the hosts, groups and variables of an `ansible-inventory --list`."""
    data = json.loads(listed)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    lines = ["all:", "  children:"]
    for group, entry in data.items():
        if group in ("_meta", "all") or not entry.get("hosts"):
            continue
        lines.append(f"    {json.dumps(group)}:")
        lines.append("      hosts:")
        for host in entry["hosts"]:
            lines.append(f"        {json.dumps(host)}: {_yaml_value(hostvars.get(host, {}) if group == 'gpu_pods' else {})}")
        if entry.get("vars"):
            lines.append(f"      vars: {_yaml_value(entry['vars'])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def checkout_collection(revision: str, where: Path) -> Path:
    """The collection of a git revision (the baseline), extracted under `where`; returns its collections path."""
    where.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision,
                              "collections/ansible_collections/gpuops/platform/plugins"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise BenchError(f"git archive {revision} of the collection's plugins failed: {archive.stderr.decode()[-500:]}")
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    galaxy = "collections/ansible_collections/gpuops/platform/galaxy.yml"
    (where / galaxy).write_bytes((REPO / galaxy).read_bytes())
    return where / "collections"


def measure(root: Path, runs: int, sizes: tuple[int, ...] = SIZES, baseline: str | None = None) -> Result:
    root.mkdir(parents=True, exist_ok=True)
    before = checkout_collection(baseline, root / "baseline") if baseline else None
    cloud = MemoryCloud(root)
    try:
        cloud.start()
        tf_dir = root / "terraform"
        (tf_dir / "data").mkdir(parents=True)
        (tf_dir / "terraform.rc").write_text("# no provider overrides: `terraform output` only reads the state\n")
        version = terraform_version()
        (all_pods, created_s) = timed(lambda: create_pods(cloud, max(sizes)))
        say(f"inventory: created {len(all_pods)} pods on the memory local cloud in {created_s:.1f} s")

        baseline_s = summary([list_inventory("localhost,", None) for _ in range(runs)])
        say(f"inventory: ansible-inventory startup (host_list, 1 host): median {fmt_s(baseline_s['median_s'])} s")

        startup = baseline_s
        data: dict[str, Any] = {"runs": runs, "pods_created_s": round(created_s, 3), "startup": startup,
                                "baseline_revision": baseline, "sizes": {}}
        headers = ["pods", "no cache (s)", "cache fill (s)", "cached (s)", "no cache / cached",
                   f"no cache, per pod beyond {sizes[0]} (ms)", "static YAML (s)", "cached - startup (s)"]
        if before is not None:
            headers += [f"{baseline}: no cache (s)", f"{baseline}: cached (s)", f"{baseline} cached / cached"]
        table = Table("Inventory plugin: `ansible-inventory --list` (median of %d)" % runs, headers)
        for size in sizes:
            names = sorted(all_pods)[:size]
            state_file = root / f"state-{size}" / "terraform.tfstate"
            write_state(state_file, {name: all_pods[name] for name in names}, version)
            plain = write_config(root / f"inv-{size}-nocache", cloud, state_file, tf_dir, None)
            cache_dir = root / f"cache-{size}"
            cached = write_config(root / f"inv-{size}-cache", cloud, state_file, tf_dir, cache_dir)

            outputs: list[str] = []
            fill = list_inventory(str(cached), size, keep=outputs)
            if not cache_dir.is_dir() or not any(cache_dir.iterdir()):
                raise BenchError(f"the cached inventory call wrote nothing to {cache_dir}")
            static = write_static(root / f"static-{size}" / "inventory.yml", outputs[0])
            old_plain = old_cached = None
            if before is not None:
                old_plain = write_config(root / f"inv-{size}-nocache-before", cloud, state_file, tf_dir, None)
                old_cached = write_config(root / f"inv-{size}-cache-before", cloud, state_file, tf_dir,
                                          root / f"cache-{size}-before")
                list_inventory(str(old_cached), size, collections=before)  # fills the baseline's cache
            # Alternating, so that whatever else the machine does weighs on each the same.
            samples: dict[str, list[float]] = {"no_cache": [], "cached": [], "static": [],
                                               "before_no_cache": [], "before_cached": []}
            for _ in range(runs):
                samples["no_cache"].append(list_inventory(str(plain), size))
                samples["cached"].append(list_inventory(str(cached), size, keep=outputs))
                samples["static"].append(list_inventory(str(static), size))
                if before is not None:
                    samples["before_no_cache"].append(list_inventory(str(old_plain), size, collections=before))
                    samples["before_cached"].append(list_inventory(str(old_cached), size, collections=before, keep=outputs))
            if any(output != outputs[0] for output in outputs):
                raise BenchError(f"{size} pods: a cached call listed another inventory than the call that filled the cache"
                                 + (f" (or than {baseline})" if before is not None else ""))
            uncached, warm, floor = summary(samples["no_cache"]), summary(samples["cached"]), summary(samples["static"])
            speedup = ratio(uncached["median_s"], warm["median_s"])
            first = data["sizes"].get(str(sizes[0]))
            per_pod_ms = (round((uncached["median_s"] - first["no_cache"]["median_s"]) / (size - sizes[0]) * 1000, 2)
                          if first and size > sizes[0] else None)
            over_startup = round(warm["median_s"] - startup["median_s"], 3)
            entry = {"no_cache": uncached, "cache_fill_s": round(fill, 3), "cached": warm,
                     "ratio_no_cache_to_cached": speedup, "per_pod_ms": per_pod_ms, "static": floor,
                     "cached_minus_startup_s": over_startup}
            row = [size, fmt_s(uncached["median_s"]), fmt_s(fill), fmt_s(warm["median_s"]), fmt_ratio(speedup),
                   "-" if per_pod_ms is None else f"{per_pod_ms:.1f}", fmt_s(floor["median_s"]), fmt_s(over_startup)]
            line = (f"inventory: {size:>4} pods: no cache {fmt_s(uncached['median_s'])} s, cache fill {fmt_s(fill)} s, "
                    f"cached {fmt_s(warm['median_s'])} s ({fmt_ratio(speedup)}), static YAML {fmt_s(floor['median_s'])} s")
            if before is not None:
                old_uncached, old_warm = summary(samples["before_no_cache"]), summary(samples["before_cached"])
                entry["before"] = {"no_cache": old_uncached, "cached": old_warm}
                row += [fmt_s(old_uncached["median_s"]), fmt_s(old_warm["median_s"]),
                        fmt_ratio(ratio(old_warm["median_s"], warm["median_s"]))]
                line += f"; {baseline}: no cache {fmt_s(old_uncached['median_s'])} s, cached {fmt_s(old_warm['median_s'])} s"
            data["sizes"][str(size)] = entry
            table.rows.append(row)
            say(line)
        table.notes = [
            f"ansible-inventory's own startup (`-i localhost,`, no plugin): {fmt_s(startup['median_s'])} s median.",
            "Static YAML: the same hosts, groups and variables (unsafe strings as `!unsafe`) in an ansible.builtin.yaml "
            "file (that plugin is slow with many hosts: a comparison, not a floor); cached - startup: what a cache hit "
            "costs beyond ansible-inventory's startup, printing the hosts (ansible-inventory's own work) included.",
            "Each round times no cache, cached and static YAML (and the baseline's two) one after the other; every "
            "cached call must list exactly what the cache-filling call listed.",
            f"Pods on a memory-backend local cloud (`--ssh-ready-delay 0`); creating {max(sizes)} over HTTP took {created_s:.1f} s.",
            "No cache: one `terraform output -json`, then one `GET /v2/pods/{id}` per pod up to `list_threshold` (8) "
            "pods, one `GET /v2/pods` beyond. Cached: jsonfile cache filled by the previous call; neither Terraform "
            "nor the API is asked, nor (this checkout) the keyed_groups expression evaluated again.",
            "Per pod: the slope of the no-cache median between the smallest size and this one.",
        ]
        return Result(data, [table])
    finally:
        cloud.stop()
