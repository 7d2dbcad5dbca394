"""A flood from one address against a student's reset from another, on gunicorn, PostgreSQL and Redis.

    .venv/bin/python bench/flood.py --clients 16 --resets 20

Starts the portal under gunicorn (2 workers, the default argon2 parameters) on a
scratch PostgreSQL database and a fresh Redis key prefix. The student resets a
forgotten password from 127.0.0.3 (a school address in TRUSTED_NETWORKS), first on a
quiet portal, then while --clients concurrent clients post wrong answers from 127.0.0.2
as fast as they can. Prints the student's success rate and p50/p95 both times, the
server CPU per refused request against one argon2 verify measured in the same run, and
how long the admin's rate-limit page and dashboard take after the flood.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

from common import (
    ADMIN_PASSWORD,
    CSRF,
    REDIS_URL,
    Browser,
    build_app,
    close_app,
    cpu_seconds,
    create_admin,
    create_student,
    enroll,
    environment,
    free_port,
    gunicorn,
    machine_line,
    percentile,
    reset,
    result,
    scratch_postgres,
    server_pids,
)

from selfservice.config import DEFAULTS
from selfservice.security.answers import AnswerHasher

ATTACKER, STUDENT, ADMIN_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"


# The portal under gunicorn ------------------------------------------------------------


def settings(database_url: str, instance: str, workers: int) -> dict[str, Any]:
    """Production settings with the default limits; the student's and admin's addresses trusted."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": instance,
        "BASE_URL": "https://password.school.test",
        "WEB_WORKERS": workers,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "TRUSTED_NETWORKS": [f"{STUDENT}/32", f"{ADMIN_IP}/32"],
        # The admin pages are timed after a password sign-in, not through the second factor.
        "STAFF_SECOND_FACTOR": {"admin": "off"},
    }


def prepare(config: dict[str, Any]) -> tuple[float, dict[str, str]]:
    """Migrate, seed the student (enrolled) and an admin; one argon2 verify's CPU seconds, the answers."""
    app = build_app(config)
    create_student(app, "s1000001", 1000001)
    create_admin(app)
    answers = enroll(app, ["s1000001"])
    close_app(app)
    hasher = AnswerHasher(
        DEFAULTS["ARGON2_MEMORY_KIB"], DEFAULTS["ARGON2_TIME_COST"], DEFAULTS["ARGON2_PARALLELISM"]
    )
    stored = hasher.hash("blue bunny rabbit")
    started = time.process_time()
    for _ in range(10):
        hasher.verify(stored, "not it")
    return (time.process_time() - started) / 10, answers


# The people ---------------------------------------------------------------------------


def student_reset(port: int, answers: dict[str, str]) -> tuple[bool, float]:
    """One forgotten-password reset from start to the new password; (succeeded, seconds)."""
    started = time.perf_counter()
    ok = reset(Browser(port, STUDENT), "s1000001", answers)
    return ok, time.perf_counter() - started


def attacker(
    port: int, stop: threading.Event, counts: dict[int, int], lock: threading.Lock, interval: float
) -> None:
    browser = Browser(port, ATTACKER)
    browser.post("/forgot", {"login": "s1000002"})
    page = browser.request("GET", "/forgot/questions")[2]
    token = CSRF.search(page)
    form = {"csrf_token": token.group(1) if token else "", **{f"answer_{n}": "wrong" for n in (1, 2, 3)}}
    next_at = time.monotonic()
    while not stop.is_set():
        status = browser.request("POST", "/forgot/questions", form)[0]
        with lock:
            counts[status] = counts.get(status, 0) + 1
        next_at += interval
        stop.wait(max(0.0, next_at - time.monotonic()))


def resets(port: int, answers: dict[str, str], count: int, pause: float) -> list[tuple[bool, float]]:
    done = []
    for _ in range(count):
        done.append(student_reset(port, answers))
        time.sleep(pause)
    return done


