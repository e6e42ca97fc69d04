// Shown when there is no token (or the API rejected it): paste the token.

import { useState, type FormEvent } from "react";
import { ApiClient, UnauthorizedError } from "../api/client";
import { TOKEN_FILE_HINT } from "../auth";

interface Props {
  apiBase: string;
  message: string | null;
  onToken: (token: string) => void;
}

export function TokenPage({ apiBase, message, onToken }: Props) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [checking, setChecking] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const token = value.trim();
    if (!token) {
      setError("Paste the token first.");
      return;
    }
    setChecking(true);
    setError(null);
    try {
      await new ApiClient({ apiBase, getToken: () => token }).info();
      onToken(token);
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        setError(`The API rejected this token: ${err.detail}`);
      } else {
        onToken(token); // the API is down or erring: keep the token, the banner says why
      }
    } finally {
      setChecking(false);
    }
  };

  return (
    <main className="token-page">
      <form className="card token-card" onSubmit={submit} data-testid="token-form" noValidate>
        <h1>gpuops</h1>
        {message ? (
          <p className="state state-error" role="alert" data-testid="token-message">
            {message}
          </p>
        ) : null}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={value}
          onChange={(e) => setValue(e.target.value)}
          data-testid="token-input"
          aria-describedby="token-help"
        />
        <p id="token-help" className="help">
          Paste the token from <code>{TOKEN_FILE_HINT}</code> on the control host (
          <code>cat {TOKEN_FILE_HINT}</code>; the deploy printed where it is). It is kept in this tab only
          (session storage) and forgotten when the tab closes.
        </p>
        {error ? (
          <p className="field-error" role="alert" data-testid="token-error">
            {error}
          </p>
        ) : null}
        <button type="submit" className="button" disabled={checking} data-testid="token-submit">
          {checking ? "Checking…" : "Continue"}
        </button>
        <p className="help muted">API: {apiBase}</p>
      </form>
    </main>
  );
}
