"""Benchmarks on one site.yml deployment on the local cloud (Docker pods).

The deployment is tests/integration/site/conftest.py's Site: its own local
cloud port, state directory, Compose project and ports, so it never touches a
developer's own deployment. SiteSession.close() always tears it down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench import profile
from bench.common import (
    BenchError,
    Result,
    Table,
    check_playbook,
    fmt_ratio,
    fmt_s,
    ratio,
    say,
    stat_row,
    stderr_note,
    summary,
    timed,
)
from tests.integration.helpers import VENV_BIN, free_port_block, run
from tests.integration.site.conftest import IDEMPOTENCE_ARGS, PREFIX, Site, children

STAGES = ("provision", "stack", "slurm", "exporter", "tunnel", "smoke")

# The tuning benchmark's "off" variant: environment variables only, each
# undoing one setting of ansible.cfg (see bench/README.md for what cannot be
# undone this way).
TUNING_OFF_ENV = {
    # ansible.cfg: pipelining = true. Off: every module is copied to the pod
    # (sftp) and run in a second SSH command.
    "ANSIBLE_PIPELINING": "False",
    # ansible.cfg: ControlMaster=auto, ControlPersist=120s. Off: without
    # ControlPersist in ssh_args Ansible adds no ControlPath, so every task
    # opens a new SSH connection (key exchange + auth each time).
    "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ServerAliveInterval=15",
    # ansible.cfg: forks = 20. Off: Ansible's default 5 (no effect with up to 5 pods: a play on the pods runs them all at once).
    "ANSIBLE_FORKS": "5",
}


class SiteSession:
    """One Site with `pods` pods for the site-based benchmarks, created lazily, always torn down by close()."""

    def __init__(self, root: Path, pods: int = 2) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.site = site = Site(root)
        self.root = root
        self.pods = pods
        self.converged = False
        # Each pod count gets its own Compose project (the local cloud, state directory and ports are
        # already the Site's own), and tunnel ports for every pod: two per pod slot from the base
        # (inventories/common.yml); Site's block has room for 4 pods.
        site.project = f"{PREFIX}{os.getpid()}p{pods}"
        if 2 * pods > 8:
            site.tunnel_base = free_port_block(2 * pods)
        extra_file = root / "bench-extra.json"
        extra_file.write_text(json.dumps({"provision_pod_count": pods, "observability_project_name": site.project,
                                          "gpuops_tunnel_port_base": site.tunnel_base}))
        site.extra = [*site.extra, "-e", f"@{extra_file}"]

    # -- lifecycle -------------------------------------------------------------------------------
    def ensure_converged(self) -> None:
        """A full site.yml, untimed, when no benchmark has deployed the site yet."""
        if self.converged:
            return
        say("site: deploying with site.yml (untimed preparation)...")
        result, seconds = timed(lambda: self.site.site(check=False))
        check_playbook(result, "site.yml (preparation)")
        self.converged = True
        self.site.pod_list()
        say(f"site: deployed in {seconds:.1f} s")

    def close(self) -> None:
        """teardown.yml, then whatever is left: tunnels, stack containers, the local cloud and its pods."""
        site = self.site
        say("site: tearing down (teardown.yml)...")
        result = site.teardown(check=False)
        if result.returncode != 0:
            stderr_note(f"site: teardown.yml exited {result.returncode}; removing what is left by hand")
        site.purge()
        say("site: torn down")

    # -- facts about the deployment ------------------------------------------------------------
    def controller_command(self, *command: str) -> list[str]:
        """A command in the service plane's slurmctld container, as the job account (as submit_job.yml submits)."""
        return ["docker", "exec", "-u", "gpuops", "-w", "/tmp", f"{self.site.project}-slurmctld-1", *command]


def _site_run(session: SiteSession, what: str, *args: str, env: dict[str, str] | None = None,
              profiled: bool = False) -> tuple[dict[str, Any], float, dict[str, Any] | None]:
    """site.yml: its PLAY RECAP counts, wall seconds and, when profiled, its profile (bench/profile.py)."""
    if profiled:
        env = {**(env if env is not None else os.environ), **profile.profile_env()}
    result, seconds = timed(lambda: session.site.site(*args, check=False) if env is None
                            else session.site.playbook("./site.yml", *args, check=False, env=env))
    counts = check_playbook(result, what)
    if not profiled:
        return counts, seconds, None
    try:
        return counts, seconds, profile.profile(result.stdout)
    except ValueError as err:
        raise BenchError(f"{what}: {err}\n--- end of stdout\n{result.stdout[-2000:]}") from None


