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
import html
import http.client
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import select

from selfservice import create_app
from selfservice.directory import get_directory
from selfservice.directory.builtin import NewAccount
from selfservice.directory.interfaces import AccountKind
from selfservice.extensions import db
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question
from selfservice.portal.question_bank import seed_question_bank
from selfservice.security import get_security

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
ATTACKER, STUDENT, ADMIN_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
ANSWERS = ["blue bunny rabbit", "lisbon harbour", "boiled okra", "captain whiskers", "zorbly"]
ADMIN_PASSWORD = "Bench-Admin-Password-42"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LABELS = re.compile(r'<label[^>]*for="answer_(\d)"[^>]*>\s*([^<]+?)\s*<')


class Browser:
    """One keep-alive connection from a fixed source address, with its own cookies."""

    def __init__(self, port: int, source: str) -> None:
        self.port, self.source = port, source
        self.cookies: dict[str, str] = {}
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60, source_address=(self.source, 0))

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = urllib.parse.urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                text = response.read().decode()
                break
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = self._connect()
                if attempt:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.headers.get("Location", ""), text

    def post(self, path: str, form: dict[str, str], page: str | None = None) -> tuple[int, str, str]:
        if page is None:
            page = self.request("GET", path)[2]
        token = CSRF.search(page)
        return self.request("POST", path, {"csrf_token": token.group(1) if token else "", **form})


# The portal under gunicorn ------------------------------------------------------------


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"selfservice_flood_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settings(database_url: str, instance: str) -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": instance,
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "RATELIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "TRUSTED_NETWORKS": f"{STUDENT}/32,{ADMIN_IP}/32",
    }


def prepare(config: dict[str, str]) -> float:
    """Migrate, seed the student and an admin; the seconds one argon2 verify takes here."""
    app = create_app({key: _typed(value) for key, value in config.items()})
    with app.app_context():
        upgrade()
        if not db.session.scalar(select(Question.id).limit(1)):
            seed_question_bank(db.session)
        directory = get_directory()
        student = directory.create(  # type: ignore[attr-defined]
            NewAccount(
                login="s1000001",
                password="Correct-Horse-1001",
                kind=AccountKind.STUDENT,
                display_name="Ana Lopez",
                email="ana@students.school.test",
                student_id="1000001",
            )
        )
        directory.create(  # type: ignore[attr-defined]
            NewAccount(
                login="benchadmin",
                password=ADMIN_PASSWORD,
                kind=AccountKind.STAFF,
                display_name="Bench Admin",
                groups=["admins"],
            )
        )
        hasher = get_security().hasher
        ids = db.session.scalars(select(Question.id).where(Question.active.is_(True)).order_by(Question.id))
        rows = [
            EnrollmentAnswer(question_id=q, answer_hash=hasher.hash(a))
            for q, a in zip(ids, ANSWERS, strict=False)
        ]
        db.session.add(Enrollment(account_key=student.key, login=student.login, answers=rows))
        db.session.commit()
        stored = rows[0].answer_hash
        started = time.process_time()
        for _ in range(10):
            hasher.verify(stored, "not it")
        verify = (time.process_time() - started) / 10
        db.session.remove()
        db.engine.dispose()
    return verify


def _typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    if "," in value or value.endswith("/32"):
        return value.split(",")
    return value


@contextmanager
def gunicorn(config: dict[str, str], port: int, workers: int) -> Iterator[subprocess.Popen[str]]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SELFSERVICE_")}
    environment.update({f"SELFSERVICE_{key}": value for key, value in config.items()})
    process = subprocess.Popen(
        [
            GUNICORN,
            "--no-control-socket",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "selfservice.wsgi:app",
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                Browser(port, ADMIN_IP).request("GET", "/healthz")
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read() if process.stderr else ""
                    raise RuntimeError(f"gunicorn did not start: {error}") from exc
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=30)


def cpu_seconds(process: subprocess.Popen[str]) -> float:
    """User + system CPU of gunicorn's master and workers, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [process.pid, *_children(process.pid)]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


# The people ---------------------------------------------------------------------------


def student_reset(port: int) -> tuple[bool, float]:
    """One forgotten-password reset from start to the new password; (succeeded, seconds)."""
    browser = Browser(port, STUDENT)
    started = time.perf_counter()
    browser.post("/forgot", {"login": "s1000001"})
    status, _, page = browser.request("GET", "/forgot/questions")
    texts = dict(LABELS.findall(page))
    answers = {f"answer_{n}": _answer_for(text) for n, text in texts.items()}
    status, location, _ = browser.post("/forgot/questions", answers, page=page)
    if status != 303 or "/forgot/reset/" not in location:
        return False, time.perf_counter() - started
    password = f"Lantern-{secrets.token_hex(4)}-Orchard-{secrets.randbelow(90) + 10}"
    status, location, _ = browser.post(location, {"new_password": password, "confirm": password})
    return status == 303 and location.endswith("/forgot/done"), time.perf_counter() - started


QUESTION_ANSWERS: dict[str, str] = {}


def _answer_for(text: str) -> str:
    return QUESTION_ANSWERS.get(html.unescape(text).strip(), "unknown")


def learn_questions(config: dict[str, str]) -> None:
    app = create_app({key: _typed(value) for key, value in config.items()})
    with app.app_context():
        ids = db.session.scalars(select(Question).where(Question.active.is_(True)).order_by(Question.id))
        for question, answer in zip(ids, ANSWERS, strict=False):
            QUESTION_ANSWERS[question.text_in("en")] = answer
        db.session.remove()
        db.engine.dispose()


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


def resets(port: int, count: int, pause: float) -> list[tuple[bool, float]]:
    done = []
    for _ in range(count):
        done.append(student_reset(port))
        time.sleep(pause)
    return done


def admin_pages(port: int) -> dict[str, float]:
    browser = Browser(port, ADMIN_IP)
    browser.post("/login", {"login": "benchadmin", "password": ADMIN_PASSWORD})
    times = {}
    for name, path in [("rate-limit page", "/admin/rate-limits"), ("dashboard", "/admin/")]:
        browser.request("GET", path)
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            browser.request("GET", path)
            runs.append(time.perf_counter() - started)
        times[name] = statistics.median(runs)
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


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
    port = _free_port()
    with scratch_database() as url, tempfile.TemporaryDirectory() as instance:
        config = settings(url, instance)
        verify = prepare(config)
        learn_questions(config)
        with gunicorn(config, port, options.workers) as server:
            cpu_start = cpu_seconds(server)
            quiet = resets(port, options.resets, options.pause)
            cpu_per_reset = (cpu_seconds(server) - cpu_start) / len(quiet)
            cpu_before, counts, lock, stop = cpu_seconds(server), {}, threading.Lock(), threading.Event()
            interval = options.clients / options.rate if options.rate else 0.0
            started = time.monotonic()
            flooders = [
                threading.Thread(target=attacker, args=(port, stop, counts, lock, interval))
                for _ in range(options.clients)
            ]
            for thread in flooders:
                thread.start()
            time.sleep(2)
            flooded = resets(port, options.resets, options.pause)
            stop.set()
            for thread in flooders:
                thread.join()
            cpu_flood = cpu_seconds(server) - cpu_before
            flood_seconds = time.monotonic() - started
            time.sleep(3)  # the workers write their breach counts every 2 s
            pages = admin_pages(port)
    report(options, verify, quiet, flooded, counts, cpu_flood, cpu_per_reset, pages, flood_seconds)


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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
