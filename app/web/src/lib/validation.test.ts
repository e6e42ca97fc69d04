import { describe, expect, it } from "vitest";
import REQUEST_LIMITS from "./jobRequestLimits.json";
import { DEFAULT_FORM, formErrorsFromApi, LIMITS, totalGpus, validateJobForm, type JobFormValues } from "./validation";

const form = (over: Partial<JobFormValues> = {}): JobFormValues => ({ ...DEFAULT_FORM, ...over });

describe("validateJobForm", () => {
  it("accepts the prefilled hello job and builds the API body", () => {
    const result = validateJobForm(form({ partition: "  debug " }));
    expect(result).toEqual({
      ok: true,
      body: {
        script: DEFAULT_FORM.script,
        name: "hello",
        nodes: 1,
        gpus_per_node: 0,
        time_limit_minutes: 60,
        partition: "debug",
      },
    });
  });

  it("sends a blank partition as null", () => {
    const result = validateJobForm(form());
    expect(result.ok && result.body.partition).toBeNull();
  });

  it("requires the script to start with #!", () => {
    const result = validateJobForm(form({ script: "  #!/bin/bash\necho hi" }));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors.script).toMatch(/must start with/);
    const empty = validateJobForm(form({ script: "   " }));
    expect(!empty.ok && empty.errors.script).toBe("The script is empty.");
  });

  it("rejects NUL characters, oversized scripts and bad partitions", () => {
    expect(validateJobForm(form({ script: "#!/bin/sh\necho \u0000" })).ok).toBe(false);
    expect(validateJobForm(form({ script: "#!/bin/sh\n" + "x".repeat(1024 * 1024) })).ok).toBe(false);
    const bad = validateJobForm(form({ partition: "gpu,cpu" }));
    expect(!bad.ok && Object.keys(bad.errors)).toEqual(["partition"]);
  });

  it.each([
    ["", false],
    ["a", true],
    ["train_v1.2-final", true],
    ["has space", false],
    ["semi;colon", false],
    ["ü", false],
    ["x".repeat(64), true],
    ["x".repeat(65), false],
  ])("name %j valid=%s", (name, valid) => {
    expect(validateJobForm(form({ name })).ok).toBe(valid);
  });

  it.each([
    ["nodes", "0"],
    ["nodes", "65"],
    ["nodes", "1.5"],
    ["gpusPerNode", "-1"],
    ["gpusPerNode", "65"],
    ["timeLimit", "0"],
    ["timeLimit", "10081"],
    ["timeLimit", "abc"],
  ] as const)("rejects %s=%s", (field, value) => {
    const result = validateJobForm(form({ [field]: value }));
    expect(result.ok).toBe(false);
    expect(!result.ok && Object.keys(result.errors)).toEqual([field]);
  });

  it.each([
    ["nodes", "64"],
    ["gpusPerNode", "0"],
    ["gpusPerNode", "64"],
    ["timeLimit", "1"],
    ["timeLimit", "10080"],
  ] as const)("accepts the bound %s=%s", (field, value) => {
    expect(validateJobForm(form({ [field]: value })).ok).toBe(true);
  });

  it("reports every bad field at once", () => {
    const result = validateJobForm(form({ script: "echo", name: "", nodes: "0", gpusPerNode: "x", timeLimit: "" }));
    expect(!result.ok && Object.keys(result.errors).sort()).toEqual(["gpusPerNode", "name", "nodes", "script", "timeLimit"]);
  });

  it("asks for GPUs per node, sent as gpus_per_node: 2 nodes x 2 is 4 GPUs", () => {
    const result = validateJobForm(form({ nodes: "2", gpusPerNode: "2" }));
    expect(result.ok && result.body).toMatchObject({ nodes: 2, gpus_per_node: 2 });
    expect(result.ok && "gpus" in result.body).toBe(false);
    expect(totalGpus({ nodes: "2", gpusPerNode: "2" })).toBe(4);
    expect(totalGpus({ nodes: "2", gpusPerNode: "" })).toBeNull();
    expect(formErrorsFromApi({ gpus_per_node: "too many" })).toEqual({ gpusPerNode: "too many" });
  });

  it("takes its limits and defaults from jobRequestLimits.json (the API's JobRequest bounds)", () => {
    expect(LIMITS.gpusPerNode).toEqual(REQUEST_LIMITS.gpus_per_node);
    expect(LIMITS.nodes).toEqual(REQUEST_LIMITS.nodes);
    expect(LIMITS.timeLimit).toEqual(REQUEST_LIMITS.time_limit_minutes);
    expect([DEFAULT_FORM.nodes, DEFAULT_FORM.gpusPerNode, DEFAULT_FORM.timeLimit]).toEqual(["1", "0", "60"]);
  });

  it("maps API field names onto form fields", () => {
    expect(formErrorsFromApi({ time_limit_minutes: "too big", name: "bad", other: "x" })).toEqual({
      timeLimit: "too big",
      name: "bad",
    });
  });
});