# -- 1. cold ---------------------------------------------------------------------------------------
def cold(session: SiteSession, top: int = 15) -> Result:
    if session.converged:
        raise BenchError("cold needs a fresh site, and this one is already deployed")
    stages, profiles = [], []
    table = Table(f"Cold: from nothing to the first job completed (site.yml stage by stage, {session.pods} pods)",
                  ["stage (--tags)", "wall (s)", "changed (PLAY RECAP)", "share of total"])
    for tag in STAGES:
        counts, seconds, run_profile = _site_run(session, f"site.yml --tags {tag}", "--tags", tag, profiled=True)
        profiles.append(run_profile)
        stages.append({"tag": tag, "wall_s": round(seconds, 3), "changed": counts["changed"], "ok": counts["ok"],
                       "changed_by_host": {host: c.get("changed", 0) for host, c in counts["hosts"].items()},
                       "profile": profile.trim(run_profile, top)})
        say(f"cold: {tag:<9} {seconds:7.1f} s  changed={counts['changed']}")
        if tag == "provision":
            session.site.pod_list()
    session.converged = True
    total = sum(stage["wall_s"] for stage in stages)
    for stage in stages:
        table.rows.append([stage["tag"], fmt_s(stage["wall_s"]), stage["changed"], f"{stage['wall_s'] / total:.0%}" if total else "-"])
    total_changed = sum(stage["changed"] for stage in stages)
    table.rows.append(["**total**", f"**{fmt_s(total)}**", f"**{total_changed}**", "100%"])
    table.notes = ["Each stage is one `ansible-playbook site.yml --tags <stage>` (its own Ansible start and inventory "
                   "build; the summary play, tagged always, runs every time). The smoke stage ends with a completed job."]
    say(f"cold: total {total:.1f} s, changed={total_changed}")
    combined = profile.combine(profiles, "sum", top)
    for line in profile.say_lines("cold", combined):
        say(line)
    return Result({"pods": session.pods, "stages": stages, "total_s": round(total, 3), "total_changed": total_changed,
                   "profile": combined},
                  [table, *profile.tables(f"Cold, all stages summed ({session.pods} pods)", combined, total)])


# -- 2. warm ---------------------------------------------------------------------------------------
def warm(session: SiteSession, runs: int, top: int = 15) -> Result:
    session.ensure_converged()
    samples, changed, profiles = [], [], []
    for index in range(runs):
        counts, seconds, run_profile = _site_run(session, "site.yml --skip-tags smoke (warm)", *IDEMPOTENCE_ARGS,
                                                 profiled=True)
        samples.append(seconds)
        changed.append(counts["changed"])
        profiles.append(run_profile)
        say(f"warm: run {index + 1}/{runs}: {seconds:.1f} s, changed={counts['changed']}")
    stats = summary(samples)
    combined = profile.combine(profiles, "median", top)
    for line in profile.say_lines("warm", combined):
        say(line)
    table = Table(f"Warm: site.yml on a converged site, every stage but smoke (`--skip-tags smoke`), {session.pods} pods",
                  ["runs", "median wall (s)", "min (s)", "max (s)", "changed (PLAY RECAP)"],
                  [stat_row(str(runs), stats, ", ".join(map(str, changed)))],
                  ["changed should be 0: a second site.yml changes nothing but the smoke stage, which submits a job "
                   "on every run (and reports that change), so it is left out here as in the idempotence tests; "
                   "cold's smoke row gives its time."])
    return Result({"pods": session.pods, **stats, "changed": changed, "args": list(IDEMPOTENCE_ARGS),
                   "profile": combined, "runs_profile": [profile.trim(run, top) for run in profiles]},
                  [table, *profile.tables(f"Warm ({session.pods} pods{', median of ' + str(runs) + ' runs' if runs > 1 else ''})",
                                          combined, stats["median_s"])])


# -- 3. submit -------------------------------------------------------------------------------------
def submit(session: SiteSession, runs: int) -> Result:
    session.ensure_converged()
    script = session.root / "bench-job.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    direct_cmd = session.controller_command("sbatch", "--wait", "--output=/dev/null", "--chdir=/tmp", "--wrap", "true")
    playbook_s, ssh_s = [], []
    for index in range(runs):
        result, seconds = timed(lambda: session.site.playbook(
            "./submit_job.yml", "-e", f"script={script}", "-e", "wait=true", check=False))
        check_playbook(result, "submit_job.yml")
        playbook_s.append(seconds)
        answer, raw = timed(lambda: subprocess.run(direct_cmd, capture_output=True, text=True, timeout=300, check=False))
        if answer.returncode != 0:
            raise BenchError(f"sbatch --wait in slurmctld exited {answer.returncode}: {answer.stderr[-1000:]}")
        ssh_s.append(raw)
        say(f"submit: run {index + 1}/{runs}: submit_job.yml {seconds:.2f} s, sbatch --wait {raw:.2f} s")
    play, direct = summary(playbook_s), summary(ssh_s)
    factor = ratio(play["median_s"], direct["median_s"])
    say(f"submit: median submit_job.yml {fmt_s(play['median_s'])} s vs sbatch {fmt_s(direct['median_s'])} s "
        f"({fmt_ratio(factor)})")
    table = Table(f"Submit: a trivial job, submitted and waited for ({session.pods} pods, median of {runs})",
                  ["how", "median (s)", "min (s)", "max (s)"],
                  [stat_row("`ansible-playbook submit_job.yml -e script=... -e wait=true`", play),
                   stat_row("`docker exec -u gpuops <project>-slurmctld-1 sbatch --wait --output=/dev/null --wrap true`",
                            direct),
                   ["ratio playbook / sbatch", fmt_ratio(factor), "", ""]],
                  ["The playbook also takes the deployment's lock, checks the inventory and the request, submits "
                   "in the service plane's slurmctld container as the job account (Slurm's Prolog makes the job's "
                   "directory on its node), waits, and copies the job's output from the service plane, where the "
                   "node handed it over. sbatch: the same container, the same account, nothing else."])
    return Result({"submit_job_yml": play, "sbatch": direct, "ratio": factor}, [table])


