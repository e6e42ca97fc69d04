// One job: state, times, output tail (live while it runs), its GPUs' usage,
// and Cancel while it has not finished.

import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { ApiError, describeError } from "../api/client";
import type { HistoryResponse, Job } from "../api/types";
import { Badge } from "../components/Badge";
import { Chart } from "../components/Chart";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { GrafanaLink } from "../components/GrafanaLink";
import { Empty, ErrorBox, Loading } from "../components/States";
import { formatDuration, formatMiB, formatMoney, formatRate, formatTimestamp, NONE } from "../lib/format";
import { isFinished, jobDashboardUrl, jobHistoryRange, stateTone } from "../lib/jobs";
import { seriesByGpu } from "../lib/series";
import { usePolling } from "../lib/usePolling";
import { useApp, useDashboard } from "../state/AppContext";

const ACTIVE_REFRESH_MS = 2_000;
const GPU_REFRESH_MS = 5_000;
const OUTPUT_LINES = 200;

export function JobDetailPage() {
  const { id: rawId = "" } = useParams();
  const id = /^\d+$/.test(rawId) ? Number(rawId) : null;
  if (id === null) {
    return (
      <Empty testId="job-bad-id">
        “{rawId}” is not a job id. <Link to="/jobs">Back to the jobs</Link>
      </Empty>
    );
  }
  return <JobDetail id={id} />;
}

function JobDetail({ id }: { id: number }) {
  const { client } = useApp();
  const jobsDashboard = useDashboard("jobs");
  const [finished, setFinished] = useState(false);
  // Polled every 2 s until it has finished; the change of interval fetches it once more.
  const job = usePolling(`job:${id}`, (signal) => client.job(id, signal), finished ? null : ACTIVE_REFRESH_MS);
  const nowFinished = job.data ? isFinished(job.data.state) : false;
  if (nowFinished !== finished) setFinished(nowFinished);

  const notFound = job.error instanceof ApiError && job.error.status === 404;

  return (
    <>
      <div className="page-head">
        <h1>
          Job {id}
          {job.data ? <span className="muted"> · {job.data.name}</span> : null}
        </h1>
        <div className="actions">
          {jobsDashboard ? (
            <GrafanaLink href={jobDashboardUrl(jobsDashboard, id)} label="Job dashboard in Grafana" testId="grafana-job" />
          ) : null}
          <Link to="/jobs">← Jobs</Link>
        </div>
      </div>
      {notFound ? (
        <Empty testId="job-not-found">
          Slurm does not know job {id}. Without an accounting database it forgets finished jobs a few minutes after
          they end. <Link to="/jobs">Back to the jobs</Link>
        </Empty>
      ) : (
        <>
          {job.error ? <ErrorBox error={job.error} what={`job ${id}`} stale={job.data !== undefined} /> : null}
          {job.data === undefined ? (
            job.loading ? <Loading what={`job ${id}`} /> : null
          ) : (
            <>
              <JobSummary job={job.data} onCancelled={job.refresh} />
              <JobOutputSection job={job.data} finished={finished} />
              <JobGpuSection job={job.data} finished={finished} />
            </>
          )}
        </>
      )}
    </>
  );
}

