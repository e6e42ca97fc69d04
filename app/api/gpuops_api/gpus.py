"""GPU metrics (dcgm-exporter's names and labels) read from Prometheus."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import UpstreamError

#: API name -> dcgm-exporter metric.
FIELDS = {
    "util_percent": "DCGM_FI_DEV_GPU_UTIL",
    "mem_used_mib": "DCGM_FI_DEV_FB_USED",
    "temp_c": "DCGM_FI_DEV_GPU_TEMP",
    "power_w": "DCGM_FI_DEV_POWER_USAGE",
}
FB_FREE = "DCGM_FI_DEV_FB_FREE"
_METRIC_OF = {metric: name for name, metric in FIELDS.items()}


def selector(metrics: list[str], job_id: int | None = None) -> str:
    names = "|".join(sorted(m.removeprefix("DCGM_FI_DEV_") for m in metrics))
    job = f',hpc_job="{int(job_id)}"' if job_id is not None else ""
    return f'{{__name__=~"DCGM_FI_DEV_({names})"{job}}}'


GPU_QUERY = selector([*FIELDS.values(), FB_FREE])
HISTORY_METRICS = list(FIELDS.values())


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _labels(series: dict[str, Any]) -> dict[str, str]:
    metric = series.get("metric")
    if not isinstance(metric, dict):
        raise UpstreamError("prometheus", "Prometheus sent a series without labels")
    return {str(k): str(v) for k, v in metric.items()}


def _pod(labels: dict[str, str]) -> str:
    # `pod` is the scrape target's label (the pod's name); Hostname the exporter's own.
    return labels.get("pod") or labels.get("Hostname") or labels.get("instance", "")


@dataclass
class GpuRow:
    pod: str
    gpu: str
    uuid: str | None = None
    model: str | None = None
    hpc_job: str | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    stamp: float = 0.0


def gpu_rows(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (pod, gpu) from an instant query of GPU_QUERY."""
    rows: dict[tuple[str, str], GpuRow] = {}
    for series in result:
        labels = _labels(series)
        value = series.get("value")
        if not isinstance(value, list) or len(value) != 2:
            continue
        key = (_pod(labels), labels.get("gpu", ""))
        row = rows.setdefault(key, GpuRow(*key))
        stamp = _number(value[0]) or 0.0
        row.uuid = labels.get("UUID") or row.uuid
        row.model = labels.get("modelName") or row.model
        if stamp >= row.stamp:
            row.hpc_job = labels.get("hpc_job") or None
            row.stamp = stamp
        row.values[labels.get("__name__", "")] = _number(value[1])
    out = []
    for (pod, gpu), row in sorted(rows.items(), key=lambda item: (item[0][0], _index(item[0][1]))):
        used, free = row.values.get(FIELDS["mem_used_mib"]), row.values.get(FB_FREE)
        out.append({
            "pod": pod,
            "gpu": gpu,
            "uuid": row.uuid,
            "model": row.model,
            "util_percent": row.values.get(FIELDS["util_percent"]),
            "mem_used_mib": used,
            "mem_total_mib": used + free if used is not None and free is not None else None,
            "temp_c": row.values.get(FIELDS["temp_c"]),
            "power_w": row.values.get(FIELDS["power_w"]),
            "hpc_job": row.hpc_job,
        })
    return out


def _index(gpu: str) -> tuple[int, str]:
    return (int(gpu), "") if gpu.isdigit() else (1 << 30, gpu)


def history_series(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One series per (pod, gpu, metric) from a range query; series that differ only by hpc_job are joined."""
    merged: dict[tuple[str, str, str], dict[float, float]] = {}
    for series in result:
        labels = _labels(series)
        name = _METRIC_OF.get(labels.get("__name__", ""))
        values = series.get("values")
        if name is None or not isinstance(values, list):
            continue
        points = merged.setdefault((_pod(labels), labels.get("gpu", ""), name), {})
        for point in values:
            if isinstance(point, list) and len(point) == 2:
                stamp, number = _number(point[0]), _number(point[1])
                if stamp is not None and number is not None:
                    points[stamp] = number
    order = list(FIELDS)
    return [
        {"pod": pod, "gpu": gpu, "metric": metric, "points": [[stamp, points[stamp]] for stamp in sorted(points)]}
        for (pod, gpu, metric), points in sorted(merged.items(),
                                                 key=lambda i: (i[0][0], _index(i[0][1]), order.index(i[0][2])))
    ]
