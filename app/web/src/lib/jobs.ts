// Slurm job states and what the UI does with them.

/** States after which a job never changes again. */
export const FINISHED_STATES = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "OUT_OF_MEMORY",
  "SPECIAL_EXIT",
  "REVOKED",
]);

/** The states offered by the jobs filter. */
export const FILTER_STATES = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"] as const;

export type Tone = "ok" | "info" | "warn" | "bad" | "muted";

export function isFinished(state: string): boolean {
  return FINISHED_STATES.has(state.toUpperCase());
}

export function stateTone(state: string): Tone {
  switch (state.toUpperCase()) {
    case "COMPLETED":
      return "ok";
    case "RUNNING":
      return "info";
    case "PENDING":
    case "CONFIGURING":
    case "COMPLETING":
    case "SUSPENDED":
    case "REQUEUED":
      return "warn";
    case "CANCELLED":
      return "muted";
    default:
      return isFinished(state) ? "bad" : "muted";
  }
}

export function podTone(status: string): Tone {
  switch (status.toUpperCase()) {
    case "RUNNING":
      return "ok";
    case "EXITED":
      return "warn";
    case "TERMINATED":
      return "bad";
    default:
      return "muted";
  }
}

/** Prometheus range that covers the job from its start until now (1m..7d). */
export function jobHistoryRange(startTime: number | null, nowSeconds: number): string {
  if (startTime === null || startTime <= 0) return "15m";
  const seconds = Math.max(0, nowSeconds - startTime) + 60;
  const minutes = Math.min(Math.max(Math.ceil(seconds / 60), 1), 7 * 24 * 60);
  return `${minutes}m`;
}

/** Grafana's jobs dashboard filtered to one Slurm job. */
export function jobDashboardUrl(dashboard: string, jobId: number): string {
  const url = new URL(dashboard);
  url.searchParams.set("var-hpc_job", String(jobId));
  return url.href;
}
