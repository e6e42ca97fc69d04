// Slurm jobs: filter by state, page through, open one, or submit a new one.

import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { Badge } from "../components/Badge";
import { GrafanaLink } from "../components/GrafanaLink";
import { Empty, ErrorBox, Loading } from "../components/States";
import { formatTimestamp, NONE } from "../lib/format";
import { FILTER_STATES, stateTone } from "../lib/jobs";
import { usePolling } from "../lib/usePolling";
import { useApp, useDashboard } from "../state/AppContext";

export const PAGE_SIZE = 20;
const REFRESH_MS = 5_000;

export function JobsPage() {
  const { client } = useApp();
  const slurmDashboard = useDashboard("slurm");
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const state = params.get("state") ?? "";
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const offset = (page - 1) * PAGE_SIZE;

  const jobs = usePolling(
    `jobs:${state}:${offset}`,
    (signal) => client.jobs({ state: state || undefined, limit: PAGE_SIZE, offset }, signal),
    REFRESH_MS,
  );

  const update = (next: { state?: string; page?: number }) => {
    const p = new URLSearchParams(params);
    if (next.state !== undefined) {
      if (next.state) p.set("state", next.state);
      else p.delete("state");
      p.delete("page");
    }
    if (next.page !== undefined) {
      if (next.page > 1) p.set("page", String(next.page));
      else p.delete("page");
    }
    setParams(p);
  };

  const total = jobs.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));

  return (
    <>
      <div className="page-head">
        <h1>Jobs</h1>
        <div className="actions">
          <GrafanaLink href={slurmDashboard} label="Slurm dashboard in Grafana" testId="grafana-slurm" />
          <Link className="button" to="/jobs/new" data-testid="submit-job-link">
            Submit job
          </Link>
        </div>
      </div>
      <section className="card">
        <div className="toolbar">
          <label htmlFor="state-filter">State</label>
          <select
            id="state-filter"
            value={state}
            onChange={(e) => update({ state: e.target.value })}
            data-testid="jobs-state-filter"
          >
            <option value="">All states</option>
            {FILTER_STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          {jobs.data ? (
            <span className="muted" data-testid="jobs-count">
              {total === 0
                ? "no jobs"
                : `${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} of ${total}`}
            </span>
          ) : null}
        </div>
        {jobs.error ? <ErrorBox error={jobs.error} what="the jobs" stale={jobs.data !== undefined} /> : null}
        {jobs.data === undefined ? (
          jobs.loading ? <Loading what="jobs" /> : null
        ) : jobs.data.jobs.length === 0 ? (
          <Empty testId="jobs-empty">
            {state ? `No ${state} jobs.` : "No jobs yet."} Submit one with the button above. Slurm forgets finished jobs
            after a few minutes (no accounting database).
          </Empty>
        ) : (
          <div className="table-wrap">
            <table data-testid="jobs-table">
              <thead>
                <tr>
                  <th>ID</th>
                  <th>Name</th>
                  <th>State</th>
                  <th>User</th>
                  <th>Nodes</th>
                  <th className="num">GPUs (total)</th>
                  <th>Submitted</th>
                  <th className="num">Exit</th>
                </tr>
              </thead>
              <tbody>
                {jobs.data.jobs.map((job) => (
                  <tr
                    key={job.id}
                    className="clickable"
                    data-testid="job-row"
                    data-job-id={job.id}
                    onClick={() => navigate(`/jobs/${job.id}`)}
                  >
                    <td>
                      <Link to={`/jobs/${job.id}`} onClick={(e) => e.stopPropagation()}>
                        {job.id}
                      </Link>
                    </td>
                    <td>{job.name}</td>
                    <td>
                      <Badge value={job.state} tone={stateTone(job.state)} />
                    </td>
                    <td>{job.user}</td>
                    <td>{job.nodes || NONE}</td>
                    <td className="num">{job.gpus}</td>
                    <td>{formatTimestamp(job.submit_time)}</td>
                    <td className="num">{job.exit_code ?? NONE}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {jobs.data && total > PAGE_SIZE ? (
          <nav className="pager" aria-label="Pages" data-testid="jobs-pager">
            <button
              type="button"
              className="button button-secondary"
              disabled={page <= 1}
              onClick={() => update({ page: page - 1 })}
              data-testid="jobs-prev"
            >
              ← Newer
            </button>
            <span>
              Page {page} of {pages}
            </span>
            <button
              type="button"
              className="button button-secondary"
              disabled={page >= pages}
              onClick={() => update({ page: page + 1 })}
              data-testid="jobs-next"
            >
              Older →
            </button>
          </nav>
        ) : null}
      </section>
    </>
  );
}
