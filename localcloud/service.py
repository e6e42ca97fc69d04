"""The pods: RunPod's rules, the records, and the calls to the backend.

The service owns the records. One lock guards the record table and the
state file (held only briefly); each pod has its own lock, held across the
slow backend calls, so different pods are worked on in parallel.

Status, as RunPod reports it: a created pod is ``PROVISIONING``, then
``STARTING``, then ``RUNNING`` once it has run for ``ready_delay`` seconds
(a restarted or started pod goes straight to ``STARTING``). Only a
``RUNNING`` pod shows ``ssh.direct`` and ``runtime``, so clients must poll.
Stopped pods are ``EXITED``, failed ones ``ERROR``; a terminated pod is
gone (404).
"""

from __future__ import annotations

import logging
import re
import secrets
import shlex
import threading
from datetime import datetime
from typing import Any

from localcloud import catalog
from localcloud.backends.base import LogLine, Observed, PodBackend, Runtime, internal_dns
from localcloud.clock import Clock, iso_z
from localcloud.errors import BadRequest, Conflict, NotFound
from localcloud.faults import Faults
from localcloud.ids import new_machine_id, new_pod_id
from localcloud.logs import env_summary
from localcloud.models import CreatePod, Mounts, UpdatePod
from localcloud.records import PodRecord
from localcloud.store import StateStore

log = logging.getLogger(__name__)

#: Actions valid in each status, as RunPod's ``podAction`` documents them.
ACTIONS: dict[str, tuple[str, ...]] = {
    "PROVISIONING": ("stop", "terminate"),
    "STARTING": ("stop", "terminate"),
    "RUNNING": ("stop", "restart", "terminate"),
    "EXITED": ("start", "terminate"),
    "ERROR": ("start", "terminate"),
    "TERMINATED": (),
}
#: Fields of UpdatePodRequest whose change needs a new container.
RESET_FIELDS = ("image", "args", "disk", "ports", "env", "persistent_size", "persistent_path")

CAPACITY_DETAIL = "There are no longer any instances available with the requested specifications"
_PORT_RE = re.compile(r"^(\d{1,5})/(tcp|http)$")


def check_ports(ports: list[str]) -> list[str]:
    """Check RunPod port entries (``PORT/tcp`` or ``PORT/http``, 1-65535, no port twice); 400 otherwise."""
    seen: set[int] = set()
    for entry in ports:
        match = _PORT_RE.match(entry)
        if not match or not 1 <= int(match.group(1)) <= 65535:
            raise BadRequest(f"ports: invalid entry {entry!r}: expected PORT/tcp or PORT/http with PORT 1-65535")
        if int(match.group(1)) in seen:
            raise BadRequest(f"ports: port {match.group(1)} is listed more than once")
        seen.add(int(match.group(1)))
    return ports


def check_env(env: dict[str, str]) -> dict[str, str]:
    """Check env names a container can carry (non-empty, no '=' or NUL); 400 otherwise."""
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise BadRequest(f"env: invalid variable {name!r}: names must be non-empty without '=', values without NUL")
    return env


def check_args(args: str) -> str:
    """Check that ``args`` splits like a shell command line; 400 otherwise."""
    try:
        shlex.split(args)
    except ValueError as exc:
        raise BadRequest(f"args: cannot split {args!r} into arguments ({exc})") from None
    return args


def check_mount_path(path: str) -> str:
    """Check that a mount path is absolute; 400 otherwise."""
    if not path.startswith("/"):
        raise BadRequest(f"mounts.persistent.path: {path!r} is not an absolute path (e.g. '/workspace')")
    return path


