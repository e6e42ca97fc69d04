// The API bearer token: taken once from the URL fragment (#token=...), kept in
// localStorage, never left in the address bar or history.

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

interface Storage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: the token lives only in memory
  }
}

let memoryToken: string | null = null;

export function loadToken(): string | null {
  return storage()?.getItem(TOKEN_STORAGE_KEY) ?? memoryToken;
}

export function saveToken(token: string): void {
  memoryToken = token;
  storage()?.setItem(TOKEN_STORAGE_KEY, token);
}

export function clearToken(): void {
  memoryToken = null;
  storage()?.removeItem(TOKEN_STORAGE_KEY);
}

/** Store a token passed in the URL fragment and remove it from the URL. */
export function captureTokenFromUrl(): boolean {
  const { token, rest } = tokenFromHash(window.location.hash);
  if (token === null && !window.location.hash.includes("token=")) {
    return false;
  }
  if (token) {
    saveToken(token);
  }
  const { pathname, search } = window.location;
  window.history.replaceState(window.history.state, "", `${pathname}${search}${rest}`);
  return token !== null;
}
