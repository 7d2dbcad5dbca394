"""Do response times tell whether a login exists, is enrolled or is locked? (issue 14, item 5)

    .venv/bin/python bench/timing.py --samples 200

Runs the portal in-process (Flask test client, a scratch SQLite database, the default
argon2 parameters, limits lifted so that only timing is measured) and times, in
interleaved rounds so drift hits every group alike:

- sign-in with a wrong password: a real login against an unknown one;
- the answer step with wrong answers: an enrolled account, an unknown login, a real
  but unenrolled account, and a locked account.

Each pair is compared with a two-sided Mann-Whitney U test (normal approximation with
tie correction). A p-value below 0.01 is a timing tell. ``--clock cpu`` times the
request's CPU in this thread instead of the wall clock: on a shared machine other
processes' load swamps wall-clock differences, and the portal controls only its own work.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import select, update

from selfservice import create_app
from selfservice.directory import get_directory
from selfservice.directory.builtin import NewAccount
from selfservice.directory.interfaces import AccountKind
from selfservice.extensions import db
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question
from selfservice.portal.question_bank import seed_question_bank
from selfservice.security import get_security
from selfservice.security.models import Lockout
from selfservice.timeutil import utcnow

ANSWERS = ["blue bunny rabbit", "lisbon harbour", "boiled okra", "captain whiskers", "zorbly"]
UNLIMITED = "100000 per minute"
ALPHA = 0.01
#: wall: what a client would see; cpu: this thread's CPU time, immune to other processes on a shared host.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
CLOCK = [time.perf_counter]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def mann_whitney(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation, tie-corrected)."""
    pooled = sorted([(value, 0) for value in a] + [(value, 1) for value in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    start = 0
    while start < len(pooled):
        end = start
        while end + 1 < len(pooled) and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        for index in range(start, end + 1):
            ranks[index] = (start + end) / 2 + 1
        size = end - start + 1
        ties += size**3 - size
        start = end + 1
    n1, n2 = len(a), len(b)
    rank_sum = sum(rank for rank, (_value, group) in zip(ranks, pooled, strict=True) if group == 0)
    u = rank_sum - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2))


def build(folder: str) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "timing-bench-secret-key-0123456789abcdef",
            "DATABASE_URL": f"sqlite:///{folder}/timing.sqlite",
            "INSTANCE_PATH": folder,
            **dict.fromkeys(("SIGN_IN_RATE_LIMIT", "RECOVERY_RATE_LIMIT", "GLOBAL_RATE_LIMIT"), UNLIMITED),
            "SIGN_IN_ACCOUNT_RATE_LIMIT": UNLIMITED,
            "LOCKOUT_MAX_FAILURES": 1_000_000,
            "LOCKOUT_MAX_FAILURES_PER_DAY": 10_000_000,
            "LOCKOUT_NOTICE_FAILURES_PER_DAY": 10_000_000,
        }
    )
    with app.app_context():
        upgrade()
        if not db.session.scalar(select(Question.id).limit(1)):
            seed_question_bank(db.session)
        directory = get_directory()
        hasher = get_security().hasher
        ids = list(
            db.session.scalars(select(Question.id).where(Question.active.is_(True)).order_by(Question.id))
        )
        for login in ("enrolled", "unenrolled", "locked"):
            account = directory.create(  # type: ignore[attr-defined]
                NewAccount(
                    login=login, password="Correct-Horse-1001", kind=AccountKind.STUDENT, display_name=login
                )
            )
            if login != "unenrolled":
                rows = [
                    EnrollmentAnswer(question_id=q, answer_hash=hasher.hash(a))
                    for q, a in zip(ids, ANSWERS, strict=False)
                ]
                db.session.add(Enrollment(account_key=account.key, login=login, answers=rows))
        db.session.commit()
    return app


def csrf(client: FlaskClient, path: str) -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    return match.group(1) if match else ""


def lock(app: Flask, login: str) -> None:
    with app.app_context():
        key = get_directory().find(login).key  # type: ignore[union-attr]
        db.session.execute(
            update(Lockout)
            .where(Lockout.account_key == key)
            .values(locked_until=utcnow() + timedelta(days=1))
        )
        db.session.commit()


def answer_step(app: Flask, login: str) -> Callable[[], float]:
    client = app.test_client()
    client.post("/forgot", data={"csrf_token": csrf(client, "/forgot"), "login": login})
    token = csrf(client, "/forgot/questions")
    data = {"csrf_token": token, **{f"answer_{n}": "definitely wrong" for n in (1, 2, 3)}}

    def once() -> float:
        started = CLOCK[0]()
        response = client.post("/forgot/questions", data=data)
        elapsed = CLOCK[0]() - started
        assert response.status_code == 303, response.status_code
        return elapsed

    return once


def sign_in(app: Flask, login: str) -> Callable[[], float]:
    client = app.test_client()
    token = csrf(client, "/login")
    data = {"csrf_token": token, "login": login, "password": "Wrong-Password-42"}

    def once() -> float:
        started = CLOCK[0]()
        response = client.post("/login", data=data)
        elapsed = CLOCK[0]() - started
        assert response.status_code == 400, response.status_code
        return elapsed

    return once


def sample(groups: dict[str, Callable[[], float]], count: int) -> dict[str, list[float]]:
    for measure in groups.values():  # warm up: caches, the dummy hashes, the locked row
        measure()
    found: dict[str, list[float]] = {name: [] for name in groups}
    order = list(groups)
    for _ in range(count):
        random.shuffle(order)  # no group always first or last in a round (caches, the collector)
        for name in order:
            found[name].append(groups[name]())
    return found


def report(title: str, times: dict[str, list[float]], baseline: str) -> bool:
    print(f"\n{title}\n")
    print("| group | median (ms) | p-value against " + baseline + " | tell? |")
    print("|---|---:|---:|---|")
    clean = True
    for name, values in times.items():
        p = mann_whitney(values, times[baseline]) if name != baseline else 1.0
        tell = p < ALPHA
        clean = clean and not tell
        shown = "" if name == baseline else f"{p:.3g}"
        print(f"| {name} | {statistics.median(values) * 1000:.1f} | {shown} | {'YES' if tell else 'no'} |")
    return clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    options = parser.parse_args()
    CLOCK[0] = CLOCKS[options.clock]
    print(f"clock: {options.clock}")
    with tempfile.TemporaryDirectory() as folder:
        app = build(folder)
        answers = {
            "enrolled": answer_step(app, "enrolled"),
            "unknown": answer_step(app, "nobody-by-this-name"),
            "unenrolled": answer_step(app, "unenrolled"),
            "locked": answer_step(app, "locked"),
        }
        answers["locked"]()  # the first claim makes its lockout row
        lock(app, "locked")
        signing: dict[str, Any] = {
            "real login": sign_in(app, "enrolled"),
            "unknown login": sign_in(app, "ghost"),
        }
        clean = report(
            f"Sign-in, wrong password, {options.samples} samples each",
            sample(signing, options.samples),
            "real login",
        )
        clean &= report(
            f"Answer step, wrong answers, {options.samples} samples each",
            sample(answers, options.samples),
            "enrolled",
        )
    print("\nno timing tell at p < 0.01" if clean else "\ntiming tells found (p < 0.01)")


if __name__ == "__main__":
    main()
