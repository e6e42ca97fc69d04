// Fetch now and then every intervalMs (null: once). A new key starts over
// with no data; errors keep the last good data so pages never go blank.

import { useCallback, useEffect, useRef, useState } from "react";

export interface Polled<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Fetch again now (e.g. after a mutation). */
  refresh: () => void;
}

interface State<T> {
  key: string;
  data: T | undefined;
  error: unknown;
  loaded: boolean;
}

export function usePolling<T>(
  key: string,
  fetcher: (signal: AbortSignal) => Promise<T>,
  intervalMs: number | null,
  enabled = true,
): Polled<T> {
  const [state, setState] = useState<State<T>>({ key, data: undefined, error: null, loaded: false });
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const [nonce, setNonce] = useState(0);

  useEffect(() => {
    if (!enabled) return undefined;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;

    const tick = async () => {
      try {
        const data = await fetcherRef.current(controller.signal);
        if (controller.signal.aborted) return;
        setState({ key, data, error: null, loaded: true });
      } catch (error) {
        if (controller.signal.aborted) return;
        setState((prev) => ({ key, data: prev.key === key ? prev.data : undefined, error, loaded: true }));
      }
      if (intervalMs !== null && !controller.signal.aborted) {
        timer = setTimeout(() => void tick(), intervalMs);
      }
    };
    void tick();
    return () => {
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [key, intervalMs, enabled, nonce]);

  const refresh = useCallback(() => setNonce((n) => n + 1), []);
  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : null,
    loading: !current || !state.loaded,
    refresh,
  };
}
