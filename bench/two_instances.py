"""P6: resets a second on two portal instances against one, on one PostgreSQL and one Redis.

    .venv/bin/python bench/two_instances.py --clients 8 --seconds 15 --rounds 2

Two gunicorns (``--no-control-socket``, --workers each, --threads 4) serve one scratch
PostgreSQL database and one Redis key prefix, production settings, the default argon2
parameters, limits lifted (they still run). --clients students, each enrolled, reset
their forgotten passwords end to end over HTTP as fast as they can for --seconds: once
all against instance A, once split between A and B; the rounds alternate which goes
first. Prints successful resets a second, p50 and p95 of one reset, the ratio two/one,
and the peak RSS (VmHWM) of every worker after concurrent resets (P5).

On a machine whose cores one instance already keeps busy the ratio cannot pass 1.0x: it
then shows what a second instance costs or loses (shared rows, Redis, the pool), not
capacity. The clients run on the same cores as the servers, alike in both phases.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from common import (
    Browser,
    build_app,
    close_app,
    create_student,
    enroll,
    environment,
    free_port,
    gunicorn,
    machine_line,
    percentile,
    portal_settings,
    reset,
    result,
    scratch_postgres,
    worker_peaks,
)


@dataclass
class Phase:
    name: str
    seconds: list[float] = field(default_factory=list)  # wall time of each phase run
    done: list[float] = field(default_factory=list)  # durations of successful resets
    failed: int = 0

    @property
    def rate(self) -> float:
        return len(self.done) / sum(self.seconds)


def drive(phase: Phase, ports: list[int], logins: list[str], answers: dict[str, str], seconds: float) -> None:
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        browser = Browser(ports[index % len(ports)])
        while time.monotonic() < deadline:
            started = time.perf_counter()
            ok = reset(browser, logins[index], answers)
            with lock:
                if ok:
                    phase.done.append(time.perf_counter() - started)
                else:
                    phase.failed += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(logins))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds.append(time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="students resetting at once")
    parser.add_argument("--seconds", type=float, default=15, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="one/two phase pairs, alternating")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per instance")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--argon2-max-concurrent", type=int, default=None, help="ARGON2_MAX_CONCURRENT (the portal's default)"
    )
    options = parser.parse_args()
    print(machine_line())
    logins = [f"s{2_000_001 + n}" for n in range(options.clients)]
    with scratch_postgres("selfservice_bench") as url, tempfile.TemporaryDirectory() as instance:
        bound = options.argon2_max_concurrent
        bound = {} if bound is None else {"ARGON2_MAX_CONCURRENT": bound}
        settings = portal_settings(url, instance, WEB_WORKERS=options.workers, **bound)
        app = build_app(settings)
        for number, login in enumerate(logins, start=2_000_001):
            create_student(app, login, number)
        answers = enroll(app, logins)
        close_app(app)
        env, shape = environment(settings), {"workers": options.workers, "threads": options.threads}
        ports = [free_port(), free_port()]
        with gunicorn(env, ports[0], **shape) as first, gunicorn(env, ports[1], **shape) as second:
            for port in ports:  # warm both
                reset(Browser(port), logins[0], answers)
            one, two = Phase("one instance"), Phase("two instances")
            for index in range(options.rounds):
                for phase in (one, two) if index % 2 == 0 else (two, one):
                    used = ports[:1] if phase is one else ports
                    drive(phase, used, logins, answers, options.seconds)
            peaks = {"A": worker_peaks(first), "B": worker_peaks(second)}
    report(one, two, peaks, options)
    print(machine_line())


def report(one: Phase, two: Phase, peaks: dict[str, list[float]], options: Any) -> None:
    shape = f"gunicorn --workers {options.workers} --threads {options.threads}"
    runs = f"{options.seconds:g} s x {options.rounds} rounds"
    print(f"\nP6: {options.clients} students resetting at once, {runs};")
    print(f"each instance {shape}; PostgreSQL, Redis\n")
    print("| phase | resets/s | p50 (ms) | p95 (ms) | succeeded | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    for phase in (one, two):
        p50 = statistics.median(phase.done) * 1000 if phase.done else float("nan")
        p95 = percentile(phase.done, 0.95) * 1000 if phase.done else float("nan")
        counts = f"{len(phase.done)} | {phase.failed}"
        print(f"| {phase.name} | {phase.rate:.2f} | {p50:.0f} | {p95:.0f} | {counts} |")
    ratio = two.rate / one.rate if one.rate else float("nan")
    print(f"\nP5: peak RSS per worker after concurrent resets (MiB): {peaks}")
    print(f"\nratio line: two instances / one {ratio:.2f}x resets a second")
    note = "" if not (one.failed or two.failed) else f"{one.failed + two.failed} resets failed"
    result("P6 two instances / one, resets a second", ratio, "x", "", note)
    result("P6 resets a second, one instance", one.rate, "resets/s")
    result("P6 resets a second, two instances", two.rate, "resets/s")
    every = [p for found in peaks.values() for p in found]
    result("P5 peak RSS per worker, concurrent resets", max(every), "MiB", "<= 100")


if __name__ == "__main__":
    main()
