import type { Tone } from "../lib/jobs";

export function Badge({ value, tone, testId }: { value: string; tone: Tone; testId?: string }) {
  return (
    <span className={`badge badge-${tone}`} data-testid={testId} data-value={value}>
      {value}
    </span>
  );
}
