import { describe, expect, it } from "vitest";
import { DEFAULT_API_BASE, resolveConfig } from "./config";

describe("resolveConfig", () => {
  it("accepts an http(s) apiBase and trims the trailing slash", () => {
    expect(resolveConfig({ apiBase: "http://127.0.0.1:8081/" })).toEqual({
      config: { apiBase: "http://127.0.0.1:8081" },
      warning: null,
    });
  });

  it.each([undefined, null, "x", {}, { apiBase: "" }, { apiBase: "not a url" }, { apiBase: "javascript:alert(1)" }])(
    "falls back to the default with a warning for %j",
    (raw) => {
      const resolved = resolveConfig(raw);
      expect(resolved.config.apiBase).toBe(DEFAULT_API_BASE);
      expect(resolved.warning).toContain(DEFAULT_API_BASE);
    },
  );
});