def _cuda_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class PodService:
    """Create, read, change and delete pods; inject faults."""

    def __init__(
        self,
        backend: PodBackend,
        store: StateStore,
        *,
        clock: Clock,
        ready_delay: float,
        stock: catalog.Stock | None = None,
        faults: Faults | None = None,
    ) -> None:
        if ready_delay < 0:
            raise ValueError("ready_delay must be >= 0")
        self.backend = backend
        self.stock = stock or catalog.Stock()
        self.faults = faults or Faults()
        self._store = store
        self._clock = clock
        self._ready_delay = ready_delay
        self._records: dict[str, PodRecord] = {}
        self._lock = threading.RLock()
        self._pod_locks: dict[str, threading.Lock] = {}

    # -- startup ---------------------------------------------------------

    def recover(self) -> None:
        """Load the records and reconcile them with what the backend really has.

        A record whose container vanished or stopped while it was RUNNING
        becomes EXITED; a labelled container without a record is re-adopted
        from the record in its label.
        """
        records = self._store.load()
        observed = self.backend.observe()
        changed: list[PodRecord] = []
        if observed is not None:
            now = self._clock()
            for pod_id, rec in list(records.items()):
                fixed = self._reconciled(rec, observed.get(pod_id), now)
                if fixed is not rec:
                    records[pod_id] = fixed
                    changed.append(fixed)
            for pod_id, seen in observed.items():
                if pod_id not in records and seen.record is not None:
                    adopted = seen.record.model_copy(update={"state": "RUNNING" if seen.running else "EXITED"})
                    records[pod_id] = adopted
                    changed.append(adopted)
                    log.info("pod re-adopted from its container", extra={"fields": {"pod_id": pod_id}})
        self.backend.adopt(records.values())
        with self._lock:
            self._records = records
            if changed:
                self._store.put_many(changed)
        log.info("state recovered", extra={"fields": {"pods": len(records), "changed": len(changed)}})

    def _reconciled(self, rec: PodRecord, seen: Observed | None, now: datetime) -> PodRecord:
        if rec.state == "RUNNING" and (seen is None or not seen.running):
            what = "vanished" if seen is None else "stopped"
            log.warning(f"container {what}; pod marked EXITED", extra={"fields": {"pod_id": rec.id}})
            return rec.model_copy(update={"state": "EXITED"}).with_event(now, f"container {what}; pod exited")
        if rec.state == "EXITED" and seen is not None and seen.running:
            return rec.model_copy(update={"state": "RUNNING"})
        return rec

    def refresh(self, pod_id: str | None = None) -> None:
        """Mark RUNNING pods whose container stopped behind our back as EXITED (pods being worked on are skipped)."""
        observed = self.backend.observe(pod_id)
        if observed is None:
            return
        with self._lock:
            candidates = [r for r in self._records.values() if pod_id in (None, r.id) and r.state == "RUNNING"]
        now = self._clock()
        for rec in candidates:
            seen = observed.get(rec.id)
            if seen is not None and seen.running:
                continue
            lock = self._pod_lock(rec.id)
            if not lock.acquire(blocking=False):
                continue
            try:
                current = self._records.get(rec.id)
                if current is not None and current.state == "RUNNING":
                    self._commit(self._reconciled(current, seen, now))
            finally:
                lock.release()

    # -- queries ---------------------------------------------------------

    def count(self) -> int:
        """Return the number of pods."""
        return len(self._records)

    def list_pods(self) -> list[dict[str, Any]]:
        """Return every pod, oldest first (the local cloud has no cluster pods)."""
        self.refresh()
        now = self._clock()
        with self._lock:
            records = list(self._records.values())
        return [self.render(r, now) for r in records]

    def get_pod(self, pod_id: str) -> dict[str, Any]:
        """Return one pod (404 if unknown)."""
        self._get(pod_id)
        self.refresh(pod_id)
        return self.render(self._get(pod_id), self._clock())

    def record(self, pod_id: str) -> PodRecord:
        """Return the internal record of one pod (404 if unknown)."""
        return self._get(pod_id)

    def ssh_keys(self) -> list[str]:
        """Return the account's registered SSH public keys."""
        return self._store.ssh_keys()

    def set_ssh_keys(self, keys: list[str]) -> list[str]:
        """Replace the account's SSH public keys (pods created afterwards with startSsh get them)."""
        with self._lock:
            self._store.put_ssh_keys(keys)
        log.info("ssh keys replaced", extra={"fields": {"count": len(keys)}})
        return keys

    # -- create ----------------------------------------------------------

    def create(self, body: CreatePod) -> dict[str, Any]:
        """Rent a pod: check RunPod's rules, place it, create it in the backend, record it."""
        gpu = self._check_create(body)
        assert body.gpu is not None and body.image is not None  # checked above
        data_center, cuda = self._place(body, gpu)
        injected: dict[str, str] = {}
        keys = self._store.ssh_keys()
        if body.start_ssh and keys and "PUBLIC_KEY" not in body.env:
            injected["PUBLIC_KEY"] = "\n".join(keys)
        if body.start_jupyter and "JUPYTER_PASSWORD" not in body.env:
            injected["JUPYTER_PASSWORD"] = secrets.token_urlsafe(16)
        runtime_image = self.backend.resolve_image(body.image)
        now = self._clock()
        with self._lock:
            pod_id = new_pod_id()
            while pod_id in self._records:
                pod_id = new_pod_id()
        persistent = body.mounts.persistent if body.mounts else None
        rec = PodRecord(
            id=pod_id,
            name=body.name,
            image=body.image,
            runtime_image=runtime_image,
            args=body.args,
            disk=body.disk,
            ports=body.ports,
            env=body.env,
            injected_env=injected,
            gpu_type_id=gpu.id,
            gpu_count=body.gpu.count,
            cloud=body.cloud,
            data_center_id=data_center.id,
            cuda_version=cuda,
            persistent_size=persistent.size if persistent else None,
            persistent_path=persistent.path if persistent else None,
            global_networking=body.global_networking,
            state="RUNNING",
            created_at=now,
            started_at=now,
            stuck_provisioning=self.faults.take_provisioning(),
            machine_id=new_machine_id(),
            vcpu_count=gpu.vcpu_per_gpu * body.gpu.count,
            memory_in_gb=gpu.ram_per_gpu_gb * body.gpu.count,
        ).with_event(now, f"pod created in {data_center.id}: {body.gpu.count} x {gpu.id}, {body.cloud} cloud")
        with self._pod_lock(pod_id):
            try:
                runtime = self.backend.recreate(rec, start=True)
            except BaseException:
                with self._lock:
                    self._pod_locks.pop(pod_id, None)
                raise
            rec = self._started(rec, runtime)
            self._commit(rec)
        log.info(
            "pod created",
            extra={
                "fields": {
                    "pod_id": pod_id,
                    "gpu_type_id": gpu.id,
                    "gpu_count": rec.gpu_count,
                    "cloud": rec.cloud,
                    "data_center_id": rec.data_center_id,
                    "global_networking": rec.global_networking,
                    "image": rec.image,
                    "runtime_image": runtime_image,
                    "host_ports": rec.host_ports,
                    "start_ssh": body.start_ssh,
                    **env_summary(rec.container_env()),
                }
            },
        )
        return self.render(rec, self._clock())

    def _check_create(self, body: CreatePod) -> catalog.GpuType:
        if body.template_id is not None:
            raise NotFound(f"template {body.template_id!r} not found (localcloud has no templates)")
        if body.registry is not None:
            raise NotFound(f"container registry credential {body.registry!r} not found (localcloud has none)")
        if body.gpu is not None and body.cpu is not None:
            raise BadRequest("exactly one of gpu or cpu must be set, not both")
        if body.cpu is not None:
            raise BadRequest("CPU pods are not supported by localcloud; request a GPU pod with gpu {id, count}")
        if body.gpu is None:
            raise BadRequest('exactly one of gpu or cpu must be set; e.g. "gpu": {"id": "NVIDIA GeForce RTX 4090"}')
        self._check_mounts(body.mounts, current=None)
        check_ports(body.ports)
        check_env(body.env)
        check_args(body.args)
        gpu = catalog.get_gpu_type(body.gpu.id)
        if gpu is None:
            raise BadRequest(
                f"gpu.id: unknown GPU type {body.gpu.id!r}; use an id from GET /v2/catalog/gpus, "
                "e.g. 'NVIDIA GeForce RTX 4090'"
            )
        if body.gpu.count > gpu.max_count(body.cloud):
            raise BadRequest(
                f"gpu.count: at most {gpu.max_count(body.cloud)} x {gpu.id} per pod in the {body.cloud} cloud, "
                f"got {body.gpu.count}"
            )
        if body.gpu.allowed_cuda_versions and body.gpu.min_cuda_version:
            raise BadRequest("gpu.allowedCudaVersions and gpu.minCudaVersion are mutually exclusive; send one")
        unknown = [d for d in body.data_center_ids if d not in catalog.DATA_CENTERS]
        if unknown:
            raise BadRequest(
                f"dataCenterIds: unknown data center {', '.join(map(repr, unknown))}; "
                f"GET /v2/catalog/datacenters lists them ({', '.join(catalog.DATA_CENTERS)})"
            )
        if body.global_networking and gpu.manufacturer != "NVIDIA":
            raise BadRequest(f"globalNetworking requires an NVIDIA GPU; {gpu.id} is made by {gpu.manufacturer}")
        return gpu

    def _place(self, body: CreatePod, gpu: catalog.GpuType) -> tuple[catalog.DataCenter, str]:
        assert body.gpu is not None
        candidates = [catalog.DATA_CENTERS[d] for d in body.data_center_ids] or list(catalog.DATA_CENTERS.values())
        if body.global_networking:
            candidates = [dc for dc in candidates if dc.global_network]
            if not candidates:
                raise BadRequest(
                    f"globalNetworking is not offered in data centers {', '.join(body.data_center_ids)}; choose "
                    "data centers with globalNetwork true (GET /v2/catalog/datacenters?globalNetwork=true)"
                )
        offering = [dc for dc in candidates if dc.offers(gpu)]
        where = ", ".join(dc.id for dc in candidates)
        if not offering:
            raise BadRequest(f"{CAPACITY_DETAIL}: no data center among {where} offers {gpu.id}")
        versions = list(catalog.CUDA_VERSIONS)
        if body.gpu.allowed_cuda_versions:
            versions = [v for v in versions if v in body.gpu.allowed_cuda_versions]
        if body.gpu.min_cuda_version:
            versions = [v for v in versions if _cuda_key(v) >= _cuda_key(body.gpu.min_cuda_version)]
        if self.faults.take_capacity() or self.stock.level(gpu.id) == "NONE" or not versions:
            reason = "no machine with a matching CUDA version" if not versions else "no free machine"
            raise BadRequest(
                f"{CAPACITY_DETAIL} ({body.gpu.count} x {gpu.id}, {body.cloud} cloud, {reason} in {where}); "
                "try another GPU type or data center, or again later"
            )
        return offering[0], max(versions, key=_cuda_key)

    @staticmethod
    def _check_mounts(mounts: Mounts | None, current: PodRecord | None) -> None:
        if mounts is None:
            return
        if mounts.persistent is not None and mounts.network is not None:
            raise BadRequest("mounts: set at most one of persistent or network")
        if mounts.network is not None:
            if current is not None or not mounts.network:
                raise BadRequest("mounts.network: the mount kind is fixed at create; this pod has no network volume")
            raise NotFound(f"network volume {mounts.network[0].volume_id!r} not found (localcloud has none)")
        if mounts.persistent is not None:
            if current is not None and current.persistent_path is None:
                raise BadRequest("mounts.persistent: the mount kind is fixed at create; this pod has no persistent mount")
            check_mount_path(mounts.persistent.path)

    # -- update ----------------------------------------------------------

    def update(self, pod_id: str, body: UpdatePod) -> dict[str, Any]:
        """Apply ``PATCH /v2/pods/{id}``; a change to image, args, disk, ports, env or mounts needs a new container."""
        given = body.model_fields_set
        if "template_id" in given:
            raise NotFound(f"template {body.template_id!r} not found (localcloud has no templates)")
        if body.registry is not None:
            raise NotFound(f"container registry credential {body.registry!r} not found (localcloud has none)")
        changes: dict[str, Any] = {}
        for field in ("name", "image", "args", "disk", "ports", "env", "locked", "global_networking"):
            if field in given and getattr(body, field) is not None:
                changes[field] = getattr(body, field)
        check_ports(changes.get("ports", []))
        check_env(changes.get("env", {}))
        check_args(changes.get("args", ""))
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            self._check_mounts(body.mounts, current=rec)
            if body.mounts is not None and body.mounts.persistent is not None:
                changes["persistent_size"] = body.mounts.persistent.size
                changes["persistent_path"] = body.mounts.persistent.path
            if changes.get("global_networking"):
                self._check_global_networking(rec)
            needs_new = any(k in changes and changes[k] != getattr(rec, k) for k in RESET_FIELDS)
            if needs_new and rec.locked and changes.get("locked") is not False:
                raise BadRequest(f"pod {pod_id} is locked; set locked to false to change what needs a new container")
            if "image" in changes and changes["image"] != rec.image:
                changes["runtime_image"] = self.backend.resolve_image(changes["image"])
            new = rec.model_copy(update=changes)
            now = self._clock()
            if needs_new and rec.state == "RUNNING" and not rec.stuck_provisioning:
                runtime = self.backend.recreate(new, start=True)
                new = self._started(new.with_event(now, "configuration changed: container recreated"), runtime)
            self._commit(new)
        log.info("pod updated", extra={"fields": {"pod_id": pod_id, "changed": sorted(changes), "reset": needs_new}})
        return self.render(new, self._clock())

    def _check_global_networking(self, rec: PodRecord) -> None:
        gpu = catalog.get_gpu_type(rec.gpu_type_id)
        if gpu is None or gpu.manufacturer != "NVIDIA":
            raise BadRequest(f"globalNetworking requires an NVIDIA GPU; this pod has {rec.gpu_type_id}")
        dc = catalog.DATA_CENTERS.get(rec.data_center_id)
        if dc is None or not dc.global_network:
            raise BadRequest(f"globalNetworking is not offered in data center {rec.data_center_id} where this pod runs")

    # -- actions ---------------------------------------------------------

    def action(self, pod_id: str, action: str) -> dict[str, Any] | None:
        """Apply a pod action (start, stop, restart, terminate); 409 if not valid now. None after terminate."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            now = self._clock()
            status = self.status(rec, now)
            allowed = self.actions(rec, status)
            if action not in allowed:
                why = "; it is locked (PATCH locked=false first)" if rec.locked and action == "stop" else ""
                raise Conflict(
                    f"action {action!r} is not valid for pod {pod_id} in status {status}{why}; "
                    f"valid now: {', '.join(allowed) or 'none'}"
                )
            if action == "terminate":
                self._remove(rec)
                return None
            if action == "stop":
                self.backend.stop(rec)
                rec = rec.model_copy(update={"state": "EXITED", "stuck_provisioning": False})
                rec = rec.with_event(now, "stopped by user")
            else:  # start, restart: a fresh container from the image
                runtime = self.backend.recreate(rec, start=True)
                rec = self._started(rec.with_event(now, f"{action}ed by user"), runtime)
            self._commit(rec)
        log.info(f"pod {action}", extra={"fields": {"pod_id": pod_id, "host_ports": rec.host_ports}})
        return self.render(rec, self._clock())

    def delete(self, pod_id: str) -> None:
        """Terminate a pod: remove it from the backend and forget it."""
        with self._pod_lock(pod_id):
            self._remove(self._get(pod_id))

    def _remove(self, rec: PodRecord) -> None:
        self.backend.remove(rec)
        with self._lock:
            self._records.pop(rec.id, None)
            self._store.remove(rec.id)
            self._pod_locks.pop(rec.id, None)
        log.info("pod terminated", extra={"fields": {"pod_id": rec.id}})

    # -- logs --------------------------------------------------------------

    def logs(self, pod_id: str, *, source: str | None, tail: int, since: datetime | None) -> list[tuple[str, LogLine]]:
        """Return the last ``tail`` log lines of a pod as (source, line), oldest first."""
        rec = self._get(pod_id)
        lines: list[tuple[str, LogLine]] = []
        if source in (None, "container"):
            lines += [("container", line) for line in self.backend.logs(rec, tail=tail, since=since)]
        if source in (None, "system"):
            events = [e for e in rec.events if since is None or e.ts > since]
            lines += [("system", LogLine(e.ts, e.line)) for e in events]
        lines.sort(key=lambda item: item[1].ts)
        return lines[-tail:] if tail else []

    # -- fault injection -------------------------------------------------

    def interrupt(self, pod_id: str) -> PodRecord:
        """Kill a running pod as a host failure would: EXITED, its container gone."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            if rec.state != "RUNNING":
                raise BadRequest(f"pod {pod_id} is not running (status {self.status(rec, self._clock())})")
            self.backend.kill(rec)
            rec = rec.model_copy(update={"state": "EXITED"}).with_event(self._clock(), "host failure: pod interrupted")
            self._commit(rec)
        log.info("fault: pod interrupted", extra={"fields": {"pod_id": pod_id}})
        return rec

    def set_error(self, pod_id: str, detail: str) -> PodRecord:
        """Put a pod into ERROR (its container killed); ``start`` recovers it."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            self.backend.kill(rec)
            rec = rec.model_copy(update={"state": "ERROR", "stuck_provisioning": False})
            rec = rec.with_event(self._clock(), f"error: {detail}")
            self._commit(rec)
        log.info("fault: pod in error", extra={"fields": {"pod_id": pod_id}})
        return rec

    def set_stuck(self, pod_id: str, *, stuck: bool) -> PodRecord:
        """Keep a pod in PROVISIONING (``stuck``), or let it go on to STARTING and RUNNING."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            if rec.state != "RUNNING":
                raise BadRequest(f"pod {pod_id} is not being provisioned or running (status {rec.state})")
            if rec.stuck_provisioning != stuck:
                update: dict[str, Any] = {"stuck_provisioning": stuck}
                if not stuck:
                    update["started_at"] = self._clock()
                rec = rec.model_copy(update=update)
                self._commit(rec)
        log.info("fault: provisioning " + ("held" if stuck else "released"), extra={"fields": {"pod_id": pod_id}})
        return rec

    def set_network(self, pod_id: str, *, cut: bool) -> PodRecord:
        """Cut (``cut=True``) or restore a pod's network; doing it twice changes nothing."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            if rec.network_cut != cut:
                if cut:
                    self.backend.cut_network(rec)
                else:
                    self.backend.restore_network(rec)
                rec = rec.model_copy(update={"network_cut": cut})
                self._commit(rec)
        log.info("fault: network " + ("cut" if cut else "restored"), extra={"fields": {"pod_id": pod_id}})
        return rec

    # -- rendering -------------------------------------------------------

    def status(self, rec: PodRecord, now: datetime) -> str:
        """Return RunPod's status of a record at time ``now``."""
        if rec.state != "RUNNING":
            return rec.state
        if rec.stuck_provisioning or rec.started_at is None:
            return "PROVISIONING"
        elapsed = (now - rec.started_at).total_seconds()
        if elapsed >= self._ready_delay:
            return "RUNNING"
        first_boot = rec.boots <= 1
        return "PROVISIONING" if first_boot and elapsed < self._ready_delay / 2 else "STARTING"

    @staticmethod
    def actions(rec: PodRecord, status: str) -> list[str]:
        """Return the actions valid now (a locked pod cannot be stopped)."""
        return [a for a in ACTIONS[status] if not (rec.locked and a == "stop")]

    def render(self, rec: PodRecord, now: datetime) -> dict[str, Any]:
        """Return the RunPod v2 ``Pod`` of a record at time ``now``."""
        status = self.status(rec, now)
        gpu = catalog.get_gpu_type(rec.gpu_type_id)
        price = catalog.pod_cost(gpu, rec.gpu_count, rec.cloud) if gpu else 0.0
        running = status == "RUNNING"
        public_ip = self.backend.public_ip
        direct = None
        if running and "22" in rec.host_ports and "22/tcp" in rec.ports:
            port = rec.host_ports["22"]
            direct = {"host": public_ip, "port": port, "username": "root", "command": f"ssh root@{public_ip} -p {port}"}
        networking: dict[str, Any] = {"enabled": rec.global_ip is not None}
        if rec.global_ip is not None:
            networking.update(ip=rec.global_ip, internalDns=internal_dns(rec.id))
        runtime = None
        if running and rec.started_at is not None:
            ports = []
            for entry in rec.ports:
                number, kind = entry.split("/")
                public = rec.host_ports.get(number) if kind == "tcp" else None
                ports.append(
                    {"private": int(number), "public": public, "type": kind, "ip": public_ip if public else None}
                )
            runtime = {
                "uptime": int((now - rec.started_at).total_seconds()),
                "gpus": [{"util": 0, "memoryUtil": 0} for _ in range(rec.gpu_count)],
                "cpu": {"util": 0},
                "memory": {"util": 0},
                "ports": ports,
            }
        mounts: dict[str, Any] = {}
        if rec.persistent_path is not None and rec.persistent_size is not None:
            mounts["persistent"] = {"size": rec.persistent_size, "path": rec.persistent_path}
        return {
            "id": rec.id,
            "name": rec.name,
            "status": status,
            "actions": self.actions(rec, status),
            "image": rec.image,
            "args": rec.args,
            "disk": rec.disk,
            "mounts": mounts,
            "ports": list(rec.ports),
            "env": dict(rec.env),
            "registry": None,
            "gpu": {"id": rec.gpu_type_id, "count": rec.gpu_count},
            "cloud": rec.cloud,
            "dataCenterId": rec.data_center_id,
            "cudaVersion": rec.cuda_version,
            "ssh": {"proxy": None, "direct": direct},
            "template": None,
            "cost": 0.0 if status in ("EXITED", "TERMINATED") else price,
            "locked": rec.locked,
            "globalNetworking": networking,
            "runtime": runtime,
            "createdAt": iso_z(rec.created_at),
            "startedAt": iso_z(rec.started_at) if rec.started_at and status != "PROVISIONING" else None,
        }

    # -- internals -------------------------------------------------------

    def _started(self, rec: PodRecord, runtime: Runtime) -> PodRecord:
        """Return ``rec`` with what the backend made of it, started now (the container just started)."""
        now = self._clock()
        return rec.model_copy(
            update={
                "host_ports": dict(runtime.host_ports),
                "private_ip": runtime.private_ip,
                "global_ip": runtime.global_ip,
                "state": "RUNNING",
                "started_at": now,
                "boots": rec.boots + 1,
                "network_cut": False,
            }
        )

    def _get(self, pod_id: str) -> PodRecord:
        with self._lock:
            rec = self._records.get(pod_id)
        if rec is None:
            raise NotFound(f"pod {pod_id} not found")
        return rec

    def _commit(self, rec: PodRecord) -> None:
        with self._lock:
            self._records[rec.id] = rec
            self._store.put(rec)

    def _pod_lock(self, pod_id: str) -> threading.Lock:
        with self._lock:
            return self._pod_locks.setdefault(pod_id, threading.Lock())
