// What the alert banner shows: one line per firing alert, the banner's tone
// from the most severe one.

import type { Alert } from "../api/types";

export type AlertTone = "bad" | "warn" | "info";

/** critical: red; warning: amber; anything else: neutral. */
export function bannerTone(alerts: readonly Alert[]): AlertTone {
  if (alerts.some((a) => a.severity === "critical")) return "bad";
  if (alerts.some((a) => a.severity === "warning")) return "warn";
  return "info";
}

/** The alert's summary, else its name with its pod (alerts of a rule without annotations). */
export function alertText(alert: Alert): string {
  if (alert.summary) return alert.summary;
  return alert.labels.pod ? `${alert.name} (pod ${alert.labels.pod})` : alert.name;
}

/** "since 12:03" for today, else the date too; the raw text when it is not a date. */
export function alertSince(startsAt: string, now: Date = new Date()): string {
  const at = new Date(startsAt);
  if (Number.isNaN(at.getTime())) return startsAt;
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return at.toDateString() === now.toDateString() ? `since ${time}` : `since ${at.toLocaleDateString()} ${time}`;
}
