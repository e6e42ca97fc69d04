// Which upstreams are failing right now, from the outcome of recent API calls.
// A failing call (503 with "upstream", or no answer) records an issue under its
// call key; the next success of the same call clears it. Issues nobody has
// confirmed for a while (the page that made the call is gone) expire.

import type { ApiEvent } from "../api/client";

export interface Issue {
  upstream: string;
  detail: string;
  seenAt: number;
}

export type Issues = ReadonlyMap<string, Issue>;

export const ISSUE_MAX_AGE_MS = 30_000;

export function applyEvent(issues: Issues, event: ApiEvent, now: number): Issues {
  if (event.kind === "ok") {
    if (!issues.has(event.key)) return issues;
    const next = new Map(issues);
    next.delete(event.key);
    return next;
  }
  if (event.kind === "upstream") {
    const next = new Map(issues);
    next.set(event.key, { upstream: event.upstream, detail: event.detail, seenAt: now });
    return next;
  }
  return issues;
}

/** One entry per upstream (the most recent detail), newest first. */
export function activeIssues(issues: Issues, now: number, maxAgeMs = ISSUE_MAX_AGE_MS): Issue[] {
  const byUpstream = new Map<string, Issue>();
  for (const issue of issues.values()) {
    if (now - issue.seenAt > maxAgeMs) continue;
    const known = byUpstream.get(issue.upstream);
    if (!known || known.seenAt < issue.seenAt) byUpstream.set(issue.upstream, issue);
  }
  return [...byUpstream.values()].sort((a, b) => b.seenAt - a.seenAt);
}

/** A tiny external store for React's useSyncExternalStore. */
export class IssueStore {
  private issues: Issues = new Map();
  private readonly listeners = new Set<() => void>();

  report = (event: ApiEvent): void => {
    const next = applyEvent(this.issues, event, Date.now());
    if (next !== this.issues) {
      this.issues = next;
      this.listeners.forEach((listener) => listener());
    }
  };

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot = (): Issues => this.issues;
}
