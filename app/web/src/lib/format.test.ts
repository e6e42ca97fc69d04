import { describe, expect, it } from "vitest";
import { formatDuration, formatMiB, formatMoney, formatPercent, formatRate, formatTimestamp, NONE } from "./format";

describe("formatters", () => {
  it.each([
    [null, NONE],
    [-5, NONE],
    [0, "0s"],
    [42, "42s"],
    [192, "3m 12s"],
    [7500, "2h 5m"],
    [277200, "3d 5h"],
  ])("formatDuration(%j) = %s", (input, expected) => {
    expect(formatDuration(input)).toBe(expected);
  });

  it("formats money with cents, small sums with 3 decimals", () => {
    expect(formatMoney(0.69)).toBe("$0.69");
    expect(formatMoney(1234.5)).toBe("$1,234.50");
    expect(formatMoney(0.0123)).toBe("$0.012");
    expect(formatMoney(0)).toBe("$0.00");
    expect(formatMoney(null)).toBe(NONE);
    expect(formatRate(1.38)).toBe("$1.38/hr");
    expect(formatRate(Number.NaN)).toBe(NONE);
  });

  it("formats memory and percentages", () => {
    expect(formatMiB(512)).toBe("512 MiB");
    expect(formatMiB(24564)).toBe("24.0 GiB");
    expect(formatMiB(undefined)).toBe(NONE);
    expect(formatPercent(99.6)).toBe("100%");
  });

  it("formats unix times as local date and time", () => {
    expect(formatTimestamp(null)).toBe(NONE);
    expect(formatTimestamp(0)).toBe(NONE);
    const text = formatTimestamp(1_700_000_000);
    expect(text).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const d = new Date(1_700_000_000 * 1000);
    expect(text.slice(11, 16)).toBe(
      `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`,
    );
  });
});
