"""Run the whole benchmark suite and write its figures: ``python3 bench/run_all.py [--quick]``.

From a clean clone: sets up .venv with ``bash scripts/test --install-only`` when it is
missing, installs wrk with apt-get when neither wrk nor ab is there (as root), then runs
each benchmark one after the other with the .venv's Python:

    admin_logs          the admin pages and the dashboard at --events audit events (1,000,000)
    flood               a flood from one address against a student's reset (issue 10); the CPU
                        of a refused request against an argon2 verify and a bare 429
    reset_cpu           P1 reset CPU / argon2 floor, SQL statements per reset; P5 RSS
    reset_cpu:overhead  P1 the same reset with argon2 negligible: the CPU besides argon2,
                        against what 1.15x allows
    forgot_throughput   P2 GET /forgot / bare Flask under the same gunicorn; P5 RSS
    two_instances       P6 two instances / one; P5 RSS under concurrent resets
    memory_floor        P5's floor: the libraries a worker needs and one argon2 block

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), Redis on 127.0.0.1:6379 and
slapd (scripts/test installs it). The full profile takes about 9 minutes on 2 cores
(longer on a loaded machine), a third of it seeding a million audit events twice;
``--events 200000`` shortens that part, ``--quick`` is a smoke run of every script in
about 95 s (its figures are not worth quoting). Prints a summary table (figure, target,
measured) and writes it, with every script's own output, to --output
(bench/results/latest.md, git-ignored).
Exits non-zero when a script fails, not when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"

FULL = {
    "admin_logs": ["--events", "1000000", "--database", "both", "--runs", "7"],
    "flood": ["--clients", "16", "--resets", "20", "--pause", "2", "--rate", "100"],
    "reset_cpu": ["--rounds", "20"],
    "reset_cpu:overhead": ["--rounds", "20", "--overhead"],
    "forgot_throughput": ["--connections", "32", "--seconds", "10", "--rounds", "3"],
    "two_instances": ["--clients", "8", "--seconds", "15", "--rounds", "2"],
    "memory_floor": [],
}
QUICK = {
    "admin_logs": ["--events", "5000", "--flood", "10000", "--database", "both", "--runs", "1"],
    "flood": ["--clients", "2", "--resets", "2", "--pause", "0", "--refusal-seconds", "1"],
    "reset_cpu": ["--rounds", "2"],
    "reset_cpu:overhead": ["--rounds", "2", "--overhead"],
    "forgot_throughput": ["--connections", "32", "--seconds", "1", "--rounds", "1"],
    "two_instances": ["--clients", "2", "--seconds", "2", "--rounds", "1"],
    "memory_floor": [],
}
NOISE = re.compile(r"^INFO  \[alembic")


def set_up() -> None:
    if not (PYTHON.exists() and PYTHON.with_name("gunicorn").exists()):
        subprocess.run(["bash", "scripts/test", "--install-only"], cwd=ROOT, check=True)
    if shutil.which("wrk") or shutil.which("ab"):
        return
    if os.geteuid() != 0:
        print("wrk is missing (apt-get install wrk): forgot_throughput will fail", file=sys.stderr)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"], check=True, env=env)


def run(name: str, arguments: list[str]) -> tuple[int, float, list[str]]:
    """Run one script, echoing its output; (exit code, seconds, output lines)."""
    command = [str(PYTHON), f"bench/{name}.py", *arguments]
    print(f"\n== {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        if NOISE.match(line):
            continue
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    return process.wait(), time.monotonic() - started, lines


def met(value: float, target: str) -> str:
    found = re.match(r"(<=|>=|<|>)\s*([\d.]+)", target)
    if not found:
        return ""
    bound = float(found.group(2))
    checks = {"<=": value <= bound, ">=": value >= bound, "<": value < bound, ">": value > bound}
    return "yes" if checks[found.group(1)] else "**no**"


def summary(figures: list[dict[str, object]]) -> list[str]:
    lines = ["| figure | target | measured | met |", "|---|---|---:|---|"]
    for figure in figures:
        value = float(figure["value"])  # type: ignore[arg-type]
        target, unit = str(figure["target"]), str(figure["unit"])
        shown = f"{value:,.0f} {unit}" if value.is_integer() else f"{value:,.2f} {unit}"
        note = f" ({figure['note']})" if figure["note"] else ""
        shown_target = f"{target} {unit}".strip() if target else ""
        lines.append(f"| {figure['figure']}{note} | {shown_target} | {shown} | {met(value, target)} |")
    return lines


def machine() -> list[str]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- commit: {commit.stdout.strip()}{' (uncommitted changes)' if dirty.stdout.strip() else ''}",
        f"- machine: {os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest run of every script (a smoke test)")
    parser.add_argument("--events", type=int, help="audit events for admin_logs (full: 1,000,000)")
    parser.add_argument("--only", help="comma-separated scripts to run, e.g. reset_cpu,two_instances")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "latest.md")
    options = parser.parse_args()
    set_up()
    profile = {name: list(arguments) for name, arguments in (QUICK if options.quick else FULL).items()}
    if options.events:
        arguments = profile["admin_logs"]
        arguments[arguments.index("--events") + 1] = str(options.events)
    names = options.only.split(",") if options.only else list(profile)
    load_before = os.getloadavg()
    header = machine()
    figures: list[dict[str, object]] = []
    sections, failed = [], []
    for name in names:
        script = name.split(":", 1)[0]  # "reset_cpu:overhead" runs reset_cpu with other arguments
        code, seconds, lines = run(script, profile[name])
        figures += [json.loads(line.removeprefix("RESULT ")) for line in lines if line.startswith("RESULT ")]
        if code:
            failed.append(name)
        command = " ".join(["bench/" + script + ".py", *profile[name]])
        sections += [f"### `{command}`", "", f"exit {code}, {seconds:.0f} s", "", "```", *lines, "```", ""]
    load_after = os.getloadavg()
    header.append(
        f"- load average: {load_before[0]:.2f} before, {load_after[0]:.2f} after"
        " (a shared machine: the ratios, measured within each run, are what to read)"
    )
    table = summary(figures)
    profile_name = "quick (smoke, not for quoting)" if options.quick else "full"
    report = [f"# Benchmark results, {profile_name}", "", *header, "", *table, "", "## Output", "", *sections]
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text("\n".join(report) + "\n")
    print("\n" + "\n".join([*header, "", *table]))
    print(f"\nwritten to {options.output}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
