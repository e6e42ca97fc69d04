// The firing alerts (Alertmanager's, through GET /api/v1/alerts), under the
// upstream banner. Polled; when the API cannot reach Alertmanager the upstream
// banner says so and this one keeps the last list it had.

import { useApp } from "../state/AppContext";
import { alertSince, alertText, bannerTone } from "../lib/alerts";
import { usePolling } from "../lib/usePolling";

export const ALERTS_REFRESH_MS = 30_000;

export function AlertBanner() {
  const { client } = useApp();
  const { data } = usePolling("alerts", (signal) => client.alerts(signal), ALERTS_REFRESH_MS);
  const alerts = data?.alerts ?? [];
  if (alerts.length === 0) return null;
  const tone = bannerTone(alerts);
  return (
    <div
      className={`banner ${tone === "bad" ? "" : tone === "warn" ? "banner-warn" : "banner-info"}`}
      role="alert"
      data-testid="alert-banner"
    >
      <strong>
        {alerts.length} alert{alerts.length === 1 ? "" : "s"} firing:
      </strong>
      <ul className="alert-list">
        {alerts.map((alert) => (
          <li key={alert.fingerprint || alert.name} data-alert={alert.name} title={alert.description}>
            <span className="alert-severity">{alert.severity || "alert"}</span> {alertText(alert)}
            <span className="muted"> {alertSince(alert.starts_at)}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
