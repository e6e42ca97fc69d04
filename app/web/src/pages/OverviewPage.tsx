// Fleet overview: pods with their cost, and one card per GPU with live charts.

import { Badge } from "../components/Badge";
import { Chart } from "../components/Chart";
import { GrafanaLink } from "../components/GrafanaLink";
import { Empty, ErrorBox, Loading } from "../components/States";
import { Link } from "react-router-dom";
import type { Gpu, HistoryResponse, Pod } from "../api/types";
import { formatDuration, formatMiB, formatMoney, formatNumber, formatPercent, formatRate } from "../lib/format";
import { podTone } from "../lib/jobs";
import { gpuKey, seriesByGpu } from "../lib/series";
import { usePolling } from "../lib/usePolling";
import { useApp, useDashboard } from "../state/AppContext";

const REFRESH_MS = 5_000;
const HISTORY_RANGE = "15m";

export function OverviewPage() {
  const { client } = useApp();
  const fleetDashboard = useDashboard("fleet");
  const pods = usePolling("pods", (signal) => client.pods(signal), REFRESH_MS);
  const gpus = usePolling("gpus", (signal) => client.gpus(signal), REFRESH_MS);
  const history = usePolling("history", (signal) => client.gpuHistory(HISTORY_RANGE, signal), REFRESH_MS);

  return (
    <>
      <div className="page-head">
        <h1>Fleet</h1>
        <GrafanaLink href={fleetDashboard} label="Fleet dashboard in Grafana" testId="grafana-fleet" />
      </div>

      <section className="card">
        <div className="section-head">
          <h2>Pods</h2>
          {pods.data ? (
            <div className="burn" data-testid="burn-rate">
              Burn rate <strong>{formatRate(pods.data.cost_per_hr_total)}</strong>
            </div>
          ) : null}
        </div>
        {pods.error ? <ErrorBox error={pods.error} what="the pods" stale={pods.data !== undefined} /> : null}
        {pods.data === undefined ? (
          pods.loading ? <Loading what="pods" /> : null
        ) : pods.data.pods.length === 0 ? (
          <Empty testId="pods-empty">
            No pods. Create them with <code>make provision</code> (or <code>ansible-playbook playbooks/provision.yml</code>).
          </Empty>
        ) : (
          <PodsTable pods={pods.data.pods} />
        )}
      </section>

      <section>
        <h2>GPUs</h2>
        {gpus.error ? <ErrorBox error={gpus.error} what="the GPU metrics" stale={gpus.data !== undefined} /> : null}
        {history.error && !gpus.error ? (
          <ErrorBox error={history.error} what="the GPU history" stale={history.data !== undefined} />
        ) : null}
        {gpus.data === undefined ? (
          gpus.loading ? <Loading what="GPU metrics" /> : null
        ) : gpus.data.gpus.length === 0 ? (
          <Empty testId="gpus-empty">
            No GPU metrics in Prometheus yet. Check that the exporters and tunnels are up (
            <code>playbooks/exporter.yml</code>, <code>playbooks/tunnel.yml</code>).
          </Empty>
        ) : (
          <div className="gpu-grid">
            {gpus.data.gpus.map((gpu) => (
              <GpuCard key={gpuKey(gpu.pod, gpu.gpu)} gpu={gpu} history={history.data} />
            ))}
          </div>
        )}
      </section>
    </>
  );
}

function PodsTable({ pods }: { pods: Pod[] }) {
  return (
    <div className="table-wrap">
      <table data-testid="pods-table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Role</th>
            <th>Status</th>
            <th>GPUs</th>
            <th className="num">Cost/hr</th>
            <th className="num">Uptime</th>
            <th className="num">Cost so far</th>
          </tr>
        </thead>
        <tbody>
          {pods.map((pod) => (
            <tr key={pod.id || pod.name} data-testid="pod-row" data-pod={pod.name}>
              <td>
                <span className="strong">{pod.name}</span>
                <div className="muted small">{pod.id}</div>
              </td>
              <td>{pod.role}</td>
              <td>
                <Badge value={pod.status} tone={podTone(pod.status)} testId="pod-status" />
              </td>
              <td>
                {pod.gpu_type} × {pod.gpu_count}
              </td>
              <td className="num">{formatMoney(pod.cost_per_hr)}</td>
              <td className="num">{formatDuration(pod.uptime_seconds)}</td>
              <td className="num">{formatMoney(pod.cost_so_far)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function GpuCard({ gpu, history }: { gpu: Gpu; history: HistoryResponse | undefined }) {
  const key = gpuKey(gpu.pod, gpu.gpu);
  const util = history ? (seriesByGpu(history.series, "util_percent").get(key) ?? []) : [];
  const mem = history ? (seriesByGpu(history.series, "mem_used_mib").get(key) ?? []) : [];
  return (
    <article className="card gpu-card" data-testid="gpu-card" data-gpu={key}>
      <header className="gpu-head">
        <div>
          <h3>
            {gpu.pod} · GPU {gpu.gpu}
          </h3>
          <div className="muted small">{gpu.model ?? "unknown model"}</div>
        </div>
        {gpu.hpc_job ? (
          <Link className="badge badge-info" to={`/jobs/${gpu.hpc_job}`} data-testid="gpu-job">
            job {gpu.hpc_job}
          </Link>
        ) : (
          <span className="badge badge-muted">idle</span>
        )}
      </header>
      <dl className="gpu-stats">
        <div>
          <dt>Utilisation</dt>
          <dd data-testid="gpu-util">{formatPercent(gpu.util_percent)}</dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd data-testid="gpu-mem">
            {formatMiB(gpu.mem_used_mib)} / {formatMiB(gpu.mem_total_mib)}
          </dd>
        </div>
        <div>
          <dt>Temperature</dt>
          <dd data-testid="gpu-temp">{formatNumber(gpu.temp_c, "°C")}</dd>
        </div>
        <div>
          <dt>Power</dt>
          <dd data-testid="gpu-power">{formatNumber(gpu.power_w, "W")}</dd>
        </div>
      </dl>
      <Chart
        title={`Utilisation, last ${HISTORY_RANGE}`}
        lines={[{ label: "util %", points: util }]}
        yMax={100}
        formatValue={(v) => `${Math.round(v)}%`}
        testId="gpu-util-chart"
      />
      <Chart
        title={`Memory used, last ${HISTORY_RANGE}`}
        lines={[{ label: "memory", points: mem }]}
        yMax={gpu.mem_total_mib}
        formatValue={formatMiB}
        testId="gpu-mem-chart"
      />
    </article>
  );
}