# -- 4. tunnel -------------------------------------------------------------------------------------
def _scraped_after(site: Site, pod: str, since: float) -> float | None:
    try:
        # timestamp() of a plain selector is the sample's time (of an expression, the query's).
        selector = f'up{{job="gpu",pod="{pod}"}}'
        values, stamps = site.query(selector), site.query(f"timestamp({selector})")
    except (httpx.HTTPError, AssertionError, ValueError, KeyError):
        return None
    if not values or not stamps or float(values[0]["value"][1]) != 1:
        return None
    stamp = float(stamps[0]["value"][1])
    return stamp if stamp > since else None


def _tunnel_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def tunnel(session: SiteSession, runs: int, settle_s: float = 5, timeout_s: float = 90) -> Result:
    session.ensure_converged()
    site = session.site
    names = sorted(pod["name"] for pod in site.pod_list())
    pod = names[-1]
    # The exporter's port as the tunnel has it (from the pod's slot, never its position).
    config = json.loads((site.tunnel_dir / f"gpuops-local-{pod}.json").read_text())
    local_port = config["forwards"][0]["local_port"]
    rows: list[dict[str, Any]] = []
    for index in range(runs):
        autossh = site.tunnel_pid(pod)
        if not autossh:
            raise BenchError(f"no autossh pid for {pod} in {site.tunnel_dir}")
        ssh_pids = _wait(lambda: children(autossh), 30, f"the ssh child of autossh {autossh}")
        if len(ssh_pids) != 1:
            raise BenchError(f"autossh {autossh} has {len(ssh_pids)} children, expected one ssh: {ssh_pids}")
        _wait(lambda: _scraped_after(site, pod, time.time() - 15), 60, f"a recent successful scrape of {pod}")
        os.kill(ssh_pids[0], signal.SIGKILL)
        killed = time.time()
        marks: dict[str, float | None] = {"ssh_respawned_s": None, "tunnel_answers_s": None, "scrape_seen_s": None}
        scrape_ts = None
        while time.time() - killed < timeout_s and marks["scrape_seen_s"] is None:
            now = time.time()
            if marks["ssh_respawned_s"] is None and [p for p in children(autossh) if p != ssh_pids[0]]:
                marks["ssh_respawned_s"] = now - killed
            if marks["tunnel_answers_s"] is None and marks["ssh_respawned_s"] is not None and _tunnel_answers(local_port):
                marks["tunnel_answers_s"] = time.time() - killed
            # Only a scrape through the new ssh counts (one in flight at the kill may still land).
            scrape_ts = _scraped_after(site, pod, killed) if marks["ssh_respawned_s"] is not None else None
            if scrape_ts is not None and scrape_ts - killed >= marks["ssh_respawned_s"] - 0.25:
                marks["scrape_seen_s"] = time.time() - killed
            else:
                scrape_ts = None
            time.sleep(0.2)
        if marks["scrape_seen_s"] is None:
            raise BenchError(f"no successful scrape of {pod} within {timeout_s}s of killing its tunnel's ssh")
        marks["scrape_started_s"] = scrape_ts - killed if scrape_ts is not None else None
        rows.append(marks)
        say(f"tunnel: run {index + 1}/{runs}: ssh back {fmt_s(marks['ssh_respawned_s'])} s, tunnel answers "
            f"{fmt_s(marks['tunnel_answers_s'])} s, first good scrape seen {fmt_s(marks['scrape_seen_s'])} s "
            f"(scrape started {fmt_s(marks['scrape_started_s'])} s after the kill)")
        time.sleep(settle_s)
    keys = ("ssh_respawned_s", "tunnel_answers_s", "scrape_started_s", "scrape_seen_s")
    stats = {key: summary([row[key] for row in rows if row[key] is not None]) for key in keys}
    labels = {"ssh_respawned_s": "autossh started a new ssh", "tunnel_answers_s": "exporter answers through the tunnel",
              "scrape_started_s": "first successful scrape started (its timestamp)",
              "scrape_seen_s": "first successful scrape visible in a query (the figure)"}
    table = Table(f"Tunnel: from killing the tunnel's ssh (SIGKILL) to metrics again, pod {pod} ({len(names)} pods, median of {runs})",
                  ["event after the kill", "median (s)", "min (s)", "max (s)"],
                  [stat_row(labels[key], stats[key]) for key in keys],
                  ["Polled every 0.2 s. Prometheus scrapes job gpu every observability_gpu_scrape_interval (5 s by default), "
                   f"so up to one interval is the wait for the next scrape. {settle_s:.0f} s pause between runs."])
    return Result({"pod": pod, "runs": rows, **stats}, [table])


