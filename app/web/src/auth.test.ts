import { describe, expect, it } from "vitest";
import {
  captureTokenFromUrl,
  clearToken,
  loadToken,
  saveToken,
  searchWithoutToken,
  TOKEN_STORAGE_KEY,
  tokenFromHash,
} from "./auth";

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

class FakeStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

function fakeWindow(url: { pathname?: string; search?: string; hash?: string }) {
  const replaced: string[] = [];
  const win = {
    location: { pathname: url.pathname ?? "/", search: url.search ?? "", hash: url.hash ?? "" },
    history: {
      state: null,
      replaceState(_data: unknown, _unused: string, next?: string) {
        replaced.push(next ?? "");
      },
    },
    sessionStorage: new FakeStorage(),
    localStorage: new FakeStorage(),
  };
  return { win, replaced };
}

describe("captureTokenFromUrl", () => {
  it("keeps the token in sessionStorage, never localStorage, and clears the address bar", () => {
    const { win, replaced } = fakeWindow({ pathname: "/jobs", hash: "#token=s3cr3t-token&view=1" });
    expect(captureTokenFromUrl(win)).toBe(true);
    expect(win.sessionStorage.getItem(TOKEN_STORAGE_KEY)).toBe("s3cr3t-token");
    expect(win.localStorage.items.size).toBe(0);
    expect(replaced).toEqual(["/jobs#view=1"]);
    expect(replaced.join()).not.toContain("s3cr3t");
    expect(loadToken(win)).toBe("s3cr3t-token");
    clearToken(win);
    expect(win.sessionStorage.items.size).toBe(0);
    expect(loadToken(win)).toBeNull();
  });

  it("removes a token from the query string too, without using it", () => {
    const { win, replaced } = fakeWindow({ pathname: "/", search: "?token=leaked&x=1" });
    expect(captureTokenFromUrl(win)).toBe(false);
    expect(replaced).toEqual(["/?x=1"]);
    expect(win.sessionStorage.items.size).toBe(0);
    expect(win.localStorage.items.size).toBe(0);
  });

  it("leaves a URL without a token alone", () => {
    const { win, replaced } = fakeWindow({ pathname: "/jobs/7", search: "?state=RUNNING", hash: "#top" });
    expect(captureTokenFromUrl(win)).toBe(false);
    expect(replaced).toEqual([]);
  });

  it("moves a token an older version left in localStorage into the session", () => {
    const { win } = fakeWindow({});
    win.localStorage.setItem(TOKEN_STORAGE_KEY, "old-local-token");
    expect(loadToken(win)).toBe("old-local-token");
    expect(win.localStorage.items.size).toBe(0);
    expect(win.sessionStorage.getItem(TOKEN_STORAGE_KEY)).toBe("old-local-token");
    clearToken(win);
  });

  it("saving a pasted token writes sessionStorage only", () => {
    const { win } = fakeWindow({});
    saveToken("pasted-token-value", win);
    expect(win.sessionStorage.getItem(TOKEN_STORAGE_KEY)).toBe("pasted-token-value");
    expect(win.localStorage.items.size).toBe(0);
    clearToken(win);
  });
});

describe("searchWithoutToken", () => {
  it("drops only the token parameter", () => {
    expect(searchWithoutToken("?token=a")).toBe("");
    expect(searchWithoutToken("?a=1&token=b")).toBe("?a=1");
    expect(searchWithoutToken("?a=1")).toBe("?a=1");
    expect(searchWithoutToken("")).toBe("");
  });
});
