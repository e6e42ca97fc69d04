import { describe, expect, it } from "vitest";
import { activeIssues, applyEvent, ISSUE_MAX_AGE_MS, type Issues } from "./upstreamIssues";

const down = (key: string, upstream: string, detail = "down") =>
  ({ kind: "upstream", key, upstream, detail }) as const;

describe("upstream issues", () => {
  it("shows an issue until the same call succeeds again", () => {
    let issues: Issues = new Map();
    issues = applyEvent(issues, down("GET /api/v1/jobs", "slurmrestd"), 1000);
    issues = applyEvent(issues, { kind: "ok", key: "GET /api/v1/gpus" }, 1500);
    expect(activeIssues(issues, 2000).map((i) => i.upstream)).toEqual(["slurmrestd"]);
    issues = applyEvent(issues, { kind: "ok", key: "GET /api/v1/jobs" }, 3000);
    expect(activeIssues(issues, 3000)).toEqual([]);
  });

  it("lists each upstream once with its latest detail", () => {
    let issues: Issues = new Map();
    issues = applyEvent(issues, down("GET /api/v1/jobs", "slurmrestd", "old"), 1000);
    issues = applyEvent(issues, down("GET /api/v1/jobs/1", "slurmrestd", "new"), 2000);
    issues = applyEvent(issues, down("GET /api/v1/gpus", "prometheus"), 1500);
    expect(activeIssues(issues, 2500)).toEqual([
      { upstream: "slurmrestd", detail: "new", seenAt: 2000 },
      { upstream: "prometheus", detail: "down", seenAt: 1500 },
    ]);
  });

  it("forgets issues nobody has confirmed recently", () => {
    const issues = applyEvent(new Map(), down("GET /api/v1/jobs", "slurmrestd"), 0);
    expect(activeIssues(issues, ISSUE_MAX_AGE_MS)).toHaveLength(1);
    expect(activeIssues(issues, ISSUE_MAX_AGE_MS + 1)).toEqual([]);
  });

  it("returns the same map when nothing changes", () => {
    const issues: Issues = new Map();
    expect(applyEvent(issues, { kind: "ok", key: "GET /x" }, 0)).toBe(issues);
  });
});
