"""P2: GET /forgot against a bare Flask page under the same gunicorn, with a real load generator.

    .venv/bin/python bench/forgot_throughput.py --connections 32 --seconds 10 --rounds 3

Starts the portal (production settings, a scratch PostgreSQL database by default, Redis
under a fresh key prefix, limits lifted so nothing is refused but every limit still runs)
and bench/bare_app.py (one Flask route returning a fixed page of the same size as
/forgot), both under gunicorn with the same --workers and --threads and
``--no-control-socket``. wrk (or ab, when wrk is missing) loads each in turn with
--connections keep-alive connections for --seconds; the rounds alternate which one goes
first. Prints requests a second, p50 and p99 latency, the servers' CPU per request (from
/proc: master and workers), the ratio portal/bare (medians over the rounds), and each
worker's peak RSS (VmHWM) after serving pages (P5). The load generator runs on the same
cores as the servers, alike for both.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

from common import (
    Browser,
    build_app,
    close_app,
    cpu_seconds,
    environment,
    free_port,
    gunicorn,
    machine_line,
    portal_settings,
    result,
    scratch_database,
    server_pids,
    worker_peaks,
)

TARGET = 0.5
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass
class Load:
    """One load run: requests a second, latency percentiles (ms), requests, non-2xx answers."""

    rate: float
    p50: float
    p99: float
    requests: int
    errors: int


@dataclass
class Target:
    name: str
    url: str
    server: Any
    runs: list[Load] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # seconds per request, each run

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


def tool() -> str:
    for name in ("wrk", "ab"):
        if shutil.which(name):
            return name
    raise SystemExit("neither wrk nor ab is installed: apt-get install wrk (or apache2-utils)")


def wrk(url: str, connections: int, seconds: int) -> Load:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()  # type: ignore[union-attr]
        return float(value) * UNITS[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return Load(
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        p50=latency("50%"),
        p99=latency("99%"),
        requests=int(re.search(r"(\d+) requests in", text).group(1)),  # type: ignore[union-attr]
        errors=int(errors.group(1)) if errors else 0,
    )


def ab(url: str, connections: int, seconds: int) -> Load:
    command = ["ab", "-k", "-q", "-c", str(connections), "-t", str(seconds), "-n", "10000000", url]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        return float(re.search(pattern, text, re.M).group(1))  # type: ignore[union-attr]

    errors = re.search(r"Non-2xx responses:\s+(\d+)", text)
    return Load(
        rate=number(r"Requests per second:\s+([\d.]+)"),
        p50=number(r"^\s+50%\s+(\d+)"),
        p99=number(r"^\s+99%\s+(\d+)"),
        requests=int(number(r"Complete requests:\s+(\d+)")),
        errors=int(errors.group(1)) if errors else 0,
    )


def load(target: Target, generator: str, connections: int, seconds: int) -> None:
    pids = server_pids(target.server)
    before = cpu_seconds(pids)
    run = (wrk if generator == "wrk" else ab)(target.url, connections, seconds)
    target.cpu.append((cpu_seconds(pids) - before) / max(run.requests, 1))
    target.runs.append(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    options = parser.parse_args()
    generator = tool()
    print(machine_line())
    shape = {"workers": options.workers, "threads": options.threads}
    with scratch_database(options.database) as url, tempfile.TemporaryDirectory() as instance:
        settings = portal_settings(url, instance)
        close_app(build_app(settings))
        portal_port, bare_port = free_port(), free_port()
        with gunicorn(environment(settings), portal_port, **shape) as portal:
            size = len(Browser(portal_port).request("GET", "/forgot")[2].encode())
            bare_env = {**environment({}), "BENCH_BARE_PAGE_BYTES": str(size)}
            with gunicorn(bare_env, bare_port, app="bare_app:app", health="/", **shape) as bare:
                targets = [
                    Target("bare Flask page", f"http://127.0.0.1:{bare_port}/", bare),
                    Target("portal GET /forgot", f"http://127.0.0.1:{portal_port}/forgot", portal),
                ]
                for target in targets:  # warm up: imports, templates, pools
                    (wrk if generator == "wrk" else ab)(target.url, options.connections, 1)
                for index in range(options.rounds):
                    for target in targets if index % 2 == 0 else targets[::-1]:
                        load(target, generator, options.connections, options.seconds)
                peaks = {target.name: worker_peaks(target.server) for target in targets}
    report(targets, peaks, options, generator, size)
    print(machine_line())


def report(
    targets: list[Target], peaks: dict[str, list[float]], options: Any, generator: str, size: int
) -> None:
    bare, portal = targets
    print(
        f"\nP2: {generator}, {options.connections} connections, {options.seconds:g} s x {options.rounds}"
        f" alternating rounds; gunicorn --workers {options.workers} --threads {options.threads};"
        f" {options.database}, Redis; pages of {size} bytes\n"
    )
    print(
        "| server | requests/s | p50 (ms) | p99 (ms) | CPU/request (ms) | non-2xx | peak RSS/worker (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for target in targets:
        print(
            f"| {target.name} | {target.median('rate'):.0f} | {target.median('p50'):.2f}"
            f" | {target.median('p99'):.2f} | {statistics.median(target.cpu) * 1000:.3f}"
            f" | {sum(run.errors for run in target.runs)}"
            f" | {', '.join(f'{p:.1f}' for p in peaks[target.name])} |"
        )
    ratio = portal.median("rate") / bare.median("rate")
    cpu_ratio = statistics.median(portal.cpu) / statistics.median(bare.cpu)
    per_round = [p.rate / b.rate for p, b in zip(portal.runs, bare.runs, strict=True)]
    print(f"\nratio line: portal/bare throughput {ratio:.2f}x (target >= {TARGET}x); per round: ", end="")
    print(", ".join(f"{r:.2f}x" for r in per_round) + f"; CPU per request portal/bare {cpu_ratio:.1f}x")
    note = "" if portal.runs[0].errors == 0 else "the portal answered non-2xx"
    result("P2 GET /forgot throughput / bare Flask", ratio, "x", f">= {TARGET}", note)
    result("P2 GET /forgot requests/s", portal.median("rate"), "req/s")
    result("P2 bare Flask requests/s", bare.median("rate"), "req/s")
    result("P2 GET /forgot p50", portal.median("p50"), "ms")
    result("P2 GET /forgot p99", portal.median("p99"), "ms")
    result("P2 GET /forgot CPU per request", statistics.median(portal.cpu) * 1000, "ms CPU")
    result("P2 bare Flask CPU per request", statistics.median(bare.cpu) * 1000, "ms CPU")
    result("P5 peak RSS per worker, serving GET /forgot", max(peaks[portal.name]), "MiB", "<= 100")
    result("P5 peak RSS per worker, bare Flask", max(peaks[bare.name]), "MiB")


if __name__ == "__main__":
    main()
