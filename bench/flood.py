"""A flood from one address against a student's reset from another, on gunicorn, PostgreSQL and Redis.

    .venv/bin/python bench/flood.py --clients 16 --resets 20 --rate 100

Starts the portal under gunicorn (2 workers, the default argon2 parameters) on a
scratch PostgreSQL database and a fresh Redis key prefix. The student resets a
forgotten password from 127.0.0.3 (a school address in TRUSTED_NETWORKS), first on a
quiet portal, then while --clients concurrent clients post wrong answers from 127.0.0.2
(at --rate requests a second, or as fast as they can). Prints the student's success rate
and p50/p95 both times and how long the admin's rate-limit page and dashboard take after
the flood.

Then the cost of a refusal: 127.0.0.5, already over its limit, posts wrong answers that
are all refused, at --rate a second and flat out, for --refusal-seconds at a time. In
each of --refusal-rounds rounds, alternating: nothing (the idle baseline: every server's
CPU with no request), the portal, a bare Flask app answering a fixed 429 page of the
same size and a bare WSGI callable answering it (bench/bare_app.py, both under the same
gunicorn shape), each server's CPU from /proc. A refusal's CPU is its server's CPU over
the phase less that server's idle CPU for as long, divided by the requests answered;
argon2 verifies are timed in this process in every round.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
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
from flask import Flask

from selfservice.config import DEFAULTS
from selfservice.extensions import limiter
from selfservice.security.answers import AnswerHasher
from selfservice.security.throttling import THROTTLE_ATTRIBUTE

ATTACKER, STUDENT, ADMIN_IP, REFUSED = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
FLOODED = "/forgot/questions"
WRONG = {"csrf_token": "none", **{f"answer_{n}": "wrong" for n in (1, 2, 3)}}
TARGET_PERCENT = 2.0


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
    """Migrate, seed the student (enrolled) and an admin, put REFUSED over its limit;
    one argon2 verify's CPU seconds, the answers."""
    app = build_app(config)
    create_student(app, "s1000001", 1000001)
    create_admin(app)
    answers = enroll(app, ["s1000001"])
    fill_limit(app, REFUSED, FLOODED)
    close_app(app)
    return verify_seconds(10), answers


def verify_seconds(times: int) -> float:
    """CPU seconds of one argon2 verify (a wrong answer) with the default parameters, in this process."""
    hasher = AnswerHasher(
        DEFAULTS["ARGON2_MEMORY_KIB"], DEFAULTS["ARGON2_TIME_COST"], DEFAULTS["ARGON2_PARALLELISM"]
    )
    stored = hasher.hash("blue bunny rabbit")
    started = time.process_time()
    for _ in range(times):
        hasher.verify(stored, "not it")
    return (time.process_time() - started) / times


def fill_limit(app: Flask, ip: str, path: str) -> None:
    """Spend every hit of the longest window of the per-address limit on POST ``path`` from ``ip``,
    as a flood an hour long would have: every such request is refused from now on, by that window
    (the shorter ones still have room, as in a flood's steady state)."""
    endpoint = app.url_map.bind("localhost").match(path, method="POST")[0]
    setting = getattr(app.view_functions[endpoint], THROTTLE_ATTRIBUTE)[0]
    windows = limiter.parse(app.config[setting])
    longest = max(windows, key=lambda window: window.get_expiry())
    key = longest.key_for(limiter.prefix, "ip", setting, endpoint, ip)
    limiter.shared.incr(key, longest.get_expiry(), amount=longest.amount)


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


def refuser(
    port: int, stop: threading.Event, counts: dict[int, int], lock: threading.Lock, interval: float
) -> None:
    """POST wrong answers from REFUSED (over its limit: every one is refused) until ``stop``."""
    browser = Browser(port, REFUSED)
    next_at = time.monotonic()
    while not stop.is_set():
        status = browser.request("POST", FLOODED, WRONG)[0]
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


# The cost of a refusal ------------------------------------------------------------------