function JobSummary({ job, onCancelled }: { job: Job; onCancelled: () => void }) {
  const { client } = useApp();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const finished = isFinished(job.state);
  const now = Date.now() / 1000;
  const elapsed = job.start_time ? (job.end_time ?? now) - job.start_time : null;

  const cancel = async () => {
    setBusy(true);
    setCancelError(null);
    try {
      await client.cancelJob(job.id);
    } catch (error) {
      setCancelError(
        error instanceof ApiError && error.status === 409
          ? `Job ${job.id} had already finished.`
          : `Could not cancel job ${job.id}: ${describeError(error)}`,
      );
    } finally {
      setBusy(false);
      setConfirming(false);
      onCancelled();
    }
  };

  return (
    <section className="card">
      <div className="section-head">
        <div className="job-state-line">
          <Badge value={job.state} tone={stateTone(job.state)} testId="job-state" />
          {job.reason && job.reason !== "None" ? <span className="muted">reason: {job.reason}</span> : null}
        </div>
        {!finished ? (
          <button
            type="button"
            className="button button-danger"
            onClick={() => setConfirming(true)}
            data-testid="job-cancel"
          >
            Cancel job
          </button>
        ) : null}
      </div>
      {cancelError ? (
        <p className="state state-error" role="alert" data-testid="job-cancel-error">
          {cancelError}
        </p>
      ) : null}
      <dl className="facts">
        <div>
          <dt>Exit code</dt>
          <dd data-testid="job-exit-code">{job.exit_code ?? NONE}</dd>
        </div>
        <div>
          <dt>Nodes</dt>
          <dd data-testid="job-nodes">
            {job.nodes || NONE} ({job.node_count})
          </dd>
        </div>
        <div>
          <dt>GPUs (all nodes)</dt>
          <dd>{job.gpus}</dd>
        </div>
        <div>
          <dt>User / partition</dt>
          <dd>
            {job.user} / {job.partition ?? NONE}
          </dd>
        </div>
        <div>
          <dt>Submitted</dt>
          <dd>{formatTimestamp(job.submit_time)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{formatTimestamp(job.start_time)}</dd>
        </div>
        <div>
          <dt>Ended</dt>
          <dd>{formatTimestamp(job.end_time)}</dd>
        </div>
        <div>
          <dt>Elapsed / limit</dt>
          <dd>
            {formatDuration(elapsed)} / {job.time_limit_minutes ? formatDuration(job.time_limit_minutes * 60) : NONE}
          </dd>
        </div>
        <div>
          <dt>Cost</dt>
          <dd>
            {formatMoney(job.cost_usd)} ({job.gpus} GPU × {formatRate(job.usd_per_gpu_hour)})
          </dd>
        </div>
        {(job.requeues ?? 0) > 0 || job.failed_node ? (
          <div>
            <dt>Node failure</dt>
            <dd data-testid="job-node-failure">
              {job.failed_node ? `${job.failed_node} failed under it` : "no node failed"}
              {(job.requeues ?? 0) > 0 ? `; requeued ${job.requeues}×` : job.state === "NODE_FAIL" ? "; not requeued" : ""}
            </dd>
          </div>
        ) : null}
      </dl>
      <ConfirmDialog
        open={confirming}
        title={`Cancel job ${job.id}?`}
        confirmLabel="Cancel job"
        cancelLabel="Keep it"
        busy={busy}
        onConfirm={() => void cancel()}
        onClose={() => setConfirming(false)}
      >
        Slurm stops “{job.name}” on {job.nodes || "its nodes"}. This cannot be undone.
      </ConfirmDialog>
    </section>
  );
}

function JobOutputSection({ job, finished }: { job: Job; finished: boolean }) {
  const { client } = useApp();
  // While the job runs: every 2 s. When it has finished, the interval changes
  // and the tail is read once more (the last lines); then polling stops.
  const output = usePolling(
    `output:${job.id}`,
    (signal) => client.jobOutput(job.id, OUTPUT_LINES, signal),
    finished ? null : ACTIVE_REFRESH_MS,
    job.state !== "PENDING",
  );
  // 404: no output file (yet); 409: the job has not started.
  const missing = output.error instanceof ApiError && (output.error.status === 404 || output.error.status === 409);

  return (
    <section className="card">
      <div className="section-head">
        <h2>Output</h2>
        {output.data?.truncated ? <span className="muted small">last {output.data.lines} lines</span> : null}
      </div>
      {job.state === "PENDING" ? (
        <Empty testId="job-output-pending">No output yet: the job is waiting for resources.</Empty>
      ) : missing && output.data === undefined ? (
        <Empty testId="job-output-missing">No output file yet. {describeError(output.error)}</Empty>
      ) : (
        <>
          {output.error && !missing ? (
            <ErrorBox error={output.error} what="the output" stale={output.data !== undefined} />
          ) : null}
          {output.data === undefined ? (
            output.loading ? <Loading what="output" /> : null
          ) : (
            <pre className="output" data-testid="job-output">
              {output.data.text || "(no output yet)"}
            </pre>
          )}
        </>
      )}
    </section>
  );
}

function JobGpuSection({ job, finished }: { job: Job; finished: boolean }) {
  const { client } = useApp();
  const gpus = usePolling<HistoryResponse>(
    `jobgpus:${job.id}`,
    (signal) => client.jobGpus(job.id, jobHistoryRange(job.start_time, Date.now() / 1000), signal),
    finished ? null : GPU_REFRESH_MS,
    job.start_time !== null,
  );
  const util = gpus.data ? seriesByGpu(gpus.data.series, "util_percent") : new Map();
  const mem = gpus.data ? seriesByGpu(gpus.data.series, "mem_used_mib") : new Map();
  const toLines = (m: Map<string, [number, number][]>) =>
    [...m.entries()].map(([label, points]) => ({ label, points }));

  return (
    <section className="card">
      <h2>GPU usage</h2>
      {job.start_time === null ? (
        <Empty testId="job-gpus-pending">The job has not started.</Empty>
      ) : gpus.error ? (
        <ErrorBox error={gpus.error} what="the job's GPU usage" stale={gpus.data !== undefined} />
      ) : gpus.data === undefined ? (
        <Loading what="GPU usage" />
      ) : util.size === 0 && mem.size === 0 ? (
        <Empty testId="job-gpus-empty">
          {job.gpus === 0
            ? "This job asked for no GPUs (gpus = 0), so no GPU carries its id."
            : "No GPU samples carry this job's id (yet)."}
        </Empty>
      ) : (
        <div className="chart-pair" data-testid="job-gpu-charts">
          <Chart title="Utilisation" lines={toLines(util)} yMax={100} formatValue={(v) => `${Math.round(v)}%`} />
          <Chart title="Memory used" lines={toLines(mem)} formatValue={formatMiB} />
        </div>
      )}
    </section>
  );
}
