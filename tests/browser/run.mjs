#!/usr/bin/env node
// gpuops browser checks: drive the web frontend in headless Debian chromium
// (playwright-core) through named scenarios and print one JSON report.
//
// Usage:
//   node tests/browser/run.mjs SCENARIO.json      (or "-" for stdin)
//   GPUOPS_BROWSER_SCENARIO='{"webUrl": ...}' node tests/browser/run.mjs
//
// Input:
//   {
//     "webUrl": "http://127.0.0.1:8080",           the web frontend
//     "token": "...", or "tokenFile": "path",       the API bearer token (never printed)
//     "artifactsDir": "tests/artifacts/browser",   screenshots go here
//     "chromium": "/usr/bin/chromium",             optional
//     "uiTimeoutMs": 20000, "timeoutMs": 90000,    optional defaults
//     "scenarios": [{"kind": "...", "name": "...", ...options}, ...]
//   }
// Kinds (options in parentheses):
//   no_token     no token: the token form shows; pasting the token opens the overview (login)
//   bad_token    a wrong #token: the API's 401 brings the token form back with a message
//   overview     #token login, token stripped from the URL, pods table and GPU cards with
//                charts that refresh (expect: {pods, gpus, podNames, minSamples, grafanaFleet})
//   submit_job   submit through the form, follow the job page to a final state
//                (jobName, script, nodes, gpusPerNode, timeLimit, partition,
//                 expect: {state, exitCode, outputContains: [..]}, checkList)
//   validation   client-side form checks stop bad input without a request
//   rejected_job the API's 4xx detail is shown on the form (jobName, script, partition,
//                expect: {errorContains})
//   cancel_job   submit a long job, cancel it through the confirm dialog (script, jobName)
//   outage       break an upstream, the banner names it, restore, the banner goes
//                (page, upstream, break, restore: {"http": {url, method, headers, body}}
//                 or {"cmd": [argv...]})
//
// Output (stdout): {"ok": bool, "chromium": version, "results": [{name, kind, ok,
//   durationMs, error, details, screenshots, pageErrors, cspViolations, consoleErrors}]}
// Exit status: 0 all passed, 1 a scenario failed, 2 bad input or no browser.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";

const LAUNCH_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const FINAL_STATES = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"];
const TOKEN_KEY = "gpuops.apiToken";
const DEFAULT_SCRIPT = (marker) =>
  `#!/bin/bash\necho "hello from $(hostname)"\necho "${marker}"\nsleep 3\necho "done"\n`;

