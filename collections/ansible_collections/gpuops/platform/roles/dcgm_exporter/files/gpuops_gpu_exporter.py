# Copyright: gpuops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpuops GPU exporter: dcgm-exporter's metrics, from NVML.

One file, run as ``python3 gpuops_gpu_exporter.py COMMAND``: Python 3.8+ and
its standard library; the ``nvml`` source needs nvidia-ml-py
(``pynvml``), which the gpuops.platform.dcgm_exporter role puts on
PYTHONPATH as a wheel.

It serves, on a loopback address only, the Prometheus text format with the
metric names, types, help strings and labels of NVIDIA's dcgm-exporter
(``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``,
``DCGM_FI_DRIVER_VERSION``, and ``hpc_job`` for GPUs that a job holds), for
every counter of dcgm-exporter's default list that NVML can supply, so that
dashboards and alerts work unchanged whichever backend runs on a pod.

Source: ``nvml``, the GPUs of this host through NVML (gpuops' local cloud,
whose pods have no GPU, gives its pods a stand-in NVML; see
images/nvidia-standin in the repository).

Job mapping (dcgm-exporter's ``--hpc-job-mapping-dir``): a directory with one
file per GPU index, holding the ids of the jobs on that GPU, one per line.
Every series of a GPU listed there is repeated once per job with an
``hpc_job`` label, as dcgm-exporter does.

Commands:

* ``serve``: run the HTTP server (``/metrics``, ``/health``).
* ``print``: write one scrape to stdout.
* ``dcgm-counters``: write dcgm-exporter's counters CSV (for the role's dcgm
  backend), without the profiling counters that ``dcgmi profile --list``
  (on stdin, with ``--profiling probe``) does not list.

