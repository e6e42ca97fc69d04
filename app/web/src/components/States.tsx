// Loading, empty and error placeholders, so no section is ever blank.

import type { ReactNode } from "react";
import { describeError } from "../api/client";

export function Loading({ what }: { what: string }) {
  return (
    <div className="state state-loading" role="status" data-testid="loading">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ children, testId }: { children: ReactNode; testId?: string }) {
  return (
    <div className="state state-empty" data-testid={testId ?? "empty"}>
      {children}
    </div>
  );
}

export function ErrorBox({ error, what, stale }: { error: unknown; what: string; stale?: boolean }) {
  return (
    <div className="state state-error" role="alert" data-testid="error">
      <strong>Could not load {what}.</strong> {describeError(error)}
      {stale ? <span className="muted"> Showing the last data received.</span> : null}
    </div>
  );
}
