import { describe, expect, it } from "vitest";
import { tokenFromHash } from "./auth";

describe("tokenFromHash", () => {
  it("takes the token and leaves nothing behind", () => {
    expect(tokenFromHash("#token=abc123")).toEqual({ token: "abc123", rest: "" });
  });

  it("keeps other fragment parameters", () => {
    expect(tokenFromHash("#token=abc&view=jobs")).toEqual({ token: "abc", rest: "#view=jobs" });
  });

  it("decodes URL-encoded tokens", () => {
    expect(tokenFromHash("#token=a%2Bb%3D")).toEqual({ token: "a+b=", rest: "" });
  });

  it("ignores fragments without a token", () => {
    expect(tokenFromHash("")).toEqual({ token: null, rest: "" });
    expect(tokenFromHash("#section")).toEqual({ token: null, rest: "#section" });
  });

  it("treats an empty token as none", () => {
    expect(tokenFromHash("#token=")).toEqual({ token: null, rest: "" });
  });
});