def _wait(probe, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise BenchError(f"timed out after {timeout}s waiting for {what}")


# -- 6. tuning -------------------------------------------------------------------------------------
def _facts(session: SiteSession, subset: str | None) -> float:
    args = [str(VENV_BIN / "ansible"), "-i", str(session.site.inventory), "gpu_pods", "-m", "ansible.builtin.setup"]
    if subset:
        args += ["-a", f"gather_subset={subset}"]
    result, seconds = timed(lambda: run([*args, *session.site.extra], check=False))
    if result.returncode != 0:
        raise BenchError(f"ansible gpu_pods -m setup {subset or ''} exited {result.returncode}: {result.stdout[-1500:]}")
    return seconds


def tuning(session: SiteSession, runs: int, fact_runs: int) -> Result:
    session.ensure_converged()
    off_env = {**os.environ, **TUNING_OFF_ENV}
    samples: dict[str, list[float]] = {"on": [], "off": []}
    changed: dict[str, list[int]] = {"on": [], "off": []}
    for index in range(runs):
        # Alternate the order so that neither variant always runs right after the other.
        for variant in (("on", "off") if index % 2 == 0 else ("off", "on")):
            counts, seconds, _ = _site_run(session, f"site.yml --skip-tags smoke (tuning {variant})", *IDEMPOTENCE_ARGS,
                                           env=None if variant == "on" else off_env)
            samples[variant].append(seconds)
            changed[variant].append(counts["changed"])
            say(f"tuning: run {index + 1}/{runs} {variant:>3}: {seconds:.1f} s, changed={counts['changed']}")
    on, off = summary(samples["on"]), summary(samples["off"])
    factor = ratio(off["median_s"], on["median_s"])
    say(f"tuning: median on {fmt_s(on['median_s'])} s, off {fmt_s(off['median_s'])} s (off/on {fmt_ratio(factor)})")

    subsets = {"all (what gather_facts: true collects)": "all",
               "slurm role: !all,hardware,network": "!all,hardware,network",
               "dcgm_exporter role: !all": "!all"}
    facts = {label: summary([_facts(session, subset) for _ in range(fact_runs)]) for label, subset in subsets.items()}
    for label, stats in facts.items():
        say(f"tuning: facts {label}: median {fmt_s(stats['median_s'])} s")

    table = Table(f"Tuning: a warm site.yml (`--skip-tags smoke`, as warm) with ansible.cfg's tuning on and off "
                  f"({session.pods} pods, median of {runs})",
                  ["variant", "median wall (s)", "min (s)", "max (s)", "changed"],
                  [stat_row("on: ansible.cfg as is", on, ", ".join(map(str, changed["on"]))),
                   stat_row("off: " + ", ".join(f"{k}={v!r}" for k, v in TUNING_OFF_ENV.items()), off,
                            ", ".join(map(str, changed["off"]))),
                   ["ratio off / on", fmt_ratio(factor), "", "", ""]],
                  ["Not changeable through the environment, so the same in both: facts (every play sets gather_facts: false, "
                   "the roles call setup with their own gather_subset; the table below prices that), apt installs batched "
                   "in one task per role (no-ops on a warm run).",
                   f"Forks (20 vs 5) make no difference with up to 5 pods ({session.pods} here)."])
    facts_table = Table(f"Tuning: fact gathering on all {session.pods} pods, `ansible gpu_pods -m setup` (median of {fact_runs})",
                        ["gather_subset", "median (s)", "vs all"],
                        [[label, fmt_s(stats["median_s"]), fmt_ratio(ratio(stats["median_s"], facts[next(iter(facts))]["median_s"]))]
                         for label, stats in facts.items()],
                        ["Each call includes ansible's startup and inventory build, with ansible.cfg's tuning on."])
    return Result({"on": on, "off": off, "ratio_off_to_on": factor, "changed": changed, "off_env": TUNING_OFF_ENV,
                   "facts": facts}, [table, facts_table])
