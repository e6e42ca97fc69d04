#!/usr/bin/env python3
"""gpuops benchmarks on the local cloud: cold and warm site.yml (with where the time
goes, per role and per task), job submission, tunnel recovery, the inventory plugin at
scale, Ansible tuning, and the API's job list with 1,000 jobs in Slurm's accounting.

    .venv/bin/python bench/run.py [--only cold,warm,submit,tunnel,tuning,inventory,api] [--pods 2,8] [--runs N]
                                  [--out bench/results]

Figures are printed as they come, then written to <out>/<UTC timestamp>.json,
<out>/latest.json and <out>/latest.md. Whatever happens (failure, Ctrl-C,
SIGTERM), each deployment is torn down (teardown.yml), its tunnels killed and
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

from bench import api_bench, inventory_bench, profile, report, site_bench  # noqa: E402
from bench.common import BenchError, Result, fmt_ratio, fmt_s, redact, say, stderr_note  # noqa: E402
from tests.integration.helpers import docker_available  # noqa: E402

# The order they run in: the site benchmarks (once per --pods count), then inventory and api.
BENCHMARKS = ("cold", "warm", "submit", "tunnel", "tuning", "inventory", "api")
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


MAX_PODS = 64  # terraform/runpod's limit on pod_count


def _pod_counts(text: str) -> list[int]:
    counts = []
    for item in text.split(","):
        if not item.strip():
            continue
        value = _positive(item.strip())
        if value > MAX_PODS:
            raise argparse.ArgumentTypeError(f"{value} pods: a deployment has {MAX_PODS} at most")
        counts.append(value)
    if not counts:
        raise argparse.ArgumentTypeError("no pod count given")
    return sorted(set(counts))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark gpuops on the local cloud. Site benchmarks (cold, warm, submit, tunnel, tuning) "
                    "deploy --pods Docker pods with site.yml and tear them down at the end, once per pod count, "
                    "before inventory and api; inventory needs no Docker. cold and warm also report where the time "
                    "goes: seconds per role and the longest tasks, from Ansible's profile_roles and profile_tasks "
                    "callbacks.",
        epilog="Results: <out>/<UTC timestamp>.json, <out>/latest.json, <out>/latest.md. See bench/README.md.",
    )
    parser.add_argument("--only", type=_benchmarks, default=list(BENCHMARKS), metavar="LIST",
                        help=f"comma-separated benchmarks to run, in this order: {','.join(BENCHMARKS)} (default: all; "
                             "the site benchmarks cold to tuning once per --pods count)")
    parser.add_argument("--pods", type=_pod_counts, default=[2], metavar="N[,N...]",
                        help="pods the site benchmarks deploy (default: 2). Several counts, e.g. 2,8: the site "
                             "benchmarks run once per count, smallest first, each on its own deployment, and the "
                             "smallest is the baseline of a scaling table (cold and warm: seconds per role, per "
                             f"stage and for the whole run, and their ratios). 1 to {MAX_PODS}")
    parser.add_argument("--top-tasks", type=_positive, default=15, metavar="N",
                        help="cold and warm: how many of the longest task names to report (default: 15)")
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


def bench_key(name: str, pods: int, pod_counts: list[int]) -> str:
    """The results' name of a site benchmark: its own with one pod count, `<name>@<pods>pods` with several."""
    return name if len(pod_counts) == 1 else f"{name}@{pods}pods"


def _run_one(name: str, args: argparse.Namespace, tmp: Path, session: site_bench.SiteSession | None) -> Result:
    if name == "inventory":
        return inventory_bench.measure(tmp / "inventory", args.runs, baseline=args.inventory_baseline)
    if name == "api":
        return api_bench.measure(tmp / "api", args.api_jobs, args.api_requests, args.api_baseline)
    if session is None:
        raise BenchError(f"{name} needs the site deployment, and none was created")
    if name == "cold":
        return site_bench.cold(session, args.top_tasks)
    if name == "warm":
        return site_bench.warm(session, args.site_runs, args.top_tasks)
    if name == "submit":
        return site_bench.submit(session, args.runs)
    if name == "tunnel":
        return site_bench.tunnel(session, args.runs)
    return site_bench.tuning(session, args.site_runs, args.runs)


