// The one place the frontend talks to the gpuops API. Every call reports its
// outcome as an ApiEvent so the app can show (and clear) the upstream banner
// and return to the token form on 401.

import type {
  AlertsResponse,
  CancelResponse,
  GpusResponse,
  HistoryResponse,
  Info,
  Job,
  JobOutput,
  JobsResponse,
  JobSubmit,
  PodsResponse,
} from "./types";

/** The API answered with an error status. */
export class ApiError extends Error {
  readonly status: number;
  readonly detail: string;
  /** Set on 503 answers: which system behind the API failed. */
  readonly upstream: string | null;
  /** Per-field messages from a 422 validation error, keyed by body field. */
  readonly fieldErrors: Record<string, string>;

  constructor(status: number, detail: string, upstream: string | null, fieldErrors: Record<string, string> = {}) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.upstream = upstream;
    this.fieldErrors = fieldErrors;
  }
}

/** 401: the token is missing, wrong or was rotated. */
export class UnauthorizedError extends ApiError {
  constructor(detail: string) {
    super(401, detail, null);
    this.name = "UnauthorizedError";
  }
}

/** No HTTP answer at all: API down, wrong apiBase, CORS refusal or timeout. */
export class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnreachableError";
  }
}

/** The name the banner uses for the API itself when it cannot be reached. */
export const API_UPSTREAM = "gpuops-api";

export type ApiEvent =
  | { kind: "ok"; key: string }
  | { kind: "upstream"; key: string; upstream: string; detail: string }
  | { kind: "unauthorized"; detail: string };

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  apiBase: string;
  getToken: () => string | null;
  fetchFn?: FetchFn;
  onEvent?: (event: ApiEvent) => void;
  timeoutMs?: number;
}

type Query = Record<string, string | number | null | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
}

/** FastAPI/pydantic 422 details are a list of {loc, msg}; others a string. */
export function parseErrorDetail(detail: unknown): { message: string; fieldErrors: Record<string, string> } {
  if (typeof detail === "string") {
    // gpuops-api flattens 422s into "body field 'name': msg; body field 'nodes': msg".
    const fieldErrors: Record<string, string> = {};
    for (const match of detail.matchAll(/body field '([^'.]+)[^']*': ([^;]+)/g)) {
      const [, field, message] = match;
      if (field && message && !(field in fieldErrors)) fieldErrors[field] = message.trim();
    }
    return { message: detail, fieldErrors };
  }
  if (Array.isArray(detail)) {
    const fieldErrors: Record<string, string> = {};
    const messages: string[] = [];
    for (const item of detail) {
      if (!item || typeof item !== "object") continue;
      const { loc, msg } = item as { loc?: unknown; msg?: unknown };
      const text = typeof msg === "string" ? msg : JSON.stringify(item);
      const path = Array.isArray(loc) ? loc.filter((part) => part !== "body") : [];
      const field = path.length > 0 ? String(path[0]) : "";
      if (field && !(field in fieldErrors)) fieldErrors[field] = text;
      messages.push(field ? `${path.join(".")}: ${text}` : text);
    }
    return { message: messages.join("; ") || "The request was rejected.", fieldErrors };
  }
  if (detail === undefined || detail === null) {
    return { message: "", fieldErrors: {} };
  }
  return { message: JSON.stringify(detail), fieldErrors: {} };
}

export function buildUrl(apiBase: string, path: string, query?: Query): string {
  const url = new URL(apiBase.replace(/\/+$/, "") + path);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(key, String(value));
    }
  }
  return url.href;
}

