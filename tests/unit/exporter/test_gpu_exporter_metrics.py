"""The collection's GPU exporter speaks dcgm-exporter: names, types, help, labels, format.

Checked against dcgm-exporter's default counter list (etc/default-counters.csv
of NVIDIA/dcgm-exporter at a pinned tag, vendored in upstream/dcgm-exporter/;
test_dcgm_default_counters.py compares the table with it) and with
prometheus_client's own parser.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pynvml
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpu_exporter_helpers import DCGM_LABELS, read_counters_csv

# The default counters NVML can supply (everything but DCGM's own vGPU
# licence field and the profiling metrics), and the driver version as a label.
NVML_SUPPLIED = {
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_ROW_REMAP_FAILURE",
}
HOST = "pod-abc"


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def scrape(exporter_module, source, mapping_dir=None) -> str:
    return exporter_module.Exporter(source, HOST, str(mapping_dir) if mapping_dir else None).scrape()


def series(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def gpu_value(text: str, name: str, gpu: int) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for sample in family.samples:
                if sample.labels["gpu"] == str(gpu):
                    return sample.value
    raise AssertionError(f"no {name} for GPU {gpu}")


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

def test_nvml_supplies_every_default_counter_it_can(exporter):
    supplied = {c.name for c in exporter.DCGM_DEFAULT_COUNTERS if c.nvml}
    assert supplied == NVML_SUPPLIED | {"DCGM_FI_DRIVER_VERSION"}
    assert {c.name for c in exporter.SERVED_COUNTERS} == NVML_SUPPLIED
    # Every profiling counter knows its DCGM field id (for the dcgm backend's probe).
    assert all(c.field_id > 1000 for c in exporter.DCGM_DEFAULT_COUNTERS if c.profiling)


def test_every_nvml_name_the_exporter_uses_exists_in_nvidia_ml_py(exporter):
    missing = [name for name in exporter.NVML_API if not hasattr(pynvml, name)]
    assert missing == []
    # And every call the table names is one of them.
    calls = {re.match(r"\w+", c.nvml).group(0) for c in exporter.DCGM_DEFAULT_COUNTERS if c.nvml}
    assert calls <= set(exporter.NVML_API)


# --------------------------------------------------------------------------
# Exposition
# --------------------------------------------------------------------------

def test_exposition_has_dcgm_exporters_names_types_and_labels(exporter, default_counters, tmp_path):
    types = {name: kind for name, kind, _help in default_counters}
    helps = {name: text for name, _kind, text in default_counters}
    source = exporter.NvmlSource(FakeNvml(xid=True, older_second=False))
    try:
        text = scrape(exporter, source, tmp_path)
    finally:
        source.close()
    parsed = families(text)
    for counter in exporter.SERVED_COUNTERS:
        family = parsed[counter.name]
        assert family.type == types[counter.name], counter.name
        assert family.documentation == helps[counter.name]
        assert len(family.samples) == 2, counter.name
        for sample in family.samples:
            assert list(sample.labels) == DCGM_LABELS
            assert sample.labels["Hostname"] == HOST
            assert sample.labels["device"] == f"nvidia{sample.labels['gpu']}"
            assert sample.labels["modelName"] in ("NVIDIA H100 80GB HBM3", "Tesla V100-SXM2-16GB")
            assert re.fullmatch(r"GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", sample.labels["UUID"])
            assert re.fullmatch(r"[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-9]", sample.labels["pci_bus_id"])
    # The label-type row is a label, not a series; profiling and vGPU rows are not served.
    assert "DCGM_FI_DRIVER_VERSION" not in parsed
    assert not [name for name in parsed if name.startswith("DCGM_FI_PROF_")]
    assert "DCGM_FI_DEV_VGPU_LICENSE_STATUS" not in parsed


def test_counters_keep_dcgm_exporters_bare_names(exporter):
    # prometheus_client would expose "<name>_total"; dcgm-exporter does not.
    text = scrape(exporter, exporter.NvmlSource(FakeNvml()))
    for counter in (c for c in exporter.SERVED_COUNTERS if c.type == "counter"):
        assert f"# TYPE {counter.name} counter" in text
        assert series(text, counter.name), counter.name
        assert not series(text, counter.name + "_total")


def test_values_are_formatted_like_dcgm_exporters(exporter):
    text = scrape(exporter, exporter.NvmlSource(FakeNvml()))
    # Integer fields print as integers, double fields (power) with six decimals.
    assert re.search(r"^DCGM_FI_DEV_GPU_UTIL\{[^}]*\} \d+$", text, re.M)
    assert re.search(r"^DCGM_FI_DEV_POWER_USAGE\{[^}]*\} \d+\.\d{6}$", text, re.M)


def test_label_values_are_escaped(exporter):
    device = exporter.Device(0, "GPU-x", "00000000:01:00.0", 'odd "name"\\with\nnewline')
    sample = exporter.Sample(device, {"DCGM_FI_DEV_GPU_UTIL": 5})
    text = exporter.render([sample], HOST, "550.1", {"0": ['job"1']}, "nvml")
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "DCGM_FI_DEV_GPU_UTIL"]
    assert family.samples[0].labels["modelName"] == 'odd "name"\\with\nnewline'
    assert family.samples[0].labels["hpc_job"] == 'job"1'


def test_info_metric_names_the_source(exporter):
    text = scrape(exporter, exporter.NvmlSource(FakeNvml()))
    (sample,) = families(text)["gpuops_gpu_exporter_info"].samples
    assert sample.labels["source"] == "nvml" and sample.value == 1


# --------------------------------------------------------------------------
# hpc_job from the mapping files
# --------------------------------------------------------------------------

def test_hpc_job_label_comes_from_the_mapping_files(exporter, tmp_path):
    (tmp_path / "1").write_text("4242\n")
    text = scrape(exporter, exporter.NvmlSource(FakeNvml()), tmp_path)
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "DCGM_FI_DEV_GPU_UTIL"]
    labels = {s.labels["gpu"]: s.labels for s in family.samples}
    assert "hpc_job" not in labels["0"]
    assert labels["1"]["hpc_job"] == "4242"
    assert list(labels["1"]) == DCGM_LABELS + ["hpc_job"]


def test_one_series_per_job_as_dcgm_exporter(exporter, tmp_path):
    (tmp_path / "0").write_text("7\n\n8\n")
    text = scrape(exporter, exporter.NvmlSource(FakeNvml()), tmp_path)
    gpu0 = [line for line in series(text, "DCGM_FI_DEV_GPU_UTIL") if 'gpu="0"' in line]
    jobs = sorted(re.findall(r'hpc_job="(\d+)"', "\n".join(gpu0)))
    assert jobs == ["7", "8"]


def test_mapping_reader_ignores_what_is_not_a_gpu_file(exporter, tmp_path):
    (tmp_path / "0").write_text("11\n")
    (tmp_path / ".0.12.345").write_text("12\n")  # a prolog's temporary file
    (tmp_path / "notes").write_text("13\n")
    (tmp_path / "2").mkdir()
    (tmp_path / "3").write_text("\n")
    assert exporter.read_job_mapping(str(tmp_path)) == {"0": ["11"]}
    assert exporter.read_job_mapping(str(tmp_path / "missing")) == {}
    assert exporter.read_job_mapping("") == {}


def test_only_the_nvml_source_exists(exporter, capsys):
    """Simulated GPUs are the local cloud's business (its pod images' stand-in NVML), not the exporter's."""
    with pytest.raises(SystemExit) as exc:
        exporter.main(["print", "--source", "sim"])
    assert exc.value.code == 2
    assert "invalid choice: 'sim'" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Loopback only, and the HTTP server