class InputError extends Error {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.error("[browser]", ...args);

let secrets = [];
/** Remove the token (and any other secret) from text that may be printed. */
function redact(value) {
  let text = typeof value === "string" ? value : String(value);
  for (const s of secrets) {
    if (s) text = text.split(s).join("<redacted>").split(encodeURIComponent(s)).join("<redacted>");
  }
  return text;
}

async function loadInput(argv) {
  let raw;
  if (argv[2] === "-") {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    raw = Buffer.concat(chunks).toString("utf8");
  } else if (argv[2]) {
    raw = await readFile(argv[2], "utf8");
  } else if (process.env.GPUOPS_BROWSER_SCENARIO) {
    raw = process.env.GPUOPS_BROWSER_SCENARIO;
  } else {
    throw new InputError("give a scenario file (or -) as the argument, or set GPUOPS_BROWSER_SCENARIO");
  }
  let cfg;
  try {
    cfg = JSON.parse(raw);
  } catch (error) {
    throw new InputError(`the scenario is not JSON: ${error.message}`);
  }
  if (!cfg.webUrl || !/^https?:\/\//.test(cfg.webUrl)) throw new InputError('"webUrl" must be an http(s) URL');
  cfg.webUrl = cfg.webUrl.replace(/\/+$/, "");
  if (!cfg.token && cfg.tokenFile) cfg.token = (await readFile(cfg.tokenFile, "utf8")).trim();
  if (!cfg.token) throw new InputError('give "token" or "tokenFile"');
  if (!Array.isArray(cfg.scenarios) || cfg.scenarios.length === 0) throw new InputError('"scenarios" must be a non-empty list');
  for (const sc of cfg.scenarios) {
    if (!SCENARIOS[sc.kind]) {
      throw new InputError(`unknown scenario kind "${sc.kind}"; known: ${Object.keys(SCENARIOS).join(", ")}`);
    }
    sc.name ??= sc.kind;
    if (!/^[A-Za-z0-9._-]{1,80}$/.test(sc.name)) throw new InputError(`scenario name "${sc.name}" must be [A-Za-z0-9._-]{1,80}`);
  }
  cfg.artifactsDir = path.resolve(cfg.artifactsDir ?? process.env.GPUOPS_TEST_ARTIFACTS ?? "tests/artifacts/browser");
  cfg.chromium ??= "/usr/bin/chromium";
  cfg.uiTimeoutMs ??= 20_000;
  cfg.timeoutMs ??= 90_000;
  return cfg;
}

/** Poll fn until it returns {ok: true, value}; fail with what was last seen. */
async function waitUntil(what, fn, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const result = await fn();
      if (result.ok) return result.value;
      last = result.last;
    } catch (error) {
      last = error.message;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

class Run {
  constructor(cfg, sc, context, page) {
    this.cfg = cfg;
    this.sc = sc;
    this.context = context;
    this.page = page;
    this.screenshots = [];
    this.requests = [];
    this.details = {};
    this.ui = sc.uiTimeoutMs ?? cfg.uiTimeoutMs;
    this.timeout = sc.timeoutMs ?? cfg.timeoutMs;
  }

  url(p = "/") {
    return `${this.cfg.webUrl}${p}`;
  }

  async shot(step) {
    const file = path.join(this.cfg.artifactsDir, `${this.sc.name}-${step}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    this.screenshots.push(file);
  }

  byTestId(id) {
    return this.page.getByTestId(id);
  }

  async visible(selector, what) {
    await this.page.locator(selector).first().waitFor({ state: "visible", timeout: this.ui }).catch(() => {
      throw new Error(`${what} did not appear within ${this.ui / 1000} s (selector ${selector})`);
    });
  }

  /** Open the app with #token=..., as the deploy's printed URL does. */
  async login(pathAfter = "/") {
    await this.page.goto(this.url(`/#token=${encodeURIComponent(this.cfg.token)}`));
    await this.visible("header.topbar", "the app shell after #token login");
    const url = this.page.url();
    check(!url.includes("token="), "the token is still in the address bar after login");
    const stored = await this.page.evaluate((key) => window.sessionStorage.getItem(key), TOKEN_KEY);
    check(stored === this.cfg.token, "the token from #token= was not stored in sessionStorage");
    const local = await this.page.evaluate((key) => window.localStorage.getItem(key), TOKEN_KEY);
    check(local === null, "the token was written to localStorage (it must stay in this tab's session)");
    if (pathAfter !== "/") await this.page.goto(this.url(pathAfter));
  }

  countRequests(method, pathname) {
    return this.requests.filter((r) => r.method === method && r.path === pathname).length;
  }

  async text(testId) {
    return ((await this.byTestId(testId).first().textContent({ timeout: this.ui })) ?? "").trim();
  }
}

async function runAction(action, label) {
  if (action?.http) {
    const { url, method = "POST", headers = {}, body } = action.http;
    const response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${label}: ${method} ${url} answered HTTP ${response.status}`);
    return;
  }
  if (Array.isArray(action?.cmd) && action.cmd.length > 0) {
    await new Promise((resolve, reject) => {
      execFile(action.cmd[0], action.cmd.slice(1), { timeout: action.timeoutMs ?? 120_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${label}: ${action.cmd.join(" ")} failed: ${error.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    return;
  }
  throw new Error(`${label}: give {"http": {...}} or {"cmd": [...]}`);
}

// ---------------------------------------------------------------- scenarios

async function noToken(run) {
  const { page } = run;
  await page.goto(run.url("/"));
  await run.visible('[data-testid="token-form"]', "the token form");
  check((await run.byTestId("pod-row").count()) === 0, "pods are shown without a token");
  const hint = await run.text("token-form");
  check(hint.includes(".gpuops/stack/api/token"), "the token form does not say where the token file is");
  await run.shot("token-form");
  if (run.sc.login === false) return;
  await run.byTestId("token-input").fill(run.cfg.token);
  await run.byTestId("token-submit").click();
  await run.visible('[data-testid="pod-row"], [data-testid="pods-empty"]', "the overview after pasting the token");
  const stored = await page.evaluate((key) => window.sessionStorage.getItem(key), TOKEN_KEY);
  check(stored === run.cfg.token, "the pasted token was not stored in sessionStorage");
  const local = await page.evaluate((key) => window.localStorage.getItem(key), TOKEN_KEY);
  check(local === null, "the pasted token was written to localStorage");
  run.details.loggedIn = true;
  await run.shot("after-login");
}

async function badToken(run) {
  const { page } = run;
  const wrong = `wrong-${randomBytes(8).toString("hex")}`;
  await page.goto(run.url(`/#token=${wrong}`));
  await run.visible('[data-testid="token-message"]', "the token form with a 401 message");
  const message = await run.text("token-message");
  check(/401|rejected/i.test(message), `the 401 message does not say the token was rejected: ${message}`);
  const stored = await page.evaluate(
    (key) => window.sessionStorage.getItem(key) ?? window.localStorage.getItem(key), TOKEN_KEY);
  check(stored === null, "the rejected token is still stored");
  run.details.message = message;
  await run.shot("rejected");
}

async function overview(run) {
  const { page, sc } = run;
  const expect = sc.expect ?? {};
  await run.login("/");
  const podCount = await waitUntil(
    `${expect.pods ?? "some"} pod rows`,
    async () => {
      const n = await run.byTestId("pod-row").count();
      return { ok: expect.pods === undefined ? n > 0 : n === expect.pods, value: n, last: n };
    },
    run.ui,
  );
  const gpuCount = await waitUntil(
    `${expect.gpus ?? "some"} GPU cards`,
    async () => {
      const n = await run.byTestId("gpu-card").count();
      return { ok: expect.gpus === undefined ? n > 0 : n === expect.gpus, value: n, last: n };
    },
    run.ui,
  );
  const pods = await page.$$eval('[data-testid="pod-row"]', (rows) =>
    rows.map((row) => ({
      name: row.getAttribute("data-pod"),
      status: row.querySelector('[data-testid="pod-status"]')?.textContent?.trim(),
      cells: [...row.querySelectorAll("td")].map((td) => td.textContent?.trim()),
    })),
  );
  if (expect.podNames) {
    const names = pods.map((p) => p.name).sort();
    check(JSON.stringify(names) === JSON.stringify([...expect.podNames].sort()), `pod names ${names} != ${expect.podNames}`);
  }
  const burn = await run.text("burn-rate");
  check(/\$\d/.test(burn), `no burn rate in dollars: "${burn}"`);

  const minSamples = expect.minSamples ?? 2;
  await waitUntil(
    `utilisation and memory charts with >= ${minSamples} samples on every GPU card`,
    async () => {
      const samples = await page.$$eval(
        '[data-testid="gpu-card"] [data-testid="gpu-util-chart"], [data-testid="gpu-card"] [data-testid="gpu-mem-chart"]',
        (charts) => charts.map((c) => [Number(c.getAttribute("data-samples")), c.querySelector("canvas") !== null]),
      );
      const ok = samples.length === 2 * gpuCount && samples.every(([n, canvas]) => n >= minSamples && canvas);
      return { ok, value: samples, last: samples };
    },
    run.ui,
  );
  const gpus = await page.$$eval('[data-testid="gpu-card"]', (cards) =>
    cards.map((card) => {
      const t = (id) => card.querySelector(`[data-testid="${id}"]`)?.textContent?.trim();
      return { gpu: card.getAttribute("data-gpu"), util: t("gpu-util"), mem: t("gpu-mem"), temp: t("gpu-temp"), power: t("gpu-power") };
    }),
  );
  for (const g of gpus) {
    check(/%$/.test(g.util ?? ""), `GPU ${g.gpu}: utilisation "${g.util}" is not a percentage`);
    check(/iB \/ .*iB$/.test(g.mem ?? ""), `GPU ${g.gpu}: memory "${g.mem}" is not used / total`);
  }

  if ("grafanaFleet" in expect) {
    const link = run.byTestId("grafana-fleet");
    if (expect.grafanaFleet === null) {
      check((await link.count()) === 0, "a Grafana link is shown although the API has no Grafana");
    } else {
      check((await link.getAttribute("href", { timeout: run.ui })) === expect.grafanaFleet, "the fleet dashboard link is wrong");
    }
  }

  if (sc.checkRefresh !== false) {
    const before = run.countRequests("GET", "/api/v1/gpus/history");
    await waitUntil(
      "two more GPU history refreshes (every 5 s)",
      async () => {
        const n = run.countRequests("GET", "/api/v1/gpus/history") - before;
        return { ok: n >= 2, value: n, last: n };
      },
      15_000,
    );
  }
  run.details = { pods, gpus, podCount, gpuCount, burn };
  await run.shot("overview");
}

async function fillJobForm(run, values) {
  await run.visible('[data-testid="job-form"]', "the submit form");
  for (const [field, value] of Object.entries(values)) {
    if (value !== undefined && value !== null) await run.byTestId(`job-form-${field}`).fill(String(value));
  }
}

async function submitThroughForm(run, values) {
  const { page } = run;
  await run.login("/jobs");
  await run.visible('[data-testid="jobs-table"], [data-testid="jobs-empty"]', "the jobs list");
  await run.byTestId("submit-job-link").click();
  await run.visible('[data-testid="job-form"]', "the submit form");
  const prefilled = await run.byTestId("job-form-script").inputValue();
  check(prefilled.startsWith("#!"), "the script field is not prefilled with an example");
  await fillJobForm(run, values);
  await run.shot("form");
  await run.byTestId("job-form-submit").click();
  const jobId = await waitUntil(
    "the job page after submitting",
    async () => {
      const serverError = run.byTestId("job-form-server-error");
      if (await serverError.count()) throw new Error(`the API refused the job: ${await serverError.textContent()}`);
      const m = new URL(page.url()).pathname.match(/^\/jobs\/(\d+)$/);
      return { ok: m !== null, value: m ? Number(m[1]) : null, last: page.url() };
    },
    run.ui,
  );
  run.details.jobId = jobId;
  return jobId;
}

async function followJob(run, wanted) {
  const seen = [];
  const state = await waitUntil(
    `job state in ${wanted.join("/")}`,
    async () => {
      const loc = run.byTestId("job-state");
      if ((await loc.count()) === 0) return { ok: false, last: "no state shown yet" };
      const s = ((await loc.first().textContent()) ?? "").trim();
      if (seen[seen.length - 1] !== s) seen.push(s);
      if (FINAL_STATES.includes(s) && !wanted.includes(s)) throw new Error(`the job ended ${s}, expected ${wanted.join("/")}`);
      return { ok: wanted.includes(s), value: s, last: s };
    },
    run.timeout,
    300,
  );
  run.details.statesSeen = seen;
  return state;
}

async function submitJob(run) {
  const { sc } = run;
  const expect = sc.expect ?? {};
  const marker = `gpuops-browser-${randomBytes(4).toString("hex")}`;
  const script = sc.script ?? DEFAULT_SCRIPT(marker);
  const jobName = sc.jobName ?? `browser-${sc.name}`.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64);
  await submitThroughForm(run, {
    script,
    name: jobName,
    nodes: sc.nodes,
    gpusPerNode: sc.gpusPerNode,
    timeLimit: sc.timeLimit,
    partition: sc.partition,
  });
  const wanted = expect.state ? [expect.state] : FINAL_STATES;
  const state = await followJob(run, wanted);
  run.details.state = state;

  const outputContains = expect.outputContains ?? (sc.script ? [] : [marker, "done"]);
  const output = await waitUntil(
    `job output containing ${JSON.stringify(outputContains)}`,
    async () => {
      const loc = run.byTestId("job-output");
      if ((await loc.count()) === 0) return { ok: false, last: "no output block" };
      const text = (await loc.textContent()) ?? "";
      return { ok: outputContains.every((s) => text.includes(s)), value: text, last: text.slice(-300) };
    },
    run.ui,
  );
  run.details.outputTail = output.slice(-500);
  const exitText = await run.text("job-exit-code");
  run.details.exitCode = exitText;
  if (expect.exitCode !== undefined) {
    check(exitText === String(expect.exitCode), `exit code shown is "${exitText}", expected ${expect.exitCode}`);
  }
  check((await run.byTestId("job-cancel").count()) === 0, "the Cancel button is still shown for a finished job");
  await run.shot("finished");

  if (sc.checkList !== false) {
    await run.page.goto(run.url(`/jobs?state=${encodeURIComponent(state)}`));
    await waitUntil(
      `job ${run.details.jobId} in the ${state} filter of the jobs list`,
      async () => {
        const n = await run.page.locator(`[data-testid="job-row"][data-job-id="${run.details.jobId}"]`).count();
        return { ok: n === 1, value: n, last: n };
      },
      run.ui,
    );
    const states = await run.page.$$eval('[data-testid="job-row"] .badge', (els) => els.map((e) => e.textContent));
    check(states.every((s) => s === state), `the ${state} filter shows other states: ${states}`);
    await run.shot("list");
  }
}

async function validation(run) {
  await run.login("/jobs/new");
  await fillJobForm(run, { script: "echo no interpreter line", name: "bad name!", nodes: "0", gpusPerNode: "65", timeLimit: "99999" });
  const posts = run.countRequests("POST", "/api/v1/jobs");
  await run.byTestId("job-form-submit").click();
  for (const field of ["script", "name", "nodes", "gpusPerNode", "timeLimit"]) {
    await run.visible(`[data-testid="job-form-${field}-error"]`, `the ${field} error`);
  }
  await sleep(500);
  check(run.countRequests("POST", "/api/v1/jobs") === posts, "the invalid form was sent to the API");
  check(new URL(run.page.url()).pathname === "/jobs/new", "the invalid form left the page");
  run.details.errors = await run.page.$$eval('[data-testid$="-error"]', (els) => els.map((e) => e.textContent));
  await run.shot("errors");
}

async function rejectedJob(run) {
  const { sc } = run;
  const expect = sc.expect ?? {};
  await run.login("/jobs/new");
  await fillJobForm(run, {
    script: sc.script ?? "#!/bin/bash\necho never runs\n",
    name: sc.jobName ?? "browser-rejected",
    partition: sc.partition ?? "no-such-partition",
  });
  const posts = run.countRequests("POST", "/api/v1/jobs");
  await run.byTestId("job-form-submit").click();
  await run.visible('[data-testid="job-form-server-error"]', "the API's error on the form");
  const text = await run.text("job-form-server-error");
  check(run.countRequests("POST", "/api/v1/jobs") === posts + 1, "the form did not send exactly one request");
  check(new URL(run.page.url()).pathname === "/jobs/new", "a rejected job left the form");
  for (const part of expect.errorContains ?? []) {
    check(text.includes(part), `the error shown does not contain "${part}": ${text}`);
  }
  run.details.error = text;
  await run.shot("rejected");
}

async function cancelJob(run) {
  const { sc } = run;
  await submitThroughForm(run, {
    script: sc.script ?? "#!/bin/bash\necho started\nsleep 600\necho never\n",
    name: sc.jobName ?? "browser-cancel",
    timeLimit: 15,
  });
  const before = await followJob(run, ["PENDING", "RUNNING"]);
  run.details.stateBeforeCancel = before;
  await run.byTestId("job-cancel").click();
  await run.visible('[data-testid="confirm-dialog"]', "the confirm dialog");
  await run.shot("confirm");
  await run.byTestId("confirm-dialog-confirm").click();
  await followJob(run, ["CANCELLED"]);
  await waitUntil(
    "the Cancel button to go away",
    async () => {
      const n = await run.byTestId("job-cancel").count();
      return { ok: n === 0, value: n, last: n };
    },
    run.ui,
  );
  await run.shot("cancelled");
}

async function outage(run) {
  const { page, sc } = run;
  const upstream = sc.upstream ?? "slurmrestd";
  const target = sc.page ?? "/jobs";
  await run.login(target);
  await page.locator("main.content").waitFor({ timeout: run.ui });
  await sleep(1000);
  check((await run.byTestId("upstream-banner").count()) === 0, "the banner is shown before the outage");
  await runAction(sc.break, "break");
  let restored = false;
  try {
    const banner = await waitUntil(
      `the banner naming ${upstream}`,
      async () => {
        const loc = run.byTestId("upstream-banner");
        const text = (await loc.count()) ? ((await loc.textContent()) ?? "") : "";
        return { ok: text.includes(`${upstream} is unreachable`), value: text, last: text };
      },
      sc.appearTimeoutMs ?? 30_000,
    );
    run.details.banner = banner;
    const bodyText = (await page.locator("main.content").textContent()) ?? "";
    check(bodyText.trim().length > 0, "the page went blank during the outage");
    await run.shot("banner");
    await runAction(sc.restore, "restore");
    restored = true;
    const t0 = Date.now();
    await waitUntil(
      "the banner to disappear after the restore",
      async () => {
        const n = await run.byTestId("upstream-banner").count();
        return { ok: n === 0, value: n, last: n ? await run.byTestId("upstream-banner").textContent() : 0 };
      },
      sc.clearTimeoutMs ?? 60_000,
    );
    run.details.clearedAfterMs = Date.now() - t0;
    await run.shot("recovered");
  } finally {
    if (!restored) await runAction(sc.restore, "restore").catch((e) => log(redact(e.message)));
  }
}

const SCENARIOS = {
  no_token: noToken,
  bad_token: badToken,
  overview,
  submit_job: submitJob,
  validation,
  rejected_job: rejectedJob,
  cancel_job: cancelJob,
  outage,
};

// ---------------------------------------------------------------- runner

async function runScenario(browser, cfg, sc) {
  const started = Date.now();
  // Screenshots of an earlier run of this scenario would mislead.
  for (const file of await readdir(cfg.artifactsDir)) {
    if (file.startsWith(`${sc.name}-`) && file.endsWith(".png")) await rm(path.join(cfg.artifactsDir, file));
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const run = new Run(cfg, sc, context, page);
  const pageErrors = [];
  const consoleErrors = [];
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
  page.on("pageerror", (error) => pageErrors.push(redact(error.message)));
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(redact(msg.text()).slice(0, 300));
  });
  page.on("request", (request) => {
    const url = new URL(request.url());
    run.requests.push({ method: request.method(), path: url.pathname });
  });
  let error = null;
  try {
    log(`${sc.name} (${sc.kind}) ...`);
    await SCENARIOS[sc.kind](run);
  } catch (e) {
    error = redact(e?.message ?? String(e));
    await run.shot("failure").catch(() => undefined);
  }
  const cspViolations = await page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
  await context.close();
  if (!error && pageErrors.length > 0 && !sc.allowPageErrors) error = `uncaught errors in the page: ${pageErrors.join("; ")}`;
  if (!error && cspViolations.length > 0) error = `Content-Security-Policy violations: ${cspViolations.join("; ")}`;
  const result = {
    name: sc.name,
    kind: sc.kind,
    ok: error === null,
    durationMs: Date.now() - started,
    error,
    details: JSON.parse(redact(JSON.stringify(run.details))),
    screenshots: run.screenshots,
    pageErrors,
    cspViolations,
    consoleErrors: consoleErrors.slice(0, 20),
  };
  log(`${sc.name}: ${result.ok ? "ok" : `FAILED: ${error}`} (${(result.durationMs / 1000).toFixed(1)} s)`);
  return result;
}

async function main() {
  let cfg;
  try {
    cfg = await loadInput(process.argv);
  } catch (error) {
    console.log(JSON.stringify({ ok: false, error: error.message, results: [] }));
    return 2;
  }
  secrets = [cfg.token];
  await mkdir(cfg.artifactsDir, { recursive: true });
  let browser;
  try {
    browser = await chromium.launch({ executablePath: cfg.chromium, headless: true, args: LAUNCH_ARGS });
  } catch (error) {
    const hint = `could not start ${cfg.chromium} (install it: apt-get install -y chromium): ${redact(error.message)}`;
    console.log(JSON.stringify({ ok: false, error: hint, results: [] }));
    return 2;
  }
  const version = browser.version();
  const results = [];
  try {
    for (const sc of cfg.scenarios) results.push(await runScenario(browser, cfg, sc));
  } finally {
    await browser.close();
  }
  const ok = results.every((r) => r.ok);
  console.log(JSON.stringify({ ok, chromium: version, artifactsDir: cfg.artifactsDir, results }, null, 2));
  return ok ? 0 : 1;
}

process.exitCode = await main();