export class ApiClient {
  readonly apiBase: string;
  private readonly getToken: () => string | null;
  private readonly fetchFn: FetchFn;
  private readonly onEvent: (event: ApiEvent) => void;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    this.apiBase = options.apiBase.replace(/\/+$/, "");
    this.getToken = options.getToken;
    this.fetchFn = options.fetchFn ?? ((input, init) => fetch(input, init));
    this.onEvent = options.onEvent ?? (() => undefined);
    this.timeoutMs = options.timeoutMs ?? 20_000;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const key = `${method} ${path}`;
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers["Content-Type"] = "application/json";

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const onAbort = () => controller.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });

    let response: Response;
    try {
      response = await this.fetchFn(buildUrl(this.apiBase, path, options.query), {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: controller.signal,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      if (options.signal?.aborted) throw error; // the caller gave up: not an outage
      const why = timedOut
        ? `no answer within ${Math.round(this.timeoutMs / 1000)} s`
        : error instanceof Error
          ? error.message
          : String(error);
      const detail = `${this.apiBase} (${why}). Is the gpuops-api container running?`;
      this.onEvent({ kind: "upstream", key, upstream: API_UPSTREAM, detail });
      throw new UnreachableError(`${API_UPSTREAM} is unreachable: ${detail}`);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }

    const payload: unknown = await response.json().catch(() => undefined);
    if (response.ok) {
      this.onEvent({ kind: "ok", key });
      return payload as T;
    }

    const body = (payload && typeof payload === "object" ? payload : {}) as { detail?: unknown; upstream?: unknown };
    const { message, fieldErrors } = parseErrorDetail(body.detail);
    const detail = message || `${method} ${path} failed with HTTP ${response.status}`;
    if (response.status === 401) {
      this.onEvent({ kind: "unauthorized", detail });
      throw new UnauthorizedError(detail);
    }
    const upstream = typeof body.upstream === "string" ? body.upstream : null;
    if (response.status === 503 && upstream) {
      this.onEvent({ kind: "upstream", key, upstream, detail });
    } else {
      // The API answered: whatever was wrong with this call is not an outage.
      this.onEvent({ kind: "ok", key });
    }
    throw new ApiError(response.status, detail, upstream, fieldErrors);
  }

  info(signal?: AbortSignal): Promise<Info> {
    return this.request("GET", "/api/v1/info", { signal });
  }

  alerts(signal?: AbortSignal): Promise<AlertsResponse> {
    return this.request("GET", "/api/v1/alerts", { signal });
  }

  pods(signal?: AbortSignal): Promise<PodsResponse> {
    return this.request("GET", "/api/v1/pods", { signal });
  }

  gpus(signal?: AbortSignal): Promise<GpusResponse> {
    return this.request("GET", "/api/v1/gpus", { signal });
  }

  gpuHistory(range: string, signal?: AbortSignal): Promise<HistoryResponse> {
    return this.request("GET", "/api/v1/gpus/history", { query: { range }, signal });
  }

  jobs(params: { state?: string; limit: number; offset: number }, signal?: AbortSignal): Promise<JobsResponse> {
    return this.request("GET", "/api/v1/jobs", { query: params, signal });
  }

  job(id: number, signal?: AbortSignal): Promise<Job> {
    return this.request("GET", `/api/v1/jobs/${id}`, { signal });
  }

  submitJob(body: JobSubmit, signal?: AbortSignal): Promise<{ id: number }> {
    return this.request("POST", "/api/v1/jobs", { body, signal });
  }

  cancelJob(id: number, signal?: AbortSignal): Promise<CancelResponse> {
    return this.request("DELETE", `/api/v1/jobs/${id}`, { signal });
  }

  jobOutput(id: number, lines: number, signal?: AbortSignal): Promise<JobOutput> {
    return this.request("GET", `/api/v1/jobs/${id}/output`, { query: { lines }, signal });
  }

  jobGpus(id: number, range: string, signal?: AbortSignal): Promise<HistoryResponse> {
    return this.request("GET", `/api/v1/jobs/${id}/gpus`, { query: { range }, signal });
  }
}

/** A sentence for the user about any error a call can throw. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 503 && error.upstream) return `${error.upstream} is unreachable: ${error.detail}`;
    return `${error.detail} (HTTP ${error.status})`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
