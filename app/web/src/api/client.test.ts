import { describe, expect, it } from "vitest";
import {
  API_UPSTREAM,
  ApiClient,
  ApiError,
  buildUrl,
  describeError,
  parseErrorDetail,
  UnauthorizedError,
  UnreachableError,
  type ApiEvent,
  type FetchFn,
} from "./client";

interface Recorded {
  url: string;
  init: RequestInit | undefined;
}

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function setup(respond: (url: string, init?: RequestInit) => Promise<Response>, token: string | null = "s3cret") {
  const calls: Recorded[] = [];
  const events: ApiEvent[] = [];
  const fetchFn: FetchFn = (url, init) => {
    calls.push({ url, init });
    return respond(url, init);
  };
  const client = new ApiClient({
    apiBase: "http://127.0.0.1:8081/",
    getToken: () => token,
    fetchFn,
    onEvent: (e) => events.push(e),
    timeoutMs: 50,
  });
  return { client, calls, events };
}

describe("ApiClient", () => {
  it("sends the bearer token and query, and reports success", async () => {
    const { client, calls, events } = setup(async () => jsonResponse(200, { jobs: [], total: 0 }));
    const result = await client.jobs({ state: "RUNNING", limit: 20, offset: 40 });
    expect(result).toEqual({ jobs: [], total: 0 });
    expect(calls[0]?.url).toBe("http://127.0.0.1:8081/api/v1/jobs?state=RUNNING&limit=20&offset=40");
    expect((calls[0]?.init?.headers as Record<string, string>).Authorization).toBe("Bearer s3cret");
    expect(events).toEqual([{ kind: "ok", key: "GET /api/v1/jobs" }]);
  });

  it("leaves out empty query values and posts JSON bodies", async () => {
    const { client, calls } = setup(async () => jsonResponse(201, { id: 7 }));
    await client.jobs({ state: undefined, limit: 20, offset: 0 });
    expect(calls[0]?.url).toBe("http://127.0.0.1:8081/api/v1/jobs?limit=20&offset=0");
    const body = { script: "#!/bin/sh\n", name: "a", nodes: 1, gpus_per_node: 0, time_limit_minutes: 5, partition: null };
    expect(await client.submitJob(body)).toEqual({ id: 7 });
    expect(calls[1]?.init?.method).toBe("POST");
    expect(JSON.parse(String(calls[1]?.init?.body))).toEqual(body);
    expect((calls[1]?.init?.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
  });

  it("turns 503 with an upstream into an upstream event and error", async () => {
    const { client, events } = setup(async () =>
      jsonResponse(503, { detail: "no answer from http://127.0.0.1:19401", upstream: "slurmrestd" }),
    );
    const error = await client.jobs({ limit: 1, offset: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).upstream).toBe("slurmrestd");
    expect(describeError(error)).toBe("slurmrestd is unreachable: no answer from http://127.0.0.1:19401");
    expect(events).toEqual([
      { kind: "upstream", key: "GET /api/v1/jobs", upstream: "slurmrestd", detail: "no answer from http://127.0.0.1:19401" },
    ]);
  });

  it("signals 401 as unauthorized, not as an outage", async () => {
    const { client, events } = setup(async () => jsonResponse(401, { detail: "invalid token" }));
    await expect(client.pods()).rejects.toBeInstanceOf(UnauthorizedError);
    expect(events).toEqual([{ kind: "unauthorized", detail: "invalid token" }]);
  });

  it("reports a network failure as the API being unreachable", async () => {
    const { client, events } = setup(async () => {
      throw new TypeError("Failed to fetch");
    });
    const error = await client.gpus().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreachableError);
    expect(events[0]).toMatchObject({ kind: "upstream", upstream: API_UPSTREAM, key: "GET /api/v1/gpus" });
    expect((events[0] as { detail: string }).detail).toContain("http://127.0.0.1:8081 (Failed to fetch)");
  });

  it("times out a call that never answers", async () => {
    const { client, events } = setup(
      (_url, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
        }),
    );
    await expect(client.info()).rejects.toBeInstanceOf(UnreachableError);
    expect((events[0] as { detail: string }).detail).toContain("no answer within");
  });

  it("does not report an outage when the caller aborts", async () => {
    const { client, events } = setup(
      (_url, init) =>
        new Promise((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
        }),
    );
    const controller = new AbortController();
    const pending = client.info(controller.signal);
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(events).toEqual([]);
  });

  it("keeps 422 field messages and clears outage state for client errors", async () => {
    const { client, events } = setup(async () =>
      jsonResponse(422, {
        detail: [{ loc: ["body", "name"], msg: "String should match pattern", type: "string_pattern_mismatch" }],
      }),
    );
    const error = (await client
      .submitJob({ script: "#!/bin/sh", name: "bad name", nodes: 1, gpus_per_node: 0, time_limit_minutes: 1, partition: null })
      .catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(422);
    expect(error.fieldErrors).toEqual({ name: "String should match pattern" });
    expect(error.detail).toBe("name: String should match pattern");
    expect(events).toEqual([{ kind: "ok", key: "POST /api/v1/jobs" }]);
  });

  it("uses a generic message when the error body is not JSON", async () => {
    const { client } = setup(async () => new Response("<html>bad gateway</html>", { status: 502 }));
    const error = (await client.job(3).catch((e: unknown) => e)) as ApiError;
    expect(error.detail).toBe("GET /api/v1/jobs/3 failed with HTTP 502");
  });
});

describe("helpers", () => {
  it("parses string and list details", () => {
    expect(parseErrorDetail("boom")).toEqual({ message: "boom", fieldErrors: {} });
    const flat = "body field 'name': String should match pattern; body field 'nodes': Input should be <= 64";
    expect(parseErrorDetail(flat)).toEqual({
      message: flat,
      fieldErrors: { name: "String should match pattern", nodes: "Input should be <= 64" },
    });
    expect(parseErrorDetail([{ loc: ["query", "range"], msg: "bad range" }]).message).toBe("query.range: bad range");
  });

  it("builds URLs under a base with a path prefix", () => {
    expect(buildUrl("https://example.test/gpuops/", "/api/v1/info")).toBe("https://example.test/gpuops/api/v1/info");
  });
});
