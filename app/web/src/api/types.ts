// Shapes of the gpuops API (app/api) responses, as documented in the contract.

export interface Info {
  version: string;
  cloud: string;
  grafana_url: string | null;
  dashboards: Partial<Record<"fleet" | "jobs" | "slurm", string>>;
}

export type PodStatus = "RUNNING" | "EXITED" | "TERMINATED" | "UNKNOWN" | string;

export interface Pod {
  name: string;
  id: string;
  status: PodStatus;
  role: string;
  gpu_type: string;
  gpu_count: number;
  cost_per_hr: number;
  uptime_seconds: number | null;
  cost_so_far: number | null;
  public_ip: string | null;
  ssh_port: number | null;
}

export interface PodsResponse {
  pods: Pod[];
  cost_per_hr_total: number;
}

export interface Gpu {
  pod: string;
  gpu: string;
  uuid: string | null;
  model: string | null;
  util_percent: number | null;
  mem_used_mib: number | null;
  mem_total_mib: number | null;
  temp_c: number | null;
  power_w: number | null;
  hpc_job: string | null;
}

export interface GpusResponse {
  gpus: Gpu[];
}

export type Metric = "util_percent" | "mem_used_mib" | "temp_c" | "power_w";

export type Point = [number, number];

export interface Series {
  pod: string;
  gpu: string;
  metric: Metric | string;
  points: Point[];
}

export interface HistoryResponse {
  start: number;
  end: number;
  step: number;
  series: Series[];
}

export interface Job {
  id: number;
  name: string;
  user: string;
  state: string;
  reason: string | null;
  exit_code: number | null;
  nodes: string;
  node_count: number;
  /** GPUs of the whole job (per node × nodes), as Slurm allocated them. */
  gpus: number;
  partition: string | null;
  submit_time: number | null;
  start_time: number | null;
  end_time: number | null;
  time_limit_minutes: number | null;
  stdout_path: string | null;
  batch_host: string | null;
  /** USD per GPU-hour when the job was allocated, as Slurm's accounting recorded it. */
  usd_per_gpu_hour?: number | null;
  /** GPU-hours times usd_per_gpu_hour (up to now while the job runs). */
  cost_usd?: number | null;
  /** Times Slurm requeued the job (after a lost pod, or by hand). */
  requeues?: number;
  /** The node that failed under the job (requeued, or ended NODE_FAIL). */
  failed_node?: string | null;
}

export interface JobsResponse {
  jobs: Job[];
  total: number;
}

export interface JobSubmit {
  script: string;
  name: string;
  nodes: number;
  /** GPUs on each of the job's nodes (Slurm's --gpus-per-node); the job gets nodes × this many. */
  gpus_per_node: number;
  time_limit_minutes: number;
  partition: string | null;
}

export interface JobOutput {
  id: number;
  text: string;
  lines: number;
  truncated: boolean;
}

export interface CancelResponse {
  id: number;
  cancelled: boolean;
}

/** One firing alert (GET /api/v1/alerts), from the stack's Alertmanager. */
export interface Alert {
  name: string;
  severity: "critical" | "warning" | "info" | string;
  summary: string;
  description: string;
  labels: Record<string, string>;
  starts_at: string;
  fingerprint: string;
  receivers: string[];
}

export interface AlertsResponse {
  /** false: the API has no Alertmanager configured. */
  configured: boolean;
  /** Most severe first, then oldest first. */
  alerts: Alert[];
}
