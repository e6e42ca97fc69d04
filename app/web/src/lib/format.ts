// Formatting of numbers, durations and times for display. "—" marks unknown values.

export const NONE = "—";

function isNumber(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** 42 -> "42s", 192 -> "3m 12s", 7500 -> "2h 5m", 277200 -> "3d 5h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (!isNumber(seconds) || seconds < 0) return NONE;
  const s = Math.floor(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  if (minutes > 0) return `${minutes}m ${secs}s`;
  return `${secs}s`;
}

/** US dollars: 0.69 -> "$0.69", 1234.5 -> "$1,234.50"; tiny amounts keep 3 decimals. */
export function formatMoney(value: number | null | undefined): string {
  if (!isNumber(value)) return NONE;
  const digits = value !== 0 && Math.abs(value) < 0.1 ? 3 : 2;
  return `$${value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

export function formatRate(value: number | null | undefined): string {
  return isNumber(value) ? `${formatMoney(value)}/hr` : NONE;
}

/** MiB with a readable unit: 512 -> "512 MiB", 24564 -> "24.0 GiB". */
export function formatMiB(mib: number | null | undefined): string {
  if (!isNumber(mib)) return NONE;
  if (Math.abs(mib) >= 1024) return `${(mib / 1024).toFixed(1)} GiB`;
  return `${Math.round(mib)} MiB`;
}

export function formatPercent(value: number | null | undefined): string {
  return isNumber(value) ? `${Math.round(value)}%` : NONE;
}

export function formatNumber(value: number | null | undefined, unit: string, digits = 0): string {
  return isNumber(value) ? `${value.toFixed(digits)} ${unit}` : NONE;
}

/** Unix seconds -> "2024-05-01 12:03:04" in the browser's time zone. */
export function formatTimestamp(unix: number | null | undefined): string {
  if (!isNumber(unix) || unix <= 0) return NONE;
  const d = new Date(unix * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}
