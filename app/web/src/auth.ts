// The API bearer token: taken once from the URL fragment (#token=...), kept in
// this tab's sessionStorage (or only in memory when storage is off), never in
// localStorage (which outlives the tab and is shared by every tab of the
// origin), and never left in the address bar or history.

export const TOKEN_STORAGE_KEY = "gpuops.apiToken";
export const TOKEN_FILE_HINT = ".gpuops/stack/api/token";

export interface HashToken {
  token: string | null;
  /** The fragment without the token parameter ("" or "#other=1"). */
  rest: string;
}

/** Split a location.hash such as "#token=abc&x=1" into the token and the rest. */
export function tokenFromHash(hash: string): HashToken {
  const raw = hash.startsWith("#") ? hash.slice(1) : hash;
  if (!raw.includes("token=")) {
    return { token: null, rest: hash };
  }
  const params = new URLSearchParams(raw);
  const token = params.get("token")?.trim() || null;
  params.delete("token");
  const remaining = params.toString();
  return { token, rest: remaining ? `#${remaining}` : "" };
}

/**
 * A location.search without a "token" parameter ("" or "?x=1"). A token in the
 * query is never used (the browser already sent it to the web server, whose log
 * may keep it) but it is removed from the address bar all the same.
 */
export function searchWithoutToken(search: string): string {
  const params = new URLSearchParams(search.startsWith("?") ? search.slice(1) : search);
  if (!params.has("token")) return search;
  params.delete("token");
  const remaining = params.toString();
  return remaining ? `?${remaining}` : "";
}

export interface TokenStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The parts of `window` this module uses (tests pass a fake). */
export interface TokenWindow {
  location: { pathname: string; search: string; hash: string };
  history: { state: unknown; replaceState(data: unknown, unused: string, url?: string): void };
  sessionStorage?: TokenStorage;
  localStorage?: TokenStorage;
}

function browserWindow(): TokenWindow | null {
  return typeof window === "undefined" ? null : (window as unknown as TokenWindow);
}

function session(win: TokenWindow | null): TokenStorage | null {
  try {
    return win?.sessionStorage ?? null;
  } catch {
    return null; // storage disabled: the token lives only in memory
  }
}

/** Earlier versions kept the token in localStorage: never leave it there. */
function dropLegacy(win: TokenWindow | null): string | null {
  try {
    const legacy = win?.localStorage?.getItem(TOKEN_STORAGE_KEY) ?? null;
    if (legacy !== null) win?.localStorage?.removeItem(TOKEN_STORAGE_KEY);
    return legacy;
  } catch {
    return null;
  }
}

let memoryToken: string | null = null;

export function loadToken(win: TokenWindow | null = browserWindow()): string | null {
  const legacy = dropLegacy(win);
  if (legacy && !memoryToken && !session(win)?.getItem(TOKEN_STORAGE_KEY)) {
    saveToken(legacy, win); // moved into this tab's session
  }
  return session(win)?.getItem(TOKEN_STORAGE_KEY) ?? memoryToken;
}

export function saveToken(token: string, win: TokenWindow | null = browserWindow()): void {
  memoryToken = token;
  dropLegacy(win);
  session(win)?.setItem(TOKEN_STORAGE_KEY, token);
}

export function clearToken(win: TokenWindow | null = browserWindow()): void {
  memoryToken = null;
  dropLegacy(win);
  session(win)?.removeItem(TOKEN_STORAGE_KEY);
}

/** Store a token passed in the URL fragment and remove any token from the URL (fragment and query). */
export function captureTokenFromUrl(win: TokenWindow | null = browserWindow()): boolean {
  if (!win) return false;
  const { pathname, search, hash } = win.location;
  const { token, rest } = tokenFromHash(hash);
  const cleanSearch = searchWithoutToken(search);
  if (token === null && !hash.includes("token=") && cleanSearch === search) {
    dropLegacy(win);
    return false;
  }
  if (token) {
    saveToken(token, win);
  }
  win.history.replaceState(win.history.state, "", `${pathname}${cleanSearch}${rest}`);
  return token !== null;
}
