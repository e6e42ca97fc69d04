// Client-side checks of the submit form; they mirror the API's rules so most
// mistakes are caught before a request (the API stays the authority).

import type { JobSubmit } from "../api/types";

export interface JobFormValues {
  script: string;
  name: string;
  nodes: string;
  gpus: string;
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
  nodes: { min: 1, max: 64 },
  gpus: { min: 0, max: 64 },
  timeLimit: { min: 1, max: 10080 },
} as const;

/** API body field -> form field, to place server-side 422 messages. */
export const API_FIELD_TO_FORM: Record<string, JobFormField> = {
  script: "script",
  name: "name",
  nodes: "nodes",
  gpus: "gpus",
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
  nodes: "1",
  gpus: "0",
  timeLimit: "60",
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
  const gpus = parseInteger(values.gpus, "GPUs per node", LIMITS.gpus);
  if ("error" in gpus) errors.gpus = gpus.error;
  const timeLimit = parseInteger(values.timeLimit, "Time limit", LIMITS.timeLimit);
  if ("error" in timeLimit) errors.timeLimit = timeLimit.error;

  const partition = values.partition.trim();
  if (partition !== "" && !JOB_NAME_PATTERN.test(partition)) {
    errors.partition = "A partition name is 1 to 64 letters, digits, dots, underscores or hyphens.";
  }

  if (Object.keys(errors).length > 0 || "error" in nodes || "error" in gpus || "error" in timeLimit) {
    return { ok: false, errors };
  }
  return {
    ok: true,
    body: {
      script: values.script,
      name,
      nodes: nodes.value,
      gpus: gpus.value,
      time_limit_minutes: timeLimit.value,
      partition: partition === "" ? null : partition,
    },
  };
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
