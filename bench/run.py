#!/usr/bin/env python3
"""gpuops benchmarks on the local cloud: cold and warm site.yml, job submission,
tunnel recovery, the inventory plugin at scale, Ansible tuning, and the API's job list
with 1,000 jobs in Slurm's accounting.

    .venv/bin/python bench/run.py [--only cold,warm,submit,tunnel,inventory,tuning,api] [--runs N] [--out bench/results]

Figures are printed as they come, then written to <out>/<UTC timestamp>.json,
<out>/latest.json and <out>/latest.md. Whatever happens (failure, Ctrl-C,
SIGTERM), the deployment is torn down (teardown.yml), its tunnels killed and
its local cloud purged. Timings are reported, never judged. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"

if Path(sys.prefix).resolve() != VENV.resolve() and (VENV / "bin" / "python").exists():
    # Run as bench/run.py with another Python: use the project's virtual environment.
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), str(Path(__file__).resolve()), *sys.argv[1:]])

sys.path.insert(0, str(REPO))

from bench import api_bench, inventory_bench, report, site_bench  # noqa: E402
from bench.common import BenchError, Result, redact, say, stderr_note  # noqa: E402
from tests.integration.helpers import docker_available  # noqa: E402

BENCHMARKS = ("cold", "warm", "submit", "tunnel", "inventory", "tuning", "api")
SITE_BENCHMARKS = frozenset(BENCHMARKS) - {"inventory", "api"}


def _benchmarks(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown) or '(none given)'}; choose from {','.join(BENCHMARKS)}")
    return [name for name in BENCHMARKS if name in names]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark gpuops on the local cloud. Site benchmarks (cold, warm, submit, tunnel, tuning) "
                    "deploy 2 Docker pods with site.yml and tear them down at the end; inventory needs no Docker.",
        epilog="Results: <out>/<UTC timestamp>.json, <out>/latest.json, <out>/latest.md. See bench/README.md.",
    )
    parser.add_argument("--only", type=_benchmarks, default=list(BENCHMARKS), metavar="LIST",
                        help=f"comma-separated benchmarks to run, in this order: {','.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--runs", type=_positive, default=5, metavar="N",
                        help="repetitions for submit, tunnel, inventory and fact gathering; medians are reported (default: 5)")
    parser.add_argument("--site-runs", type=_positive, default=1, metavar="N",
                        help="repetitions of the full warm site.yml in warm and of each variant in tuning (default: 1)")
    parser.add_argument("--api-jobs", type=_positive, default=1000, metavar="N",
                        help="api: finished jobs put in Slurm's accounting before the job list is timed (default: 1000)")
    parser.add_argument("--api-requests", type=_positive, default=200, metavar="N",
                        help="api: timed requests of each job list query; p50 and p95 are reported (default: 200)")
    parser.add_argument("--api-baseline", metavar="REV", default=None,
                        help="api: also time the API of this git revision (e.g. HEAD) on the same jobs, after this "
                             "checkout's")
    parser.add_argument("--inventory-baseline", metavar="REV", default=None,
                        help="inventory: also time the collection of this git revision (e.g. HEAD) on the same pods, "
                             "alternating with this checkout's")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", metavar="DIR",
                        help="results directory (default: bench/results, git-ignored)")
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run_one(name: str, args: argparse.Namespace, tmp: Path, session: site_bench.SiteSession | None) -> Result:
    if name == "inventory":
        return inventory_bench.measure(tmp / "inventory", args.runs, baseline=args.inventory_baseline)
    if name == "api":
        return api_bench.measure(tmp / "api", args.api_jobs, args.api_requests, args.api_baseline)
    if session is None:
        raise BenchError(f"{name} needs the site deployment, and none was created")
    if name == "cold":
        return site_bench.cold(session)
    if name == "warm":
        return site_bench.warm(session, args.site_runs)
    if name == "submit":
        return site_bench.submit(session, args.runs)
    if name == "tunnel":
        return site_bench.tunnel(session, args.runs)
    return site_bench.tuning(session, args.site_runs, args.runs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc).replace(microsecond=0)
    clock = time.monotonic()
    results: dict[str, Any] = {
        "schema": 1,
        "started_utc": started.isoformat().replace("+00:00", "Z"),
        "args": {"only": args.only, "runs": args.runs, "site_runs": args.site_runs, "api_jobs": args.api_jobs,
                 "api_requests": args.api_requests, "api_baseline": args.api_baseline,
                 "inventory_baseline": args.inventory_baseline},
        "machine": report.machine(),
        "git": report.git_revision(),
        "benchmarks": {},
    }
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="gpuops-bench-"))
    session: site_bench.SiteSession | None = None
    status = 0
    try:
        if (SITE_BENCHMARKS | {"api"}) & set(args.only) and not docker_available():
            raise BenchError("the site and api benchmarks need a Docker engine (scripts/setup.sh); run --only inventory "
                             "without one")
        for name in args.only:
            say(f"== {name}")
            if name in SITE_BENCHMARKS and session is None:
                session = site_bench.SiteSession(tmp / "site")
            try:
                result = _run_one(name, args, tmp, session)
            except Exception as err:  # noqa: BLE001 - one benchmark's failure must not lose the others' figures
                message = redact(str(err) if isinstance(err, BenchError) else f"{type(err).__name__}: {err}")
                if not isinstance(err, BenchError):
                    traceback.print_exc()
                stderr_note(f"{name}: FAILED: {message}")
                results["benchmarks"][name] = {"error": message}
                status = 1
                continue
            results["benchmarks"][name] = {"data": result.data, "tables": [table.as_dict() for table in result.tables]}
    except KeyboardInterrupt:
        stderr_note("interrupted: cleaning up, please wait (further Ctrl-C are ignored)")
        results["interrupted"] = True
        status = 130
    except BenchError as err:
        stderr_note(f"FAILED: {err}")
        results["error"] = redact(str(err))
        status = 1
    finally:
        # Cleanup must finish: ignore Ctrl-C and SIGTERM from here on (the teardown inherits that).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if session is not None:
            try:
                session.close()
            except Exception as err:  # noqa: BLE001 - report it, still write the results
                stderr_note(f"cleanup failed: {redact(str(err))}; check `docker ps` and {session.site.state_dir}")
                results["cleanup_error"] = redact(str(err))
                status = status or 1
        shutil.rmtree(tmp, ignore_errors=True)
    results["duration_s"] = round(time.monotonic() - clock, 1)
    stamped = report.write(results, args.out)
    say(f"results: {stamped}, {args.out / 'latest.json'}, {args.out / 'latest.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
