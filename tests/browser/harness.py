"""Helpers to run the browser checks (run.mjs) from pytest, against any gpuops web.

- ``preflight()``: chromium, node and tests/browser/node_modules are there, or a
  message saying which command installs them.
- ``run_scenarios(cfg)``: run tests/browser/run.mjs on a scenario dict, return its report.
- ``ensure_dist()`` / ``build_web_image(tag)``: images/web/build-context.sh (+ docker build).
- ``web_container(...)``: the web image on 127.0.0.1:<port> (network host), removed after.
- ``static_web(...)``: app/web/dist from a Python HTTP server (no nginx), for quick runs.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BROWSER_DIR = REPO / "tests" / "browser"
WEB_DIR = REPO / "app" / "web"
CHROMIUM = Path(os.environ.get("GPUOPS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("GPUOPS_TEST_ARTIFACTS", str(REPO / "tests" / "artifacts" / "browser")))
DOCKER = shutil.which("docker") or "docker"


def preflight() -> None:
    """Fail with the command to run when a piece of the browser harness is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if shutil.which("node") is None:
        missing.append("node >= 20")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        missing.append("playwright-core (npm ci --prefix tests/browser)")
    if missing:
        raise AssertionError("the browser harness needs: " + "; ".join(missing))


def run_scenarios(cfg: dict, timeout: int = 1200) -> dict:
    """Run run.mjs on cfg (written to a 0600 file: it may hold the token); return the report."""
    cfg = {"artifactsDir": str(ARTIFACTS), "chromium": str(CHROMIUM), **cfg}
    fd, name = tempfile.mkstemp(prefix="gpuops-browser-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(cfg, handle)
        proc = subprocess.run(
            ["node", str(BROWSER_DIR / "run.mjs"), name],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.unlink(name)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(
            f"run.mjs exited {proc.returncode} without a JSON report ({error})\n"
            f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        ) from error
    if proc.returncode == 2:
        raise AssertionError(f"run.mjs could not run: {report.get('error')}")
    report["stderr"] = proc.stderr
    return report


def build_context(ctx: str) -> dict:
    """images/web/build-context.sh: npm ci / npm run build when needed, context in ctx."""
    proc = subprocess.run(
        [str(REPO / "images" / "web" / "build-context.sh"), ctx],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"build-context.sh failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_dist() -> Path:
    """app/web/dist, rebuilt first if the app's sources changed."""
    with tempfile.TemporaryDirectory(prefix="gpuops-web-ctx-") as ctx:
        build_context(ctx)
    return WEB_DIR / "dist"


def build_web_image(tag: str) -> dict:
    """Assemble the build context and build the web image; return build-context.sh's JSON."""
    with tempfile.TemporaryDirectory(prefix="gpuops-web-ctx-") as ctx:
        info = build_context(ctx)
        build = subprocess.run(
            [DOCKER, "build", "-q", "--build-arg", f"GPUOPS_WEB_SOURCE_SHA256={info['source_sha256']}", "-t", tag, ctx],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if build.returncode != 0:
            raise AssertionError(f"docker build of {tag} failed:\n{build.stdout[-2000:]}\n{build.stderr[-4000:]}")
    return info


def write_config_js(directory: Path, api_base: str) -> Path:
    path = directory / "config.js"
    path.write_text(f"window.GPUOPS_CONFIG = {json.dumps({'apiBase': api_base})};\n", encoding="utf-8")
    path.chmod(0o644)
    return path


@contextmanager
def web_container(image: str, name: str, port: int, api_origin: str, config_js: Path) -> Iterator[str]:
    """Run the web image with --network host on 127.0.0.1:port; yield its URL."""
    subprocess.run([DOCKER, "rm", "-f", name], capture_output=True, check=False)
    run = subprocess.run(
        [
            DOCKER,
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-e",
            f"GPUOPS_WEB_LISTEN=127.0.0.1:{port}",
            "-e",
            f"GPUOPS_API_ORIGIN={api_origin}",
            "-v",
            f"{config_js}:/etc/gpuops-web/config.js:ro",
            image,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise AssertionError(f"docker run {image} failed: {run.stderr}")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", what=f"the web container {name}", logs_of=name)
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([DOCKER, "rm", "-f", name], capture_output=True, check=False)


def container_logs(name: str) -> str:
    proc = subprocess.run([DOCKER, "logs", name], capture_output=True, text=True, check=False)
    return proc.stdout + proc.stderr


class _SpaHandler(http.server.SimpleHTTPRequestHandler):
    config_js = b""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/config.js":
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(self.config_js)
            return
        if not path.startswith("/assets/") and not Path(self.translate_path(path)).is_file():
            self.path = "/index.html"
        super().do_GET()


@contextmanager
def static_web(dist: Path, port: int, config_js: Path) -> Iterator[str]:
    """Serve dist with an SPA fallback and /config.js (no nginx, no CSP): quick local runs."""
    handler = type("Handler", (_SpaHandler,), {"config_js": config_js.read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(dist)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def wait_http(url: str, what: str, timeout: float = 30, logs_of: str | None = None) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last = error
        time.sleep(0.3)
    logs = f"\n--- logs\n{container_logs(logs_of)[-3000:]}" if logs_of else ""
    raise AssertionError(f"{what} did not answer {url} within {timeout} s: {last}{logs}")
