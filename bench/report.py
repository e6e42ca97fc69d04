"""Writing results: <UTC timestamp>.json, latest.json and latest.md under the results directory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.helpers import REPO


def machine() -> dict[str, Any]:
    """Where the figures were taken: they mean little without it."""
    try:
        import ansible

        ansible_version = ansible.__version__
    except ImportError:
        ansible_version = None
    return {
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ansible_core": ansible_version,
    }


def git_revision() -> dict[str, Any]:
    """Commit and whether the tree differs from it (read-only: no index refresh)."""

    def git(*args: str) -> str | None:
        result = subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    """One Markdown table per benchmark (and its notes), errors as such."""
    lines = [
        f"# gpuops benchmarks, {report['started_utc']}",
        "",
        f"Commit {report['git']['commit'] or 'unknown'}{' (with local changes)' if report['git']['dirty'] else ''}; "
        f"{report['machine']['cpus']} CPUs, load {report['machine']['load_avg_1m']} at start; "
        f"Python {report['machine']['python']}, ansible-core {report['machine']['ansible_core']}; "
        f"--runs {report['args']['runs']}, --pods {','.join(map(str, report['args'].get('pods', [2])))}. "
        f"Took {report['duration_s']:.0f} s.",
        "",
    ]
    for name, bench in report["benchmarks"].items():
        lines += [f"## {name}", ""]
        if "error" in bench:
            lines += ["**Failed:**", "", "```", bench["error"], "```", ""]
            continue
        for table in bench["tables"]:
            lines += [f"**{table['title']}**", ""]
            lines.append("| " + " | ".join(_cell(h) for h in table["headers"]) + " |")
            lines.append("|" + "|".join(" --- " for _ in table["headers"]) + "|")
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table["rows"]]
            lines.append("")
            lines += [f"- {note}" for note in table["notes"]]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(report: dict[str, Any], out: Path) -> Path:
    """Write <UTC timestamp>.json, then replace latest.json and latest.md; return the timestamped file."""
    out.mkdir(parents=True, exist_ok=True)
    stamped = out / f"{report['started_utc'].replace(':', '').replace('-', '')}.json"
    text = json.dumps(report, indent=2) + "\n"
    stamped.write_text(text)
    for name, content in (("latest.json", text), ("latest.md", markdown(report))):
        temporary = out / f".{name}.tmp"
        temporary.write_text(content)
        temporary.replace(out / name)
    return stamped
