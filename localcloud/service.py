"""The pods: RunPod's rules, the records, and the calls to the backend.

The service owns the records. One lock guards the record table and the
state file (held only briefly); each pod has its own lock, held across the
slow backend calls, so different pods are worked on in parallel.

``publicIp`` and ``portMappings`` are null until the pod has been running
for ``ready_delay`` seconds, as on RunPod while a pod initialises, so
clients must poll for them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from localcloud import catalog
from localcloud.backends.base import Observed, PodBackend, Runtime
from localcloud.clock import Clock, iso_z, status_stamp
from localcloud.errors import BadRequest, NotFound
from localcloud.ids import new_machine_id, new_pod_id
from localcloud.logs import env_summary
from localcloud.models import GpuInfo, MachineInfo, Pod, PodCreateInput, PodUpdateInput
from localcloud.records import PodRecord
from localcloud.store import StateStore

log = logging.getLogger(__name__)

DEFAULT_DATA_CENTER = "LOCAL-1"
#: Fields whose change makes RunPod reset the pod (a new container).
RESET_FIELDS = (
    "image_name",
    "ports",
    "env",
    "container_disk_in_gb",
    "volume_in_gb",
    "volume_mount_path",
    "docker_entrypoint",
    "docker_start_cmd",
)
#: Fields of PodUpdateInput the local cloud applies (others are accepted and ignored).
UPDATABLE_FIELDS = (*RESET_FIELDS, "name", "locked", "global_networking")


@dataclass(frozen=True)
class PodFilters:
    """Query filters of ``GET /v1/pods`` (all optional)."""

    pod_id: str | None = None
    name: str | None = None
    image_name: str | None = None
    desired_status: str | None = None
    gpu_type_ids: tuple[str, ...] = ()
    data_center_ids: tuple[str, ...] = ()
    compute_type: str | None = None

    def match(self, rec: PodRecord) -> bool:
        """Return True if ``rec`` passes every filter given."""
        return (
            (self.pod_id is None or rec.id == self.pod_id)
            and (self.name is None or rec.name == self.name)
            and (self.image_name is None or rec.image_name == self.image_name)
            and (self.desired_status is None or rec.desired_status == self.desired_status)
            and (not self.gpu_type_ids or rec.gpu_type_id in self.gpu_type_ids)
            and (not self.data_center_ids or rec.data_center_id in self.data_center_ids)
            and self.compute_type in (None, "GPU")
        )


class PodService:
    """Create, read, change and delete pods; inject faults."""

    def __init__(self, backend: PodBackend, store: StateStore, *, clock: Clock, ready_delay: float) -> None:
        if ready_delay < 0:
            raise ValueError("ready_delay must be >= 0")
        self.backend = backend
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
                    status = "RUNNING" if seen.running else "EXITED"
                    adopted = seen.record.model_copy(update={"desired_status": status})
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
        if rec.desired_status == "RUNNING" and (seen is None or not seen.running):
            what = "vanished" if seen is None else "stopped"
            log.warning(f"container {what}; pod marked EXITED", extra={"fields": {"pod_id": rec.id}})
            return rec.model_copy(
                update={
                    "desired_status": "EXITED",
                    "last_status_change": f"Exited: container {what}: {status_stamp(now)}",
                }
            )
        if rec.desired_status == "EXITED" and seen is not None and seen.running:
            return rec.model_copy(update={"desired_status": "RUNNING"})
        return rec

    def refresh(self, pod_id: str | None = None) -> None:
        """Mark RUNNING pods whose container stopped behind our back as EXITED.

        Pods being worked on (their lock is held) are skipped.
        """
        observed = self.backend.observe(pod_id)
        if observed is None:
            return
        with self._lock:
            candidates = [r for r in self._records.values() if pod_id in (None, r.id) and r.desired_status == "RUNNING"]
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
                if current is not None and current.desired_status == "RUNNING":
                    self._commit(self._reconciled(current, seen, now))
            finally:
                lock.release()

    # -- queries ---------------------------------------------------------

    def count(self) -> int:
        """Return the number of pods."""
        return len(self._records)

    def list_pods(self, filters: PodFilters) -> list[Pod]:
        """Return the pods matching ``filters``, oldest first."""
        self.refresh()
        now = self._clock()
        with self._lock:
            records = [r for r in self._records.values() if filters.match(r)]
        return [self.render(r, now) for r in records]

    def get_pod(self, pod_id: str) -> Pod:
        """Return one pod (404 if unknown)."""
        self._get(pod_id)
        self.refresh(pod_id)
        return self.render(self._get(pod_id), self._clock())

    def record(self, pod_id: str) -> PodRecord:
        """Return the internal record of one pod (404 if unknown)."""
        return self._get(pod_id)

    # -- lifecycle -------------------------------------------------------

    def create(self, body: PodCreateInput) -> Pod:
        """Rent a pod: validate, create it in the backend, record it."""
        gpu, cloud = self._check_create(body)
        now = self._clock()
        image_name = body.image_name or ""
        runtime_image = self.backend.resolve_image(image_name)
        with self._lock:
            pod_id = new_pod_id()
            while pod_id in self._records:
                pod_id = new_pod_id()
        rec = PodRecord(
            id=pod_id,
            name=body.name,
            image_name=image_name,
            runtime_image=runtime_image,
            gpu_type_id=gpu.id,
            gpu_count=body.gpu_count,
            cloud_type=cloud,
            interruptible=body.interruptible,
            support_public_ip=True if body.support_public_ip is None else body.support_public_ip,
            ports=body.ports,
            env=body.env,
            container_disk_in_gb=body.container_disk_in_gb or 50,
            volume_in_gb=body.volume_in_gb or 0,
            volume_mount_path=body.volume_mount_path,
            docker_entrypoint=body.docker_entrypoint,
            docker_start_cmd=body.docker_start_cmd,
            locked=body.locked,
            global_networking=body.global_networking,
            desired_status="RUNNING",
            created_at=now,
            last_status_change=f"Rented by User: {status_stamp(now)}",
            machine_id=new_machine_id(),
            data_center_id=(body.data_center_ids or [DEFAULT_DATA_CENTER])[0],
            vcpu_count=gpu.vcpu_per_gpu * body.gpu_count,
            memory_in_gb=gpu.ram_per_gpu_gb * body.gpu_count,
            cost_per_hr=catalog.pod_cost_per_hr(gpu, body.gpu_count, cloud, body.interruptible),
        )
        with self._pod_lock(pod_id):
            try:
                runtime = self.backend.create(rec)
            except BaseException:
                with self._lock:
                    self._pod_locks.pop(pod_id, None)
                raise
            rec = self._with_runtime(rec, runtime, started=True)
            self._commit(rec)
        log.info(
            "pod created",
            extra={
                "fields": {
                    "pod_id": pod_id,
                    "gpu_type_id": gpu.id,
                    "gpu_count": rec.gpu_count,
                    "cloud_type": cloud,
                    "interruptible": rec.interruptible,
                    "image": image_name,
                    "runtime_image": runtime_image,
                    "host_ports": rec.host_ports,
                    "ignored_fields": body.ignored_fields(),
                    **env_summary(rec.env),
                }
            },
        )
        return self.render(rec, self._clock())

    def update(self, pod_id: str, body: PodUpdateInput) -> Pod:
        """Apply ``PATCH /v1/pods/{podId}``; a change to image, env, ports or disks resets the pod."""
        given = body.model_dump(exclude_unset=True)
        changes = {k: v for k, v in given.items() if k in UPDATABLE_FIELDS and v is not None}
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            needs_reset = any(k in changes and changes[k] != getattr(rec, k) for k in RESET_FIELDS)
            if needs_reset and rec.locked and changes.get("locked") is not False:
                raise BadRequest(f"pod {pod_id} is locked; set locked to false to change what resets it")
            if "image_name" in changes and changes["image_name"] != rec.image_name:
                changes["runtime_image"] = self.backend.resolve_image(changes["image_name"])
            new = PodRecord.model_validate({**rec.model_dump(), **changes})
            if needs_reset:
                running = new.desired_status == "RUNNING"
                runtime = self.backend.recreate(new, start=running)
                new = self._with_runtime(new, runtime, started=running)
                new = new.model_copy(
                    update={"network_cut": False, "last_status_change": f"Reset by User: {status_stamp(self._clock())}"}
                )
            self._commit(new)
        log.info(
            "pod updated",
            extra={"fields": {"pod_id": pod_id, "changed": sorted(changes), "reset": needs_reset}},
        )
        return self.render(new, self._clock())

    def delete(self, pod_id: str) -> None:
        """Terminate a pod: remove it from the backend and forget it."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            self.backend.remove(rec)
            with self._lock:
                self._records.pop(pod_id, None)
                self._store.remove(pod_id)
                self._pod_locks.pop(pod_id, None)
        log.info("pod deleted", extra={"fields": {"pod_id": pod_id}})

    def stop(self, pod_id: str) -> Pod:
        """Stop a pod (desiredStatus EXITED); stopping a stopped pod changes nothing."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            if rec.desired_status == "RUNNING":
                if rec.locked:
                    raise BadRequest(f"pod {pod_id} is locked; unlock it before stopping it")
                self.backend.stop(rec)
                change = f"Exited by User: {status_stamp(self._clock())}"
                rec = rec.model_copy(update={"desired_status": "EXITED", "last_status_change": change})
                self._commit(rec)
                log.info("pod stopped", extra={"fields": {"pod_id": pod_id}})
        return self.render(rec, self._clock())

    def start(self, pod_id: str) -> Pod:
        """Start a stopped pod (desiredStatus RUNNING); starting a running pod changes nothing."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            if rec.desired_status != "RUNNING":
                runtime = self.backend.start(rec)
                rec = self._with_runtime(rec, runtime, started=True)
                rec = rec.model_copy(update={"last_status_change": f"Started by User: {status_stamp(self._clock())}"})
                self._commit(rec)
                log.info("pod started", extra={"fields": {"pod_id": pod_id, "host_ports": rec.host_ports}})
        return self.render(rec, self._clock())

    def restart(self, pod_id: str) -> Pod:
        """Restart a pod in place (a stopped pod is started)."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            running = rec.desired_status == "RUNNING"
            runtime = self.backend.restart(rec) if running else self.backend.start(rec)
            rec = self._with_runtime(rec, runtime, started=True)
            rec = rec.model_copy(update={"last_status_change": f"Restarted by User: {status_stamp(self._clock())}"})
            self._commit(rec)
        log.info("pod restarted", extra={"fields": {"pod_id": pod_id}})
        return self.render(rec, self._clock())

    def reset(self, pod_id: str) -> Pod:
        """Reset a pod: a fresh container from the same settings, started."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            if rec.locked:
                raise BadRequest(f"pod {pod_id} is locked; unlock it before resetting it")
            runtime = self.backend.recreate(rec, start=True)
            rec = self._with_runtime(rec, runtime, started=True)
            rec = rec.model_copy(
                update={"network_cut": False, "last_status_change": f"Reset by User: {status_stamp(self._clock())}"}
            )
            self._commit(rec)
        log.info("pod reset", extra={"fields": {"pod_id": pod_id}})
        return self.render(rec, self._clock())

    # -- fault injection -------------------------------------------------

    def interrupt(self, pod_id: str) -> PodRecord:
        """Preempt a running pod as a spot reclaim does: killed, EXITED."""
        with self._pod_lock(pod_id):
            rec = self._get(pod_id)
            if rec.desired_status != "RUNNING":
                raise BadRequest(f"pod {pod_id} is not running (desiredStatus {rec.desired_status})")
            self.backend.interrupt(rec)
            rec = rec.model_copy(
                update={
                    "desired_status": "EXITED",
                    "last_status_change": f"Interrupted: spot instance reclaimed: {status_stamp(self._clock())}",
                }
            )
            self._commit(rec)
        log.info("fault: pod interrupted", extra={"fields": {"pod_id": pod_id}})
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

    def is_ready(self, rec: PodRecord, now: datetime) -> bool:
        """Return True once a RUNNING pod has run for the ready delay (it then shows publicIp/portMappings)."""
        if rec.desired_status != "RUNNING" or rec.last_started_at is None:
            return False
        return (now - rec.last_started_at).total_seconds() >= self._ready_delay

    def render(self, rec: PodRecord, now: datetime) -> Pod:
        """Return the RunPod view of a record at time ``now``."""
        gpu = catalog.get_gpu_type(rec.gpu_type_id)
        if gpu is None:  # the catalog lost a type a recorded pod still has
            gpu = catalog.GpuType(rec.gpu_type_id, rec.gpu_type_id, 0, 0, 0, 0, 0, 1, 1)
        ready = self.is_ready(rec, now)
        price = gpu.price_per_gpu(rec.cloud_type, rec.interruptible)
        gpu_info = _gpu_info(gpu, rec.gpu_count)
        return Pod(
            id=rec.id,
            name=rec.name,
            desired_status=rec.desired_status,
            public_ip=self.backend.public_ip if ready else None,
            port_mappings=dict(rec.host_ports) if ready else None,
            cost_per_hr=rec.cost_per_hr,
            adjusted_cost_per_hr=rec.cost_per_hr,
            gpu=gpu_info,
            gpu_count=rec.gpu_count,
            machine=MachineInfo(
                gpu_type_id=gpu.id,
                gpu_type=gpu_info.model_copy(update={"count": None}),
                gpu_display_name=gpu.display_name,
                gpu_available=max(catalog.MAX_GPUS_PER_POD - rec.gpu_count, 0),
                cpu_count=rec.vcpu_count,
                data_center_id=rec.data_center_id,
                secure_cloud=rec.cloud_type == "SECURE",
                support_public_ip=rec.support_public_ip,
                cost_per_hr=rec.cost_per_hr,
                current_price_per_gpu=price,
            ),
            machine_id=rec.machine_id,
            image=rec.image_name,
            image_name=rec.image_name,
            env=dict(rec.env),
            interruptible=rec.interruptible,
            locked=rec.locked,
            ports=list(rec.ports),
            container_disk_in_gb=rec.container_disk_in_gb,
            volume_in_gb=rec.volume_in_gb,
            volume_mount_path=rec.volume_mount_path,
            memory_in_gb=rec.memory_in_gb,
            vcpu_count=rec.vcpu_count,
            docker_entrypoint=list(rec.docker_entrypoint),
            docker_start_cmd=list(rec.docker_start_cmd),
            created_at=iso_z(rec.created_at),
            last_started_at=iso_z(rec.last_started_at) if rec.last_started_at else None,
            last_status_change=rec.last_status_change,
        )

    # -- internals -------------------------------------------------------

    def _check_create(self, body: PodCreateInput) -> tuple[catalog.GpuType, catalog.CloudType]:
        if body.compute_type != "GPU":
            raise BadRequest("computeType: only GPU pods are supported by localcloud")
        if body.network_volume_id:
            raise BadRequest("networkVolumeId: network volumes are not supported by localcloud")
        if not body.image_name:
            if body.template_id:
                raise BadRequest("imageName: required; templates (templateId) are not supported by localcloud")
            raise BadRequest('imageName: required, e.g. "runpod/base:0.6.2-cuda12.2.0"')
        if not body.gpu_type_ids:
            raise BadRequest('gpuTypeIds: required for GPU pods, e.g. ["NVIDIA GeForce RTX 4090"]')
        unknown = [g for g in body.gpu_type_ids if catalog.get_gpu_type(g) is None]
        if unknown:
            raise BadRequest(
                f"gpuTypeIds: unknown GPU type {', '.join(repr(u) for u in unknown)}; "
                "use RunPod's ids, e.g. 'NVIDIA GeForce RTX 4090' (GET /_localcloud/gpu-types lists them)"
            )
        if body.gpu_count > catalog.MAX_GPUS_PER_POD:
            raise BadRequest(f"gpuCount: at most {catalog.MAX_GPUS_PER_POD} GPUs per pod, got {body.gpu_count}")
        gpu = catalog.GPU_TYPES[body.gpu_type_ids[0]]
        cloud: catalog.CloudType = "COMMUNITY" if body.cloud_type == "ALL" else body.cloud_type
        return gpu, cloud

    def _with_runtime(self, rec: PodRecord, runtime: Runtime, *, started: bool) -> PodRecord:
        update: dict[str, Any] = {"host_ports": dict(runtime.host_ports), "private_ip": runtime.private_ip}
        if started:
            update.update(desired_status="RUNNING", last_started_at=self._clock())
        return rec.model_copy(update=update)

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


def _gpu_info(gpu: catalog.GpuType, count: int) -> GpuInfo:
    return GpuInfo(
        id=gpu.id,
        count=count,
        display_name=gpu.display_name,
        memory_in_gb=gpu.memory_in_gb,
        secure_price=gpu.secure_price,
        community_price=gpu.community_price,
        secure_spot_price=gpu.secure_spot_price,
        community_spot_price=gpu.community_spot_price,
        one_week_price=round(gpu.secure_price * 0.95, 2),
        one_month_price=round(gpu.secure_price * 0.9, 2),
        three_month_price=round(gpu.secure_price * 0.85, 2),
        six_month_price=round(gpu.secure_price * 0.8, 2),
    )