@dataclass
class Server:
    """A server whose CPU is read from /proc (its pids), and what it costs a request in each mode."""

    name: str
    port: int
    pids: list[int]
    #: mode -> [(CPU seconds, wall seconds, requests answered, non-429 answers)] per round
    runs: dict[str, list[tuple[float, float, int, int]]] = field(default_factory=dict)
    idle: list[tuple[float, float]] = field(default_factory=list)  # (CPU seconds, wall seconds)

    def idle_rate(self) -> float:
        """CPU seconds a wall second with no request (the idle phases pooled)."""
        return sum(cpu for cpu, _ in self.idle) / sum(wall for _, wall in self.idle)

    def per_request(self, mode: str) -> float:
        """CPU seconds a request above idle, all rounds pooled."""
        runs = self.runs[mode]
        cpu = sum(cpu - self.idle_rate() * wall for cpu, wall, _, _ in runs)
        return cpu / sum(n for _, _, n, _ in runs)

    def per_round(self, mode: str) -> list[float]:
        return [(cpu - self.idle_rate() * wall) / n for cpu, wall, n, _ in self.runs[mode]]


def redis_pids() -> list[int]:
    """The local redis-server (shared with other work on this machine: its figure is indicative)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "redis-server":
                found.append(int(comm.parent.name))
        except OSError:
            continue
    return found


def load_phase(port: int, clients: int, rate: float, seconds: float) -> tuple[dict[int, int], float]:
    """``clients`` refusers against ``port`` for ``seconds``, ``rate`` a second in all (0: flat out)."""
    counts: dict[int, int] = {}
    lock, stop = threading.Lock(), threading.Event()
    interval = clients / rate if rate else 0.0
    threads = [
        threading.Thread(target=refuser, args=(port, stop, counts, lock, interval)) for _ in range(clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return counts, time.monotonic() - started


def refusal_rounds(
    servers: list[Server], modes: dict[str, float], clients: int, seconds: float, rounds: int
) -> tuple[list[float], float]:
    """Alternate idle / each server, in each mode; the verifies timed (CPU s each) and the local
    Redis's CPU seconds a portal refusal (above its idle rate)."""
    verifies, redis = [], Server("redis", 0, redis_pids())
    for _ in range(rounds):
        verifies.append(verify_seconds(3))
        for mode, rate in modes.items():
            before = {server.name: cpu_seconds(server.pids) for server in [*servers, redis]}
            started = time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - started
            for server in [*servers, redis]:
                server.idle.append((cpu_seconds(server.pids) - before[server.name], wall))
            for server in servers:
                cpu, redis_cpu = cpu_seconds(server.pids), cpu_seconds(redis.pids)
                counts, wall = load_phase(server.port, clients, rate, seconds)
                cpu = cpu_seconds(server.pids) - cpu
                answered = sum(counts.values())
                server.runs.setdefault(mode, []).append((cpu, wall, answered, answered - counts.get(429, 0)))
                if server is servers[0]:
                    redis_cpu = cpu_seconds(redis.pids) - redis_cpu
                    redis.runs.setdefault(mode, []).append((redis_cpu, wall, counts.get(429, 0), 0))
    redis_per_refusal = statistics.median(redis.per_request(mode) for mode in modes)
    return verifies, redis_per_refusal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent flooding clients")
    parser.add_argument("--resets", type=int, default=20, help="student resets in each phase")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between the student's resets")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=0, help="flood requests a second, all clients together (0: flat out)"
    )
    parser.add_argument("--refusal-seconds", type=float, default=5, help="each phase of the refusal rounds")
    parser.add_argument("--refusal-rounds", type=int, default=3, help="rounds of idle / portal / bare")
    parser.add_argument(
        "--refusal-rate", type=float, default=100, help="refusals a second in the fixed-rate phases"
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
            refusals = refusal_costs(options, server, port)
    report(options, verify, quiet, flooded, counts, cpu_flood, cpu_per_reset, pages, flood_seconds)
    report_refusals(options, *refusals)
    print(machine_line())


def refusal_costs(options: Any, portal: Any, port: int) -> tuple[list[Server], list[float], float]:
    """The refusal rounds against the running portal and two bare servers started beside it."""
    page = Browser(port, REFUSED).request("POST", FLOODED, WRONG)
    if page[0] != 429:
        raise RuntimeError(f"{REFUSED} is not over its limit: {page[0]}")
    bare_env = {**environment({}), "BENCH_BARE_PAGE_BYTES": str(len(page[2].encode()))}
    shape = {"workers": options.workers, "threads": 4, "health": "/"}
    flask_port, wsgi_port = free_port(), free_port()
    with (
        gunicorn(bare_env, flask_port, app="bare_app:app", **shape) as flask,
        gunicorn(bare_env, wsgi_port, app="bare_app:refusal", **shape) as wsgi,
    ):
        servers = [
            Server("portal", port, server_pids(portal)),
            Server("bare Flask 429", flask_port, server_pids(flask)),
            Server("bare WSGI 429", wsgi_port, server_pids(wsgi)),
        ]
        modes = {f"{options.refusal_rate:.0f} a second": options.refusal_rate, "flat out": 0.0}
        verifies, redis = refusal_rounds(
            servers, modes, options.clients, options.refusal_seconds, options.refusal_rounds
        )
    return servers, verifies, redis


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
    print(f"| server CPU per refused request, flood phase, upper bound (ms) | {per_refusal * 1000:.3f} |")
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


def report_refusals(options: Any, servers: list[Server], verifies: list[float], redis: float) -> None:
    """Each server's CPU a request in each mode, against one argon2 verify and the bare floors."""
    verify = statistics.median(verifies)
    portal, flask, wsgi = servers
    rounds = f"{options.refusal_rounds} rounds of {options.refusal_seconds:.0f} s"
    print(f"\nRefusals only, from {REFUSED} (over its limit), {options.clients} clients,")
    print(f"{rounds}: idle, portal, bare Flask, bare WSGI")
    timed = ", ".join(f"{v * 1000:.2f}" for v in verifies)
    print(f"one argon2 verify, timed in each round (CPU ms): {timed}\n")
    print("| server, mode | requests a second | CPU a request (ms), per round | pooled (ms) | / verify |")
    print("|---|---:|---|---:|---:|")
    for mode in portal.runs:
        for server in servers:
            runs = server.runs[mode]
            rate = sum(n for _, _, n, _ in runs) / sum(wall for _, wall, _, _ in runs)
            rounds = ", ".join(f"{value * 1000:.3f}" for value in server.per_round(mode))
            cost = server.per_request(mode)
            other = sum(bad for _, _, _, bad in runs)
            flag = f" ({other} not refused!)" if other else ""
            figures = f"{rate:.0f} | {rounds} | {cost * 1000:.3f} | {cost / verify:.2%}"
            print(f"| {server.name}, {mode}{flag} | {figures} |")
    for server in servers:
        print(f"| {server.name}: idle CPU (ms a second) | | | {server.idle_rate() * 1000:.2f} | |")
    print(f"| local Redis, CPU a portal refusal (shared; indicative) (ms) | | | {redis * 1000:.3f} | |")
    fixed, flat = list(portal.runs)
    share = portal.per_request(fixed) / verify * 100
    floor = flask.per_request(fixed) / verify * 100
    own = (portal.per_request(fixed) - wsgi.per_request(fixed)) / verify * 100
    print(
        f"\nratio line: CPU per refusal {share:.2f}% of an argon2 verify at {fixed}"
        f" (target <= {TARGET_PERCENT:g}%);"
        f" bare Flask 429 {floor:.2f}%, bare WSGI 429 {wsgi.per_request(fixed) / verify * 100:.2f}%;"
        f" flat out {portal.per_request(flat) / verify * 100:.2f}%"
    )
    note = f"bare Flask 429 {floor:.2f}%, the portal above a bare WSGI 429 {own:.2f}%"
    result("flood: CPU per refused request / one argon2 verify", share, "%", f"<= {TARGET_PERCENT:g}", note)
    result(
        "flood: CPU per refused request flat out / one argon2 verify",
        portal.per_request(flat) / verify * 100,
        "%",
        f"<= {TARGET_PERCENT:g}",
        f"bare Flask 429 {flask.per_request(flat) / verify * 100:.2f}%",
    )
    result("flood: CPU per refused request", portal.per_request(fixed) * 1000, "ms CPU", "", fixed)
    result("flood: bare Flask 429, CPU per request", flask.per_request(fixed) * 1000, "ms CPU", "", fixed)
    result("flood: bare WSGI 429, CPU per request", wsgi.per_request(fixed) * 1000, "ms CPU", "", fixed)


if __name__ == "__main__":
    main()
