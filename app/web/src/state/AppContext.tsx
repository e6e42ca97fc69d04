// What every page needs: the API client, /api/v1/info (Grafana links) and the
// upstream issues that drive the banner.

import { createContext, useContext, useSyncExternalStore } from "react";
import type { ApiClient } from "../api/client";
import type { Info } from "../api/types";
import type { IssueStore, Issues } from "./upstreamIssues";

export interface AppContextValue {
  client: ApiClient;
  info: Info | undefined;
  issues: IssueStore;
  forgetToken: () => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error("useApp outside AppContext");
  return value;
}

export function useIssues(): Issues {
  const { issues } = useApp();
  return useSyncExternalStore(issues.subscribe, issues.snapshot);
}

/** A Grafana dashboard URL, or null when Grafana is not deployed. */
export function useDashboard(name: "fleet" | "jobs" | "slurm"): string | null {
  const { info } = useApp();
  if (!info?.grafana_url) return null;
  return info.dashboards?.[name] ?? null;
}