def _close(session: site_bench.SiteSession, results: dict[str, Any]) -> bool:
    """Tear a deployment down with Ctrl-C and SIGTERM ignored (the teardown inherits that); False if it failed."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        session.close()
        return True
    except Exception as err:  # noqa: BLE001 - report it, still write the results
        stderr_note(f"cleanup failed: {redact(str(err))}; check `docker ps` and {session.site.state_dir}")
        results.setdefault("cleanup_errors", []).append({"pods": session.pods, "error": redact(str(err))})
        return False
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _scaling(results: dict[str, Any], pod_counts: list[int]) -> None:
    """With several pod counts: cold's and warm's figures side by side, each against the smallest count."""
    runs = {pods: {name: results["benchmarks"].get(bench_key(name, pods, pod_counts), {}).get("data")
                   for name in ("cold", "warm")} for pods in pod_counts}
    data, tables = profile.scaling(runs)
    if not tables:
        return
    results["benchmarks"]["scaling"] = {"data": data, "tables": [table.as_dict() for table in tables]}
    for name in ("cold", "warm"):
        if name in data:
            ratios = ", ".join(f"{pods} pods {value:.2f}x" if value is not None else f"{pods} pods -"
                               for pods, value in data[name]["ratio"].items())
            say(f"scaling: {name} whole run against {data['baseline_pods']} pods: {ratios}")
            for role, entry in list(data[name]["roles"].items())[:10]:  # latest.md has every role
                say(f"scaling: {name} {role}: " + ", ".join(
                    f"{pods} pods {fmt_s(seconds)} s" + (f" ({fmt_ratio(entry['ratio'][pods])})" if pods in entry["ratio"]
                                                         else "")
                    for pods, seconds in entry["seconds"].items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(timezone.utc).replace(microsecond=0)
    clock = time.monotonic()
    results: dict[str, Any] = {
        "schema": 2,
        "started_utc": started.isoformat().replace("+00:00", "Z"),
        "args": {"only": args.only, "pods": args.pods, "runs": args.runs, "site_runs": args.site_runs,
                 "top_tasks": args.top_tasks, "api_jobs": args.api_jobs, "api_requests": args.api_requests,
                 "api_baseline": args.api_baseline, "inventory_baseline": args.inventory_baseline},
        "machine": report.machine(),
        "git": report.git_revision(),
        "benchmarks": {},
    }
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="gpuops-bench-"))
    session: site_bench.SiteSession | None = None
    status = 0

    def record(key: str, name: str) -> None:
        nonlocal status
        say(f"== {key}")
        try:
            result = _run_one(name, args, tmp, session)
        except Exception as err:  # noqa: BLE001 - one benchmark's failure must not lose the others' figures
            message = redact(str(err) if isinstance(err, BenchError) else f"{type(err).__name__}: {err}")
            if not isinstance(err, BenchError):
                traceback.print_exc()
            stderr_note(f"{key}: FAILED: {message}")
            results["benchmarks"][key] = {"error": message}
            status = 1
            return
        results["benchmarks"][key] = {"data": result.data, "tables": [table.as_dict() for table in result.tables]}

    try:
        if (SITE_BENCHMARKS | {"api"}) & set(args.only) and not docker_available():
            raise BenchError("the site and api benchmarks need a Docker engine (scripts/setup.sh); run --only inventory "
                             "without one")
        site_names = [name for name in args.only if name in SITE_BENCHMARKS]
        for pods in args.pods if site_names else []:
            session = site_bench.SiteSession(tmp / f"site-{pods}pods", pods)
            say(f"site: {pods} pods")
            for name in site_names:
                record(bench_key(name, pods, args.pods), name)
            closing, session = session, None
            if not _close(closing, results):
                status = status or 1
        for name in args.only:
            if name not in SITE_BENCHMARKS:
                record(name, name)
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
        if session is not None and not _close(session, results):
            status = status or 1
        shutil.rmtree(tmp, ignore_errors=True)
    if len(args.pods) > 1:
        _scaling(results, args.pods)
    results["duration_s"] = round(time.monotonic() - clock, 1)
    stamped = report.write(results, args.out)
    say(f"results: {stamped}, {args.out / 'latest.json'}, {args.out / 'latest.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
