// Runtime configuration: /config.js (written at deploy time) defines
// window.GPUOPS_CONFIG = {"apiBase": "http://127.0.0.1:8081"}.

export interface GpuopsConfig {
  apiBase: string;
}

declare global {
  interface Window {
    GPUOPS_CONFIG?: unknown;
  }
}

export const DEFAULT_API_BASE = "http://127.0.0.1:8081";

export interface ResolvedConfig {
  config: GpuopsConfig;
  /** A message for the user when the configuration was missing or unusable. */
  warning: string | null;
}

/** Validate the object /config.js defined; fall back to the default API address. */
export function resolveConfig(raw: unknown): ResolvedConfig {
  const fallback = (why: string): ResolvedConfig => ({
    config: { apiBase: DEFAULT_API_BASE },
    warning: `${why}; using the default API address ${DEFAULT_API_BASE}.`,
  });
  if (raw === undefined || raw === null) {
    return fallback("/config.js did not define window.GPUOPS_CONFIG");
  }
  if (typeof raw !== "object") {
    return fallback("window.GPUOPS_CONFIG is not an object");
  }
  const apiBase = (raw as { apiBase?: unknown }).apiBase;
  if (typeof apiBase !== "string" || apiBase.trim() === "") {
    return fallback("window.GPUOPS_CONFIG.apiBase is missing");
  }
  let url: URL;
  try {
    url = new URL(apiBase.trim());
  } catch {
    return fallback(`window.GPUOPS_CONFIG.apiBase "${apiBase}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fallback(`window.GPUOPS_CONFIG.apiBase "${apiBase}" is not an http(s) URL`);
  }
  return { config: { apiBase: url.href.replace(/\/+$/, "") }, warning: null };
}
