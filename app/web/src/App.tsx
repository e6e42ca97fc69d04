// Shell: token gate, API client, header with navigation, upstream banner, routes.

import { useCallback, useMemo, useRef, useState } from "react";
import { BrowserRouter, Link, NavLink, Route, Routes } from "react-router-dom";
import { ApiClient, type ApiEvent } from "./api/client";
import { clearToken, loadToken, saveToken } from "./auth";
import type { ResolvedConfig } from "./config";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { Empty } from "./components/States";
import { AlertBanner } from "./components/AlertBanner";
import { UpstreamBanner } from "./components/UpstreamBanner";
import { usePolling } from "./lib/usePolling";
import { JobDetailPage } from "./pages/JobDetailPage";
import { JobsPage } from "./pages/JobsPage";
import { OverviewPage } from "./pages/OverviewPage";
import { SubmitJobPage } from "./pages/SubmitJobPage";
import { TokenPage } from "./pages/TokenPage";
import { AppContext, type AppContextValue } from "./state/AppContext";
import { IssueStore } from "./state/upstreamIssues";

const INFO_REFRESH_MS = 60_000;

export function App({ resolved }: { resolved: ResolvedConfig }) {
  const [token, setToken] = useState<string | null>(() => loadToken());
  const [message, setMessage] = useState<string | null>(null);
  const { apiBase } = resolved.config;

  const signOut = useCallback((why: string | null) => {
    clearToken();
    setMessage(why);
    setToken(null);
  }, []);

  if (!token) {
    return (
      <TokenPage
        apiBase={apiBase}
        message={message ?? resolved.warning}
        onToken={(t) => {
          saveToken(t);
          setMessage(null);
          setToken(t);
        }}
      />
    );
  }
  return (
    <BrowserRouter>
      <Signed key={token} token={token} resolved={resolved} signOut={signOut} />
    </BrowserRouter>
  );
}

function Signed({
  token,
  resolved,
  signOut,
}: {
  token: string;
  resolved: ResolvedConfig;
  signOut: (why: string | null) => void;
}) {
  const issues = useRef(new IssueStore()).current;
  const client = useMemo(
    () =>
      new ApiClient({
        apiBase: resolved.config.apiBase,
        getToken: () => token,
        onEvent: (event: ApiEvent) => {
          if (event.kind === "unauthorized") {
            signOut(
              `The API rejected the stored token (401: ${event.detail}). ` +
                "It may have been rotated by a new deploy: paste the current one.",
            );
          } else {
            issues.report(event);
          }
        },
      }),
    [resolved.config.apiBase, token, issues, signOut],
  );
  const info = usePolling("info", (signal) => client.info(signal), INFO_REFRESH_MS);
  const value: AppContextValue = useMemo(
    () => ({ client, info: info.data, issues, forgetToken: () => signOut(null) }),
    [client, info.data, issues, signOut],
  );

  return (
    <AppContext.Provider value={value}>
      <header className="topbar">
        <Link to="/" className="brand">
          gpuops
        </Link>
        <nav>
          <NavLink to="/" end>
            Fleet
          </NavLink>
          <NavLink to="/jobs">Jobs</NavLink>
        </nav>
        <div className="topbar-right">
          {info.data ? (
            <span className="muted small" data-testid="api-info">
              {info.data.cloud} · API {info.data.version}
            </span>
          ) : null}
          <button type="button" className="link-button" onClick={() => signOut(null)} data-testid="forget-token">
            Forget token
          </button>
        </div>
      </header>
      <UpstreamBanner />
      <AlertBanner />
      {resolved.warning ? (
        <div className="banner banner-warn" data-testid="config-warning">
          {resolved.warning}
        </div>
      ) : null}
      <main className="content">
        <ErrorBoundary>
          <Routes>
            <Route path="/" element={<OverviewPage />} />
            <Route path="/jobs" element={<JobsPage />} />
            <Route path="/jobs/new" element={<SubmitJobPage />} />
            <Route path="/jobs/:id" element={<JobDetailPage />} />
            <Route
              path="*"
              element={
                <Empty testId="not-found">
                  No such page. <Link to="/">Go to the fleet overview</Link>
                </Empty>
              }
            />
          </Routes>
        </ErrorBoundary>
      </main>
    </AppContext.Provider>
  );
}
