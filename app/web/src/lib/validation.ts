// Client-side checks of the submit form; they mirror the API's rules so most
// mistakes are caught before a request (the API stays the authority).
// The number limits are jobRequestLimits.json, keyed by the API's body fields;
// tests/unit/test_job_request_limits.py checks it against the API's JobRequest.

import type { JobSubmit } from "../api/types";
import REQUEST_LIMITS from "./jobRequestLimits.json";

export interface JobFormValues {
  script: string;
  name: string;
  nodes: string;
  /** GPUs on each of the job's nodes (the job gets nodes × this many). */
  gpusPerNode: string;
  timeLimit: string;
  partition: string;
}

export type JobFormField = keyof JobFormValues;
export type JobFormErrors = Partial<Record<JobFormField, string>>;

export type JobFormResult = { ok: true; body: JobSubmit } | { ok: false; errors: JobFormErrors };

/** Job and partition names, as the API's NAME_PATTERN. */
export const JOB_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const MAX_SCRIPT_BYTES = 1024 * 1024;
export const LIMITS = {
  nodes: REQUEST_LIMITS.nodes,
  gpusPerNode: REQUEST_LIMITS.gpus_per_node,
  timeLimit: REQUEST_LIMITS.time_limit_minutes,
} as const;

/** API body field -> form field, to place server-side 422 messages. */
export const API_FIELD_TO_FORM: Record<string, JobFormField> = {
  script: "script",
  name: "name",
  nodes: "nodes",
  gpus_per_node: "gpusPerNode",
  time_limit_minutes: "timeLimit",
  partition: "partition",
};

export const HELLO_SCRIPT = `#!/bin/bash
# A first job: where it runs and which GPUs Slurm gave it.
echo "hello from $(hostname) at $(date -Is)"
echo "job $SLURM_JOB_ID on nodes $SLURM_JOB_NODELIST"
echo "CUDA_VISIBLE_DEVICES=\${CUDA_VISIBLE_DEVICES:-none}"
sleep 5
echo "done"
`;

export const DEFAULT_FORM: JobFormValues = {
  script: HELLO_SCRIPT,
  name: "hello",
  nodes: String(LIMITS.nodes.default),
  gpusPerNode: String(LIMITS.gpusPerNode.default),
  timeLimit: String(LIMITS.timeLimit.default),
  partition: "",
};

function parseInteger(
  raw: string,
  label: string,
  range: { min: number; max: number },
): { value: number } | { error: string } {
  const text = raw.trim();
  if (!/^\d+$/.test(text)) return { error: `${label} must be a whole number from ${range.min} to ${range.max}.` };
  const value = Number(text);
  if (value < range.min || value > range.max) {
    return { error: `${label} must be between ${range.min} and ${range.max} (got ${value}).` };
  }
  return { value };
}

export function validateJobForm(values: JobFormValues): JobFormResult {
  const errors: JobFormErrors = {};

  if (values.script.trim() === "") {
    errors.script = "The script is empty.";
  } else if (!values.script.startsWith("#!")) {
    errors.script = 'The script must start with an interpreter line such as "#!/bin/bash".';
  } else if (values.script.includes("\u0000")) {
    errors.script = "The script must not contain NUL characters.";
  } else if (new TextEncoder().encode(values.script).length > MAX_SCRIPT_BYTES) {
    errors.script = `The script is larger than ${MAX_SCRIPT_BYTES / 1024} KiB.`;
  }

  const name = values.name.trim();
  if (!JOB_NAME_PATTERN.test(name)) {
    errors.name =
      name.length > 64
        ? `The name is ${name.length} characters long; at most 64 are allowed.`
        : "Use 1 to 64 letters, digits, dots, underscores or hyphens.";
  }

  const nodes = parseInteger(values.nodes, "Nodes", LIMITS.nodes);
  if ("error" in nodes) errors.nodes = nodes.error;
  const gpusPerNode = parseInteger(values.gpusPerNode, "GPUs per node", LIMITS.gpusPerNode);
  if ("error" in gpusPerNode) errors.gpusPerNode = gpusPerNode.error;
  const timeLimit = parseInteger(values.timeLimit, "Time limit", LIMITS.timeLimit);
  if ("error" in timeLimit) errors.timeLimit = timeLimit.error;

  const partition = values.partition.trim();
  if (partition !== "" && !JOB_NAME_PATTERN.test(partition)) {
    errors.partition = "A partition name is 1 to 64 letters, digits, dots, underscores or hyphens.";
  }

  if (Object.keys(errors).length > 0 || "error" in nodes || "error" in gpusPerNode || "error" in timeLimit) {
    return { ok: false, errors };
  }
  return {
    ok: true,
    body: {
      script: values.script,
      name,
      nodes: nodes.value,
      gpus_per_node: gpusPerNode.value,
      time_limit_minutes: timeLimit.value,
      partition: partition === "" ? null : partition,
    },
  };
}

/** GPUs of the whole job the form asks for (nodes × GPUs per node), or null while either is not a number. */
export function totalGpus(values: Pick<JobFormValues, "nodes" | "gpusPerNode">): number | null {
  const nodes = values.nodes.trim();
  const perNode = values.gpusPerNode.trim();
  if (!/^\d+$/.test(nodes) || !/^\d+$/.test(perNode)) return null;
  return Number(nodes) * Number(perNode);
}

/** Map an API 422's per-field messages onto the form's fields. */
export function formErrorsFromApi(fieldErrors: Record<string, string>): JobFormErrors {
  const errors: JobFormErrors = {};
  for (const [apiField, message] of Object.entries(fieldErrors)) {
    const field = API_FIELD_TO_FORM[apiField];
    if (field) errors[field] = message;
  }
  return errors;
}
