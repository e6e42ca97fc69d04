// A small uPlot time-series chart: one line per ChartLine, shared time axis.

import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { alignLines, type ChartLine } from "../lib/series";

const COLORS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];

interface Props {
  title: string;
  lines: ChartLine[];
  /** Fixed top of the y axis (100 for percent, total memory for MiB). */
  yMax?: number | null;
  formatValue: (value: number) => string;
  height?: number;
  testId?: string;
}

export function Chart({ title, lines, yMax, formatValue, height = 140, testId = "chart" }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = alignLines(lines);
  const samples = data[0].length;
  // One sample makes no line (and uPlot would stretch the time axis over years).
  const drawable = samples >= 2;
  const shape = lines.map((line) => line.label).join("|");
  const formatRef = useRef(formatValue);
  formatRef.current = formatValue;

  // (Re)create the chart when the set of lines or the y scale changes.
  useEffect(() => {
    const el = container.current;
    if (!el || !drawable) return undefined;
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      legend: { show: lines.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, Math.max(yMax ?? max, 1)] },
      },
      axes: [
        { stroke: "#64748b", grid: { stroke: "#e2e8f0", width: 1 }, ticks: { show: false } },
        {
          stroke: "#64748b",
          grid: { stroke: "#e2e8f0", width: 1 },
          ticks: { show: false },
          size: 64,
          values: (_u, splits) => splits.map((v) => formatRef.current(v)),
        },
      ],
      series: [
        {},
        ...lines.map((line, i) => ({
          label: line.label,
          stroke: COLORS[i % COLORS.length],
          fill: lines.length === 1 ? "rgba(37, 99, 235, 0.08)" : undefined,
          width: 2,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null ? "—" : formatRef.current(v)),
        })),
      ],
    };
    const chart = new uPlot(opts, alignLines(lines) as uPlot.AlignedData, el);
    plot.current = chart;
    const observer = new ResizeObserver(() => chart.setSize({ width: Math.max(el.clientWidth, 200), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // Data updates alone go through setData below, without a rebuild.
  }, [shape, yMax, height, drawable]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  });

  return (
    <figure className="chart" data-testid={testId} data-samples={samples}>
      <figcaption>{title}</figcaption>
      {drawable ? null : (
        <div className="chart-empty">{samples === 0 ? "No samples yet" : "Waiting for a second sample"}</div>
      )}
      <div ref={container} className="chart-canvas" hidden={!drawable} />
    </figure>
  );
}
