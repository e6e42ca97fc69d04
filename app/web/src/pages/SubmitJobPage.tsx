// Submit a batch script; checked here first, then by the API (4xx shown inline).

import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { ApiError, describeError } from "../api/client";
import {
  DEFAULT_FORM,
  formErrorsFromApi,
  LIMITS,
  totalGpus,
  validateJobForm,
  type JobFormErrors,
  type JobFormField,
  type JobFormValues,
} from "../lib/validation";
import { useApp } from "../state/AppContext";

export function SubmitJobPage() {
  const { client } = useApp();
  const navigate = useNavigate();
  const [values, setValues] = useState<JobFormValues>(DEFAULT_FORM);
  const [errors, setErrors] = useState<JobFormErrors>({});
  const [serverError, setServerError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const set = (field: JobFormField) => (e: { target: { value: string } }) => {
    setValues((v) => ({ ...v, [field]: e.target.value }));
    setErrors((errs) => ({ ...errs, [field]: undefined }));
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setServerError(null);
    const result = validateJobForm(values);
    if (!result.ok) {
      setErrors(result.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const { id } = await client.submitJob(result.body);
      navigate(`/jobs/${id}`);
    } catch (error) {
      setBusy(false);
      if (error instanceof ApiError) setErrors(formErrorsFromApi(error.fieldErrors));
      setServerError(describeError(error));
    }
  };

  const field = (name: JobFormField) => ({
    id: `job-${name}`,
    name,
    value: values[name],
    onChange: set(name),
    "aria-invalid": errors[name] ? true : undefined,
    "aria-describedby": errors[name] ? `job-${name}-error` : undefined,
    "data-testid": `job-form-${name}`,
  });
  const total = totalGpus(values);
  const errorFor = (name: JobFormField) =>
    errors[name] ? (
      <p className="field-error" id={`job-${name}-error`} data-testid={`job-form-${name}-error`}>
        {errors[name]}
      </p>
    ) : null;

  return (
    <>
      <div className="page-head">
        <h1>Submit job</h1>
        <Link to="/jobs">← Jobs</Link>
      </div>
      <form className="card form" onSubmit={submit} noValidate data-testid="job-form">
        {serverError ? (
          <div className="state state-error" role="alert" data-testid="job-form-server-error">
            <strong>The API refused the job.</strong> {serverError}
          </div>
        ) : null}
        <label htmlFor="job-script">Batch script</label>
        <textarea {...field("script")} rows={12} spellCheck={false} className="mono" />
        <p className="help">Runs with sbatch; output goes to the job page. It must start with “#!”.</p>
        {errorFor("script")}

        <div className="form-row">
          <div>
            <label htmlFor="job-name">Name</label>
            <input {...field("name")} type="text" maxLength={80} autoComplete="off" />
            {errorFor("name")}
          </div>
          <div>
            <label htmlFor="job-partition">Partition (optional)</label>
            <input {...field("partition")} type="text" placeholder="default" autoComplete="off" />
            {errorFor("partition")}
          </div>
        </div>
        <div className="form-row">
          <div>
            <label htmlFor="job-nodes">Nodes</label>
            <input {...field("nodes")} type="number" min={LIMITS.nodes.min} max={LIMITS.nodes.max} />
            {errorFor("nodes")}
          </div>
          <div>
            <label htmlFor="job-gpusPerNode">GPUs per node</label>
            <input
              {...field("gpusPerNode")}
              type="number"
              min={LIMITS.gpusPerNode.min}
              max={LIMITS.gpusPerNode.max}
            />
            <p className="help" data-testid="job-form-gpus-total">
              {total === null ? "On each node." : `On each node; nodes × GPUs per node = ${total} in all.`}
            </p>
            {errorFor("gpusPerNode")}
          </div>
          <div>
            <label htmlFor="job-timeLimit">Time limit (minutes)</label>
            <input {...field("timeLimit")} type="number" min={LIMITS.timeLimit.min} max={LIMITS.timeLimit.max} />
            {errorFor("timeLimit")}
          </div>
        </div>
        <div className="form-actions">
          <button type="submit" className="button" disabled={busy} data-testid="job-form-submit">
            {busy ? "Submitting…" : "Submit job"}
          </button>
        </div>
      </form>
    </>
  );
}