# --------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.5", "pod.example", ""])
def test_non_loopback_addresses_are_refused(exporter, address):
    with pytest.raises(SystemExit) as exc:
        exporter.check_loopback(address)
    assert "loopback address only" in str(exc.value)


def test_serve_refuses_a_public_address_before_binding(exporter, tmp_path):
    with pytest.raises(SystemExit) as exc:
        exporter.main(["serve", "--source", "nvml", "--address", "0.0.0.0", "--port", "0"])
    assert "refusing to listen on '0.0.0.0'" in str(exc.value)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_addresses_are_accepted(exporter, address):
    exporter.check_loopback(address)


def test_http_server_serves_metrics_on_loopback(exporter, tmp_path):
    (tmp_path / "0").write_text("31\n")
    source = exporter.NvmlSource(FakeNvml())
    server = exporter._Server("127.0.0.1", 0, exporter.make_handler(exporter.Exporter(source, HOST, str(tmp_path))))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = response.read().decode()
        assert 'hpc_job="31"' in "\n".join(series(text, "DCGM_FI_DEV_GPU_UTIL"))
        assert families(text)["DCGM_FI_DEV_GPU_UTIL"].samples[0].value == 77
        with urllib.request.urlopen(base + "/health", timeout=10) as response:
            assert response.read() == b"OK\n"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/nope", timeout=10)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------
# dcgm backend: the counters CSV
# --------------------------------------------------------------------------

DCGMI_PROFILE_LIST = """\
+----------------+----------+------------------------------------------------------+
| Group.Subgroup | Field ID | Field Tag                                            |
+----------------+----------+------------------------------------------------------+
| A.1            | 1002     | sm_active                                            |
| A.1            | 1003     | sm_occupancy                                         |
| A.1            | 1004     | tensor_active                                        |
| A.1            | 1007     | fp32_active                                          |
| A.2            | 1006     | fp64_active                                          |
| A.3            | 1008     | fp16_active                                          |
| B.0            | 1005     | dram_active                                          |
| C.0            | 1009     | pcie_tx_bytes                                        |
| C.0            | 1010     | pcie_rx_bytes                                        |
| D.0            | 1001     | gr_engine_active                                     |
+----------------+----------+------------------------------------------------------+
"""


