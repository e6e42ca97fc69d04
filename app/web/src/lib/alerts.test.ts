import { describe, expect, it } from "vitest";
import type { Alert } from "../api/types";
import { alertSince, alertText, bannerTone } from "./alerts";

function alert(severity: string, extra: Partial<Alert> = {}): Alert {
  return {
    name: "GpuopsSlurmNodeDown",
    severity,
    summary: "1 Slurm node(s) down",
    description: "slurmctld has counted 1 node(s) DOWN for 2 minutes.",
    labels: { alertname: "GpuopsSlurmNodeDown", severity },
    starts_at: "2026-12-05T01:23:11.000Z",
    fingerprint: "8a38da01ef71a0ad",
    receivers: ["web-app"],
    ...extra,
  };
}

describe("bannerTone", () => {
  it("is red when any alert is critical", () => {
    expect(bannerTone([alert("info"), alert("critical")])).toBe("bad");
  });
  it("is amber for warnings", () => {
    expect(bannerTone([alert("warning"), alert("info")])).toBe("warn");
  });
  it("is neutral for info alone", () => {
    expect(bannerTone([alert("info")])).toBe("info");
  });
});

describe("alertText", () => {
  it("shows the summary", () => {
    expect(alertText(alert("critical"))).toBe("1 Slurm node(s) down");
  });
  it("falls back to the name and pod", () => {
    const bare = alert("critical", { summary: "", name: "Custom", labels: { pod: "gpuops-1" } });
    expect(alertText(bare)).toBe("Custom (pod gpuops-1)");
    expect(alertText({ ...bare, labels: {} })).toBe("Custom");
  });
});

describe("alertSince", () => {
  it("gives the time for today and the date otherwise", () => {
    const start = "2026-12-05T01:23:11.000Z";
    expect(alertSince(start, new Date(start))).toMatch(/^since \d/);
    expect(alertSince(start, new Date("2026-12-09T01:00:00Z"))).toContain(new Date(start).toLocaleDateString());
  });
  it("keeps text that is not a date", () => {
    expect(alertSince("soon")).toBe("soon");
  });
});