The metric names are written here rather than through prometheus_client:
its text exposition renames every counter ``<name>_total``, which would
break name parity with dcgm-exporter (e.g. DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

VERSION = "1.0.0"
LOG = logging.getLogger("gpuops_gpu_exporter")

Number = Union[int, float]


@dataclass(frozen=True)
class Counter:
    """One row of dcgm-exporter's counters CSV, and where NVML gets it.

    ``nvml`` names the NVML call that supplies the value; empty where NVML
    has none (DCGM-only fields such as the profiling metrics).
    ``field_id`` is the DCGM field id of a profiling counter.
    """

    name: str
    type: str
    help: str
    nvml: str = ""
    field_id: int = 0

    @property
    def profiling(self) -> bool:
        return self.name.startswith("DCGM_FI_PROF_")


# dcgm-exporter's default list, etc/default-counters.csv of NVIDIA/dcgm-exporter
# at tag 4.5.3-4.8.2: every uncommented row, in its order, with its Prometheus
# type and help string. The repository's tests compare this table with that
# file, vendored unmodified (tests/unit/exporter/upstream/dcgm-exporter/).
DCGM_DEFAULT_COUNTERS: Tuple[Counter, ...] = (
    Counter("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).",
            "nvmlDeviceGetClockInfo(NVML_CLOCK_SM)"),
    Counter("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).",
            "nvmlDeviceGetClockInfo(NVML_CLOCK_MEM)"),
    Counter("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).",
            "nvmlDeviceGetFieldValues(NVML_FI_DEV_MEMORY_TEMP)"),
    Counter("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).",
            "nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)"),
    Counter("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).",
            "nvmlDeviceGetPowerUsage() / 1000"),
    Counter("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).",
            "nvmlDeviceGetTotalEnergyConsumption()"),
    Counter("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.",
            "nvmlDeviceGetPcieReplayCounter()"),
    Counter("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).",
            "nvmlDeviceGetUtilizationRates().gpu"),
    Counter("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).",
            "nvmlDeviceGetUtilizationRates().memory"),
    Counter("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).",
            "nvmlDeviceGetEncoderUtilization()[0]"),
    Counter("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).",
            "nvmlDeviceGetDecoderUtilization()[0]"),
    Counter("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.",
            "nvmlEventSetWait_v2(nvmlEventTypeXidCriticalError).eventData"),
    Counter("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).",
            "nvmlDeviceGetMemoryInfo(version=nvmlMemory_v2).free"),
    Counter("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).",
            "nvmlDeviceGetMemoryInfo(version=nvmlMemory_v2).used"),
    Counter("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).",
            "nvmlDeviceGetMemoryInfo(version=nvmlMemory_v2).reserved"),
    Counter("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", "Total number of NVLink bandwidth counters for all lanes.",
            "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_BANDWIDTH_C0_TOTAL)"),
    Counter("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status"),
    Counter("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors",
            "nvmlDeviceGetRemappedRows()[1]"),
    Counter("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors",
            "nvmlDeviceGetRemappedRows()[0]"),
    Counter("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed",
            "nvmlDeviceGetRemappedRows()[3]"),
    Counter("DCGM_FI_DRIVER_VERSION", "label", "Driver Version",
            "nvmlSystemGetDriverVersion()"),
    Counter("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.",
            field_id=1001),
    Counter("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.",
            field_id=1004),
    Counter("DCGM_FI_PROF_DRAM_ACTIVE", "gauge",
            "Ratio of cycles the device memory interface is active sending or receiving data.",
            field_id=1005),
    Counter("DCGM_FI_PROF_PCIE_TX_BYTES", "gauge",
            "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads"
            " - in bytes per second.",
            field_id=1009),
    Counter("DCGM_FI_PROF_PCIE_RX_BYTES", "gauge",
            "The rate of data received over the PCIe bus - including both protocol headers and data payloads"
            " - in bytes per second.",
            field_id=1010),
)

COUNTERS_BY_NAME: Dict[str, Counter] = {counter.name: counter for counter in DCGM_DEFAULT_COUNTERS}
# The metrics this exporter serves (label-type rows are labels, not series).
SERVED_COUNTERS: Tuple[Counter, ...] = tuple(c for c in DCGM_DEFAULT_COUNTERS if c.nvml and c.type != "label")
DRIVER_LABEL = "DCGM_FI_DRIVER_VERSION"
HPC_JOB_LABEL = "hpc_job"
INFO_METRIC = "gpuops_gpu_exporter_info"


# --------------------------------------------------------------------------
# dcgm-exporter's counters CSV (used by the role's dcgm backend)
# --------------------------------------------------------------------------

def profiling_fields_from_dcgmi(output: str) -> set:
    """Names of the profiling counters that ``dcgmi profile --list`` lists.

    dcgmi prints a table with a field id and a field tag per row (e.g.
    ``| A.1 | 1001 | gr_engine_active |``); on GPUs or hosts without
    profiling support it prints an error instead, and none is available.
    """
    ids = {int(match) for match in re.findall(r"\|\s*(\d{4})\s*\|", output)}
    tags = {tag.lower() for tag in re.findall(r"\|\s*\d{4}\s*\|\s*([A-Za-z0-9_]+)\s*\|", output)}
    available = set()
    for counter in DCGM_DEFAULT_COUNTERS:
        if not counter.profiling:
            continue
        tag = counter.name[len("DCGM_FI_PROF_"):].lower()
        if counter.field_id in ids or tag in tags:
            available.add(counter.name)
    return available


def dcgm_counters_csv(profiling: Optional[Iterable[str]] = None) -> str:
    """dcgm-exporter's counters CSV: the default rows, the profiling ones only if in ``profiling``.

    ``profiling=None`` keeps every profiling row.
    """
    keep = None if profiling is None else set(profiling)
    lines = [
        "# dcgm-exporter counters (gpuops): dcgm-exporter's default list,",
        "# profiling rows (DCGM_FI_PROF_*) only where DCGM can collect them.",
        "# DCGM FIELD, Prometheus metric type, help message",
    ]
    dropped = []
    for counter in DCGM_DEFAULT_COUNTERS:
        if counter.profiling and keep is not None and counter.name not in keep:
            dropped.append(counter.name)
            continue
        lines.append(f"{counter.name}, {counter.type}, {counter.help}")
    if dropped:
        lines.append("# Unavailable here (dcgmi profile --list does not list them): " + ", ".join(dropped))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Job mapping files
# --------------------------------------------------------------------------

def read_job_mapping(directory: Optional[str]) -> Dict[str, List[str]]:
    """GPU index (the file name, as text) -> job ids, from dcgm-exporter-style mapping files.

    Files whose name is not a number (such as a prolog's temporary files)
    and empty lines are ignored; a missing directory means no job.
    """
    mapping: Dict[str, List[str]] = {}
    if not directory:
        return mapping
    try:
        names = os.listdir(directory)
    except OSError:
        return mapping
    for name in names:
        if not name.isdigit():
            continue
        path = os.path.join(directory, name)
        try:
            if not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                jobs = [line.strip() for line in handle if line.strip()]
        except OSError:
            continue
        if jobs:
            mapping[name] = jobs
    return mapping


# --------------------------------------------------------------------------
# Devices and samples
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Device:
    """The identity labels of one GPU, as dcgm-exporter writes them."""

    index: int
    uuid: str
    pci_bus_id: str
    model: str


@dataclass
class Sample:
    """One scrape of one GPU: counter name -> value (missing = not available)."""

    device: Device
    values: Dict[str, Number] = field(default_factory=dict)


# --------------------------------------------------------------------------
# NVML source
# --------------------------------------------------------------------------

# Every pynvml name the NVML source uses (a unit test checks them against
# the real nvidia-ml-py).
NVML_API = (
    "nvmlInit", "nvmlShutdown", "nvmlSystemGetDriverVersion", "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetIndex", "nvmlDeviceGetName", "nvmlDeviceGetUUID",
    "nvmlDeviceGetPciInfo", "nvmlDeviceGetClockInfo", "nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetPcieReplayCounter", "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetEncoderUtilization", "nvmlDeviceGetDecoderUtilization", "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetFieldValues", "nvmlDeviceGetRemappedRows", "nvmlEventSetCreate", "nvmlDeviceRegisterEvents",
    "nvmlEventSetWait_v2", "nvmlEventSetFree", "NVMLError", "NVML_SUCCESS", "NVML_ERROR_TIMEOUT",
    "NVML_CLOCK_SM", "NVML_CLOCK_MEM", "NVML_TEMPERATURE_GPU", "NVML_FI_DEV_MEMORY_TEMP",
    "NVML_FI_DEV_NVLINK_BANDWIDTH_C0_TOTAL", "nvmlMemory_v2", "nvmlEventTypeXidCriticalError",
    "NVML_VALUE_TYPE_DOUBLE", "NVML_VALUE_TYPE_UNSIGNED_INT", "NVML_VALUE_TYPE_UNSIGNED_LONG",
    "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG", "NVML_VALUE_TYPE_SIGNED_LONG_LONG", "NVML_VALUE_TYPE_SIGNED_INT",
)

_MIB = 1024 * 1024


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _field_value(nvml, value) -> Optional[Number]:
    """The number in an nvmlFieldValue_t, or None when NVML returned an error for it."""
    if value.nvmlReturn != nvml.NVML_SUCCESS:
        return None
    member = {
        nvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
        nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
        nvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    }.get(value.valueType)
    return getattr(value.value, member) if member else None


class NvmlSource:
    """GPUs read through NVML (nvidia-ml-py)."""

    name = "nvml"

    def __init__(self, nvml=None, watch_xid: bool = True) -> None:
        if nvml is None:
            import pynvml as nvml  # pylint: disable=import-outside-toplevel
        self.nvml = nvml
        nvml.nvmlInit()
        self.driver_version = _text(nvml.nvmlSystemGetDriverVersion())
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        self.devices = [self._device(i, handle) for i, handle in enumerate(self.handles)]
        self._last_xid: Dict[int, int] = {}
        self._xid_supported = False
        self._stop = threading.Event()
        if watch_xid and self.handles:
            self._start_xid_watch()

    def _device(self, index: int, handle) -> Device:
        nvml = self.nvml
        try:
            bus_id = _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
        except nvml.NVMLError:
            bus_id = ""
        return Device(index, _text(nvml.nvmlDeviceGetUUID(handle)), bus_id, _text(nvml.nvmlDeviceGetName(handle)))

    def _start_xid_watch(self) -> None:
        """Record the last XID of each GPU from NVML's events (dcgm-exporter: last XID, 0 when none)."""
        nvml = self.nvml
        try:
            event_set = nvml.nvmlEventSetCreate()
            for handle in self.handles:
                nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, event_set)
        except nvml.NVMLError as exc:
            LOG.warning("XID events unavailable (%s): DCGM_FI_DEV_XID_ERRORS is not served", exc)
            return
        self._xid_supported = True
        thread = threading.Thread(target=self._watch_xid, args=(event_set,), name="xid-events", daemon=True)
        thread.start()

    def _watch_xid(self, event_set) -> None:
        nvml = self.nvml
        while not self._stop.is_set():
            try:
                event = nvml.nvmlEventSetWait_v2(event_set, 1000)
            except nvml.NVMLError as exc:
                if getattr(exc, "value", None) == nvml.NVML_ERROR_TIMEOUT:
                    continue
                LOG.warning("XID event watch stopped: %s", exc)
                self._xid_supported = False
                return
            try:
                index = nvml.nvmlDeviceGetIndex(event.device)
            except nvml.NVMLError:
                continue
            self._last_xid[index] = int(event.eventData)
            LOG.warning("XID %s on GPU %s", event.eventData, index)
        nvml.nvmlEventSetFree(event_set)

    def close(self) -> None:
        self._stop.set()

    def sample(self, jobs: Dict[str, List[str]]) -> List[Sample]:  # pylint: disable=unused-argument
        return [Sample(device, self._read(device.index, handle)) for device, handle in zip(self.devices, self.handles)]

    def _read(self, index: int, handle) -> Dict[str, Number]:
        nvml = self.nvml
        values: Dict[str, Number] = {}

        def put(name: str, read: Callable[[], Optional[Number]]) -> None:
            try:
                value = read()
            except nvml.NVMLError:
                return  # not supported on this GPU/driver: no series, as dcgm-exporter skips blank values
            if value is not None:
                values[name] = value

        put("DCGM_FI_DEV_SM_CLOCK", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        put("DCGM_FI_DEV_MEM_CLOCK", lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM))
        put("DCGM_FI_DEV_GPU_TEMP", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        put("DCGM_FI_DEV_POWER_USAGE", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)
        put("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        put("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", lambda: nvml.nvmlDeviceGetPcieReplayCounter(handle))
        try:
            rates = nvml.nvmlDeviceGetUtilizationRates(handle)
            values["DCGM_FI_DEV_GPU_UTIL"] = rates.gpu
            values["DCGM_FI_DEV_MEM_COPY_UTIL"] = rates.memory
        except nvml.NVMLError:
            pass
        put("DCGM_FI_DEV_ENC_UTIL", lambda: nvml.nvmlDeviceGetEncoderUtilization(handle)[0])
        put("DCGM_FI_DEV_DEC_UTIL", lambda: nvml.nvmlDeviceGetDecoderUtilization(handle)[0])
        if self._xid_supported:
            values["DCGM_FI_DEV_XID_ERRORS"] = self._last_xid.get(index, 0)
        values.update(self._memory(handle))
        try:
            fields = nvml.nvmlDeviceGetFieldValues(
                handle, [nvml.NVML_FI_DEV_MEMORY_TEMP, nvml.NVML_FI_DEV_NVLINK_BANDWIDTH_C0_TOTAL])
        except nvml.NVMLError:
            fields = []
        for name, value in zip(("DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL"), fields):
            number = _field_value(nvml, value)
            if number is not None:
                values[name] = number
        try:
            corrected, uncorrected, _pending, failed = nvml.nvmlDeviceGetRemappedRows(handle)
            values["DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS"] = corrected
            values["DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"] = uncorrected
            values["DCGM_FI_DEV_ROW_REMAP_FAILURE"] = failed
        except nvml.NVMLError:
            pass
        return values

    def _memory(self, handle) -> Dict[str, Number]:
        """Framebuffer in MiB; reserved only where the driver has the v2 memory info."""
        nvml = self.nvml
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2)
            return {"DCGM_FI_DEV_FB_FREE": info.free // _MIB, "DCGM_FI_DEV_FB_USED": info.used // _MIB,
                    "DCGM_FI_DEV_FB_RESERVED": info.reserved // _MIB}
        except (nvml.NVMLError, TypeError, AttributeError):
            pass
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
            return {"DCGM_FI_DEV_FB_FREE": info.free // _MIB, "DCGM_FI_DEV_FB_USED": info.used // _MIB}
        except nvml.NVMLError:
            return {}


# --------------------------------------------------------------------------
# Exposition
# --------------------------------------------------------------------------

def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: Number) -> str:
    # dcgm-exporter prints integer fields as integers and double fields with %f.
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return f"{value:f}"


def render(samples: Sequence[Sample], hostname: str, driver_version: str, jobs: Dict[str, List[str]],
           source: str) -> str:
    """The Prometheus text format (0.0.4) of one scrape, laid out as dcgm-exporter lays it out."""
    lines: List[str] = []
    for counter in SERVED_COUNTERS:
        series = []
        for sample in samples:
            if counter.name not in sample.values:
                continue
            device = sample.device
            labels = [
                ("gpu", str(device.index)),
                ("UUID", device.uuid),
                ("pci_bus_id", device.pci_bus_id),
                ("device", f"nvidia{device.index}"),
                ("modelName", device.model),
                ("Hostname", hostname),
                (DRIVER_LABEL, driver_version),
            ]
            value = _format_value(sample.values[counter.name])
            for job in jobs.get(str(device.index)) or [None]:
                all_labels = labels + ([(HPC_JOB_LABEL, job)] if job is not None else [])
                text = ",".join(f'{key}="{_escape_label(val)}"' for key, val in all_labels)
                series.append(f"{counter.name}{{{text}}} {value}")
        if series:
            lines.append(f"# HELP {counter.name} {_escape_help(counter.help)}")
            lines.append(f"# TYPE {counter.name} {counter.type}")
            lines.extend(series)
    lines.append(f"# HELP {INFO_METRIC} The gpuops GPU exporter and its device source (nvml).")
    lines.append(f"# TYPE {INFO_METRIC} gauge")
    lines.append(f'{INFO_METRIC}{{source="{source}",version="{VERSION}",Hostname="{_escape_label(hostname)}"}} 1')
    return "\n".join(lines) + "\n"


class Exporter:
    """A device source plus the job mapping: what one scrape returns."""

    def __init__(self, source, hostname: str, mapping_dir: Optional[str]) -> None:
        self.source = source
        self.hostname = hostname
        self.mapping_dir = mapping_dir

    def scrape(self) -> str:
        jobs = read_job_mapping(self.mapping_dir)
        samples = self.source.sample(jobs)
        return render(samples, self.hostname, self.source.driver_version, jobs, self.source.name)


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def make_handler(exporter: Exporter):
    class Handler(BaseHTTPRequestHandler):
        server_version = f"gpuops-gpu-exporter/{VERSION}"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    body, status, ctype = exporter.scrape().encode(), 200, CONTENT_TYPE
                except Exception as exc:  # pylint: disable=broad-except
                    LOG.exception("scrape failed")
                    body, status, ctype = f"scrape failed: {exc}\n".encode(), 500, "text/plain; charset=utf-8"
            elif path == "/health":
                body, status, ctype = b"OK\n", 200, "text/plain; charset=utf-8"
            elif path == "/":
                body = b"gpuops GPU exporter: see /metrics\n"
                status, ctype = 200, "text/plain; charset=utf-8"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            LOG.debug("%s %s", self.address_string(), format % args)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, port: int, handler) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        super().__init__((address, port), handler)


def check_loopback(address: str) -> None:
    """Refuse any address that is not a loopback address (the exporter is only reached through SSH)."""
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(
            f"refusing to listen on {address!r}: the GPU exporter binds a loopback address only "
            "(127.0.0.1 or ::1); Prometheus reaches it through an SSH tunnel."
        )


def make_source() -> NvmlSource:
    try:
        return NvmlSource()
    except ImportError as exc:
        raise SystemExit(
            f"cannot import pynvml ({exc}): put the nvidia-ml-py wheel on PYTHONPATH "
            "(the gpuops.platform.dcgm_exporter role does) or install nvidia-ml-py."
        ) from exc
    except Exception as exc:  # pylint: disable=broad-except  # pynvml.NVMLError and friends
        raise SystemExit(f"NVML could not be initialised ({exc}): is the NVIDIA driver loaded on this host?") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpuops_gpu_exporter", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--version", action="version", version=VERSION)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "print"):
        command = commands.add_parser(name, help="serve /metrics" if name == "serve" else "print one scrape")
        command.add_argument("--source", choices=("nvml",), default="nvml")
        command.add_argument("--hpc-job-mapping-dir", default="",
                             help="one file per GPU index holding the ids of the jobs on it")
        command.add_argument("--hostname", default=os.environ.get("NODE_NAME") or socket.gethostname(),
                             help="the Hostname label (default: $NODE_NAME, else the host name)")
        if name == "serve":
            command.add_argument("--address", default="127.0.0.1", help="loopback address to listen on")
            command.add_argument("--port", type=int, default=9400)
            command.add_argument("--log-level", default="INFO")
    counters = commands.add_parser("dcgm-counters", help="write dcgm-exporter's counters CSV")
    counters.add_argument("--profiling", choices=("all", "none", "probe"), default="all",
                          help="profiling rows: all, none, or those `dcgmi profile --list` (on stdin) lists")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "dcgm-counters":
        profiling = {"all": None, "none": ()}.get(args.profiling)
        if args.profiling == "probe":
            profiling = profiling_fields_from_dcgmi(sys.stdin.read())
        sys.stdout.write(dcgm_counters_csv(profiling))
        return 0
    if args.command == "print":
        exporter = Exporter(make_source(), args.hostname, args.hpc_job_mapping_dir)
        sys.stdout.write(exporter.scrape())
        exporter.source.close()
        return 0
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_loopback(args.address)
    exporter = Exporter(make_source(), args.hostname, args.hpc_job_mapping_dir)
    server = _Server(args.address, args.port, make_handler(exporter))

    def stop(signum, _frame):
        LOG.info("signal %s: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("serving %s GPUs (%s source) on %s:%s, job mapping from %s", len(exporter.source.devices),
             exporter.source.name, args.address, args.port, args.hpc_job_mapping_dir or "nowhere")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        exporter.source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
