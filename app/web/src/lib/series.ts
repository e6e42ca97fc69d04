// Reshape the API's metric series ({pod, gpu, metric, points}) for charts.

import type { Point, Series } from "../api/types";

export function gpuKey(pod: string, gpu: string): string {
  return `${pod}/${gpu}`;
}

/** Series of one metric, by GPU key. */
export function seriesByGpu(series: Series[], metric: string): Map<string, Point[]> {
  const out = new Map<string, Point[]>();
  for (const s of series) {
    if (s.metric !== metric) continue;
    const key = gpuKey(s.pod, s.gpu);
    out.set(key, [...(out.get(key) ?? []), ...s.points]);
  }
  return out;
}

export interface ChartLine {
  label: string;
  points: Point[];
}

/** uPlot's columnar data: one shared, sorted x axis; gaps as null. */
export type AlignedData = [number[], ...(number | null)[][]];

export function alignLines(lines: ChartLine[]): AlignedData {
  const xs = [...new Set(lines.flatMap((line) => line.points.map(([t]) => t)))].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const columns = lines.map((line) => {
    const column: (number | null)[] = new Array<number | null>(xs.length).fill(null);
    for (const [t, v] of line.points) {
      const i = index.get(t);
      if (i !== undefined && Number.isFinite(v)) column[i] = v;
    }
    return column;
  });
  return [xs, ...columns];
}