def admin_pages(port: int) -> dict[str, float]:
    browser = Browser(port, ADMIN_IP)
    browser.post("/login", {"login": "benchadmin", "password": ADMIN_PASSWORD})
    times = {}
    for name, path in [("rate-limit page", "/admin/rate-limits"), ("dashboard", "/admin/")]:
        status = browser.request("GET", path)[0]
        if status != 200:
            raise RuntimeError(f"the admin's {name} answered {status}")
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            browser.request("GET", path)
            runs.append(time.perf_counter() - started)
        times[name] = statistics.median(runs)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent flooding clients")
    parser.add_argument("--resets", type=int, default=20, help="student resets in each phase")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between the student's resets")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=0, help="flood requests a second, all clients together (0: flat out)"
    )
    options = parser.parse_args()
    print(machine_line())
    port = free_port()
    with scratch_postgres("selfservice_flood") as url, tempfile.TemporaryDirectory() as instance:
        config = settings(url, instance, options.workers)
        verify, answers = prepare(config)
        with gunicorn(environment(config), port, workers=options.workers, threads=4) as server:
            pids = server_pids(server)
            cpu_start = cpu_seconds(pids)
            quiet = resets(port, answers, options.resets, options.pause)
            cpu_per_reset = (cpu_seconds(pids) - cpu_start) / len(quiet)
            cpu_before, counts, lock, stop = cpu_seconds(pids), {}, threading.Lock(), threading.Event()
            interval = options.clients / options.rate if options.rate else 0.0
            started = time.monotonic()
            flooders = [
                threading.Thread(target=attacker, args=(port, stop, counts, lock, interval))
                for _ in range(options.clients)
            ]
            for thread in flooders:
                thread.start()
            time.sleep(2)
            flooded = resets(port, answers, options.resets, options.pause)
            stop.set()
            for thread in flooders:
                thread.join()
            cpu_flood = cpu_seconds(pids) - cpu_before
            flood_seconds = time.monotonic() - started
            time.sleep(3)  # the workers write their breach counts every 2 s
            pages = admin_pages(port)
    report(options, verify, quiet, flooded, counts, cpu_flood, cpu_per_reset, pages, flood_seconds)
    print(machine_line())


def report(
    options: Any,
    verify: float,
    quiet: list[tuple[bool, float]],
    flooded: list[tuple[bool, float]],
    counts: dict[int, int],
    cpu_flood: float,
    cpu_per_reset: float,
    pages: dict[str, float],
    flood_seconds: float,
) -> None:
    quiet_times = [seconds for ok, seconds in quiet if ok]
    flood_times = [seconds for ok, seconds in flooded if ok]
    refused = counts.get(429, 0)
    # Not the refusals' cost: the student's resets (priced at the quiet phase's CPU per reset) and
    # the flood's requests that were let through (three argon2 verifies each, on decoy questions).
    allowed = sum(n for status, n in counts.items() if status != 429)
    flood_cpu = cpu_flood - cpu_per_reset * len(flooded) - allowed * 3 * verify
    per_refusal = max(flood_cpu, 0.0) / refused if refused else float("nan")
    print(f"\n{options.clients} flooding clients from {ATTACKER}; student from {STUDENT}")
    print(f"{options.workers} gunicorn workers; PostgreSQL and Redis\n")
    print("| figure | value |")
    print("|---|---:|")
    print(f"| student resets that succeeded, quiet | {len(quiet_times)}/{len(quiet)} |")
    print(f"| student resets that succeeded, under flood | {len(flood_times)}/{len(flooded)} |")
    if quiet_times and flood_times:
        q50, q95 = statistics.median(quiet_times), percentile(quiet_times, 0.95)
        f50, f95 = statistics.median(flood_times), percentile(flood_times, 0.95)
        print(f"| student p50 / p95, quiet (ms) | {q50 * 1000:.0f} / {q95 * 1000:.0f} |")
        print(f"| student p50 / p95, under flood (ms) | {f50 * 1000:.0f} / {f95 * 1000:.0f} |")
        print(f"| p95 under flood / quiet | {f95 / q95:.2f}x |")
    answered = dict(sorted(counts.items()))
    print(f"| flood requests answered | {sum(counts.values())} (by status: {answered}) |")
    print(f"| flood rate (requests a second) | {sum(counts.values()) / flood_seconds:.0f} |")
    print(f"| one argon2 verify (CPU ms) | {verify * 1000:.2f} |")
    print(f"| server CPU per refused request, upper bound (ms) | {per_refusal * 1000:.3f} |")
    print(f"| ... as a share of one argon2 verify | {per_refusal / verify * 100:.1f}% |")
    for name, seconds in pages.items():
        print(f"| {name} after the flood (ms) | {seconds * 1000:.0f} |")
    note = f"{len(flood_times)}/{len(flooded)} resets succeeded under the flood"
    if quiet_times and flood_times:
        print(f"\nratio line: student p95 under flood / quiet {f95 / q95:.2f}x (target <= 1.5x)")
        result("flood: student p95 under flood / quiet", f95 / q95, "x", "<= 1.5", note)
    else:
        print("\nratio line: no successful reset to compare")
        result("flood: student p95 under flood / quiet", float("nan"), "x", "<= 1.5", note)
    result("flood: CPU per refused request / one argon2 verify", per_refusal / verify * 100, "%", "<= 2")


if __name__ == "__main__":
    main()
