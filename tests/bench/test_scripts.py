"""Every benchmark in bench/ still runs: its smallest configuration exits 0 and prints its ratio.

The figures are not checked (speed goes in bench/, never in a timed assertion); what is
checked is that each script starts its servers, drives the portal and reports, so the
suite does not rot between the runs that docs/benchmarks.md quotes. The scripts that
need PostgreSQL whatever the database under test (flood, two_instances) run in the
PostgreSQL pass of scripts/test; the others run in both passes, on that pass's database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DATABASE = os.environ.get("SELFSERVICE_TEST_DATABASE", "sqlite")

SMALLEST = {
    "admin_logs": ["--events", "2000", "--flood", "1000", "--runs", "1", "--database", DATABASE],
    "reset_cpu": ["--rounds", "1", "--workers", "1", "--directory", "openldap", "--database", DATABASE],
    "forgot_throughput": ["--seconds", "1", "--rounds", "1", "--workers", "1", "--database", DATABASE],
    "memory_floor": [],
}
if DATABASE == "postgres":
    SMALLEST |= {
        "flood": [
            "--clients",
            "1",
            "--resets",
            "1",
            "--pause",
            "0",
            "--workers",
            "1",
            "--refusal-seconds",
            "0.5",
        ],
        "two_instances": ["--clients", "1", "--seconds", "1", "--rounds", "1"],
    }


def run(script: str, arguments: list[str]) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SELFSERVICE_")}
    done = subprocess.run(
        [sys.executable, f"bench/{script}.py", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_benchmark_runs_and_prints_its_ratio(script: str) -> None:
    output = run(script, SMALLEST[script])
    assert "ratio line:" in output
    figures = [
        json.loads(line.removeprefix("RESULT ")) for line in output.splitlines() if line.startswith("RESULT ")
    ]
    assert figures, "no RESULT line for bench/run_all.py"
    assert all({"figure", "value", "unit", "target"} <= set(figure) for figure in figures)
    assert "machine: " in output  # the load average beside the figures


def test_run_all_writes_a_summary_table(tmp_path: Path) -> None:
    output = tmp_path / "latest.md"
    arguments = ["--quick", "--only", "admin_logs", "--events", "500", "--output", str(output)]
    run("run_all", arguments)
    text = output.read_text()
    assert "| figure | target | measured | met |" in text
    assert "| admin dashboard, sqlite, 500 events | < 100 ms |" in text


def test_reset_cpu_measures_the_overhead_against_its_allowance() -> None:
    output = run("reset_cpu", [*SMALLEST["reset_cpu"], "--directory", "builtin", "--overhead"])
    assert "of the allowance (1.0x or less meets 1.15x)" in output
    assert 'RESULT {"figure": "P1 overhead per reset, argon2 negligible, builtin' in output