def test_counters_csv_keeps_every_default_row_by_default(exporter, default_counters):
    rows = read_counters_csv(exporter.dcgm_counters_csv())
    assert rows == default_counters


def test_counters_csv_drops_profiling_rows_where_dcgm_lists_none(exporter, default_counters):
    text = exporter.dcgm_counters_csv(())
    rows = read_counters_csv(text)
    assert rows == [row for row in default_counters if not row[0].startswith("DCGM_FI_PROF_")]
    assert "Unavailable here" in text and "DCGM_FI_PROF_DRAM_ACTIVE" in text


def test_counters_csv_keeps_the_profiling_rows_dcgmi_lists(exporter, default_counters):
    available = exporter.profiling_fields_from_dcgmi(DCGMI_PROFILE_LIST)
    assert available == {
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
        "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
    }
    partial = exporter.profiling_fields_from_dcgmi("| D.0 | 1001 | gr_engine_active |\n")
    rows = read_counters_csv(exporter.dcgm_counters_csv(partial))
    assert [r[0] for r in rows if r[0].startswith("DCGM_FI_PROF_")] == ["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]
    assert len(rows) == len(default_counters) - 4


@pytest.mark.parametrize("output", [
    "Error: Unable to Get supported metric groups: This request is serviced by a module of DCGM that is not "
    "currently loaded.",
    "Error: Unable to get metric groups. Return: The third-party Profiling module returned an unrecoverable error.",
    "",
])
def test_dcgmi_errors_leave_no_profiling_row(exporter, output):
    assert exporter.profiling_fields_from_dcgmi(output) == set()


def test_counters_command_reads_dcgmi_on_stdin(exporter, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", SimpleNamespace(read=lambda: "| B.0 | 1005 | dram_active |\n"))
    assert exporter.main(["dcgm-counters", "--profiling", "probe"]) == 0
    rows = read_counters_csv(capsys.readouterr().out)
    assert [r[0] for r in rows if r[0].startswith("DCGM_FI_PROF_")] == ["DCGM_FI_PROF_DRAM_ACTIVE"]


# --------------------------------------------------------------------------
# NVML source (a fake NVML with nvidia-ml-py's constants and errors)
# --------------------------------------------------------------------------

class FakeNvml:
    """The part of pynvml the exporter uses, for two GPUs of which the second is older."""

    def __init__(self, xid: bool = False, older_second: bool = True) -> None:
        for name in dir(pynvml):
            if name.startswith(("NVML_", "nvmlMemory_v", "nvmlEventType")) or name == "NVMLError":
                setattr(self, name, getattr(pynvml, name))
        self.xid = xid
        self.older = {"h1"} if older_second else set()
        self.events = [SimpleNamespace(device="h0", eventData=79)] if xid else []

    def _unsupported(self):
        return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def nvmlInit(self): pass
    def nvmlShutdown(self): pass
    def nvmlSystemGetDriverVersion(self): return b"550.127.05"
    def nvmlDeviceGetCount(self): return 2
    def nvmlDeviceGetHandleByIndex(self, index): return f"h{index}"
    def nvmlDeviceGetIndex(self, handle): return int(handle[1:])
    def nvmlDeviceGetName(self, handle): return "NVIDIA H100 80GB HBM3" if handle == "h0" else b"Tesla V100-SXM2-16GB"
    def nvmlDeviceGetUUID(self, handle): return f"GPU-0000000{handle[1]}-aaaa-bbbb-cccc-dddddddddddd"
    def nvmlDeviceGetPciInfo(self, handle): return SimpleNamespace(busId=f"00000000:1{handle[1]}:00.0")
    def nvmlDeviceGetClockInfo(self, handle, kind): return 1980 if kind == pynvml.NVML_CLOCK_SM else 2619
    def nvmlDeviceGetTemperature(self, handle, sensor): return 41
    def nvmlDeviceGetPowerUsage(self, handle): return 123456  # mW
    def nvmlDeviceGetTotalEnergyConsumption(self, handle): return 987654321
    def nvmlDeviceGetPcieReplayCounter(self, handle): return 2
    def nvmlDeviceGetUtilizationRates(self, handle): return SimpleNamespace(gpu=77, memory=33)
    def nvmlDeviceGetEncoderUtilization(self, handle): return (4, 167000)
    def nvmlDeviceGetDecoderUtilization(self, handle): return (5, 167000)

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        if version is not None and handle in self.older:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        info = SimpleNamespace(total=80 * 2**30, free=60 * 2**30, used=19 * 2**30)
        if version is not None:
            info.reserved = 2**30
        return info

    def nvmlDeviceGetFieldValues(self, handle, field_ids):
        values = []
        for field_id in field_ids:
            ok = handle not in self.older or field_id == pynvml.NVML_FI_DEV_MEMORY_TEMP
            values.append(SimpleNamespace(
                fieldId=field_id, valueType=pynvml.NVML_VALUE_TYPE_UNSIGNED_INT,
                nvmlReturn=pynvml.NVML_SUCCESS if ok else pynvml.NVML_ERROR_NOT_SUPPORTED,
                value=SimpleNamespace(uiVal=48 if field_id == pynvml.NVML_FI_DEV_MEMORY_TEMP else 1234)))
        return values

    def nvmlDeviceGetRemappedRows(self, handle):
        if handle in self.older:
            raise self._unsupported()
        return (3, 1, 0, 0)

    def nvmlEventSetCreate(self):
        if not self.xid:
            raise self._unsupported()
        return "events"

    def nvmlDeviceRegisterEvents(self, handle, types, event_set): pass

    def nvmlEventSetWait_v2(self, event_set, timeout_ms):
        if self.events:
            return self.events.pop()
        time.sleep(0.01)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def nvmlEventSetFree(self, event_set): pass


def test_fake_nvml_covers_what_the_exporter_calls(exporter):
    fake = FakeNvml()
    assert [name for name in exporter.NVML_API if not hasattr(fake, name)] == []


def test_nvml_source_reads_dcgm_exporters_units(exporter):
    source = exporter.NvmlSource(FakeNvml())
    text = scrape(exporter, source)
    parsed = families(text)
    labels = parsed["DCGM_FI_DEV_GPU_UTIL"].samples[0].labels
    assert labels == {
        "gpu": "0", "UUID": "GPU-00000000-aaaa-bbbb-cccc-dddddddddddd", "pci_bus_id": "00000000:10:00.0",
        "device": "nvidia0", "modelName": "NVIDIA H100 80GB HBM3", "Hostname": HOST,
        "DCGM_FI_DRIVER_VERSION": "550.127.05",
    }
    assert gpu_value(text, "DCGM_FI_DEV_GPU_UTIL", 0) == 77
    assert gpu_value(text, "DCGM_FI_DEV_MEM_COPY_UTIL", 0) == 33
    assert gpu_value(text, "DCGM_FI_DEV_POWER_USAGE", 0) == pytest.approx(123.456)  # W, from mW
    assert gpu_value(text, "DCGM_FI_DEV_FB_USED", 0) == 19 * 1024  # MiB
    assert gpu_value(text, "DCGM_FI_DEV_FB_RESERVED", 0) == 1024
    assert gpu_value(text, "DCGM_FI_DEV_MEMORY_TEMP", 0) == 48
    assert gpu_value(text, "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", 0) == 1234
    assert gpu_value(text, "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 0) == 3
    assert gpu_value(text, "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", 0) == 1
    assert gpu_value(text, "DCGM_FI_DEV_ENC_UTIL", 0) == 4
    assert parsed["DCGM_FI_DEV_GPU_UTIL"].samples[1].labels["modelName"] == "Tesla V100-SXM2-16GB"
    # What the older GPU cannot tell is left out, as dcgm-exporter skips blank values.
    assert len(parsed["DCGM_FI_DEV_FB_RESERVED"].samples) == 1
    assert len(parsed["DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL"].samples) == 1
    assert len(parsed["DCGM_FI_DEV_ROW_REMAP_FAILURE"].samples) == 1
    assert len(parsed["DCGM_FI_DEV_MEMORY_TEMP"].samples) == 2
    # No XID events where NVML has none to give.
    assert "DCGM_FI_DEV_XID_ERRORS" not in parsed


def test_nvml_source_reports_the_last_xid(exporter):
    source = exporter.NvmlSource(FakeNvml(xid=True))
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not source._last_xid:
            time.sleep(0.01)
        text = scrape(exporter, source)
        assert gpu_value(text, "DCGM_FI_DEV_XID_ERRORS", 0) == 79
        assert gpu_value(text, "DCGM_FI_DEV_XID_ERRORS", 1) == 0
    finally:
        source.close()


def test_nvml_source_adds_hpc_job_too(exporter, tmp_path):
    (tmp_path / "1").write_text("555\n")
    text = scrape(exporter, exporter.NvmlSource(FakeNvml()), tmp_path)
    jobs = {s.labels["gpu"]: s.labels.get("hpc_job") for s in families(text)["DCGM_FI_DEV_SM_CLOCK"].samples}
    assert jobs == {"0": None, "1": "555"}
