// The banner at the top while an upstream (or the API itself) is down. It
// re-renders every few seconds so expired issues vanish without new events.

import { useEffect, useState } from "react";
import { activeIssues } from "../state/upstreamIssues";
import { useIssues } from "../state/AppContext";

export function UpstreamBanner() {
  const issues = useIssues();
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 5_000);
    return () => clearInterval(timer);
  }, []);
  const active = activeIssues(issues, Math.max(now, Date.now()));
  if (active.length === 0) return null;
  return (
    <div className="banner" role="alert" data-testid="upstream-banner">
      {active.map((issue) => (
        <div key={issue.upstream} data-upstream={issue.upstream}>
          <strong>{issue.upstream} is unreachable:</strong> {issue.detail}
          <span className="muted"> Retrying automatically.</span>
        </div>
      ))}
    </div>
  );
}
