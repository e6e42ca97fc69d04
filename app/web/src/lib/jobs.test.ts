import { describe, expect, it } from "vitest";
import { isFinished, jobDashboardUrl, jobHistoryRange, stateTone } from "./jobs";

describe("job states", () => {
  it("knows which states are final", () => {
    for (const s of ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"]) {
      expect(isFinished(s)).toBe(true);
    }
    for (const s of ["PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED"]) {
      expect(isFinished(s)).toBe(false);
    }
  });

  it("colours states", () => {
    expect(stateTone("COMPLETED")).toBe("ok");
    expect(stateTone("RUNNING")).toBe("info");
    expect(stateTone("PENDING")).toBe("warn");
    expect(stateTone("FAILED")).toBe("bad");
    expect(stateTone("TIMEOUT")).toBe("bad");
    expect(stateTone("CANCELLED")).toBe("muted");
  });
});

describe("jobHistoryRange", () => {
  it("covers the job from its start plus a minute", () => {
    expect(jobHistoryRange(1000, 1000 + 30)).toBe("2m");
    expect(jobHistoryRange(1000, 1000 + 3600)).toBe("61m");
  });

  it("falls back to 15m before the job started and caps at 7 days", () => {
    expect(jobHistoryRange(null, 5000)).toBe("15m");
    expect(jobHistoryRange(1, 30 * 86400)).toBe("10080m");
  });
});

describe("jobDashboardUrl", () => {
  it("adds the hpc_job variable", () => {
    expect(jobDashboardUrl("http://127.0.0.1:3000/d/gpuops-gpu-jobs", 42)).toBe(
      "http://127.0.0.1:3000/d/gpuops-gpu-jobs?var-hpc_job=42",
    );
    expect(jobDashboardUrl("http://g/d/x?orgId=1", 7)).toBe("http://g/d/x?orgId=1&var-hpc_job=7");
  });
});
