import { describe, expect, it } from "vitest";
import type { Series } from "../api/types";
import { alignLines, seriesByGpu } from "./series";

const series: Series[] = [
  { pod: "a", gpu: "0", metric: "util_percent", points: [[10, 5], [20, 50]] },
  { pod: "a", gpu: "0", metric: "mem_used_mib", points: [[10, 100]] },
  { pod: "b", gpu: "0", metric: "util_percent", points: [[15, 70]] },
];

describe("series", () => {
  it("picks one metric per GPU", () => {
    const util = seriesByGpu(series, "util_percent");
    expect([...util.keys()]).toEqual(["a/0", "b/0"]);
    expect(util.get("a/0")).toEqual([[10, 5], [20, 50]]);
    expect(seriesByGpu(series, "power_w").size).toBe(0);
  });

  it("aligns lines on one sorted time axis with gaps as null", () => {
    const data = alignLines([
      { label: "a", points: [[20, 50], [10, 5]] },
      { label: "b", points: [[15, 70], [30, Number.NaN]] },
    ]);
    expect(data).toEqual([
      [10, 15, 20, 30],
      [5, null, 50, null],
      [null, 70, null, null],
    ]);
  });

  it("gives an empty axis for no points", () => {
    expect(alignLines([{ label: "a", points: [] }])).toEqual([[], []]);
  });
});
