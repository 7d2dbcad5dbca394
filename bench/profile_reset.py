"""In-process figures for the self-service reset path (issue 17, items 2 and 3).

    .venv/bin/python bench/profile_reset.py --resets 20 --pages 2000
    .venv/bin/python bench/profile_reset.py --profile reset    # cProfile of the resets
    .venv/bin/python bench/profile_reset.py --rss resets       # peak RSS of a process doing resets
    .venv/bin/python bench/profile_reset.py --import-only      # peak RSS of importing, then building the app

Runs the portal in-process (Flask test client, a scratch SQLite database, the built-in
directory, the default argon2 parameters m=19 MiB t=2, limits lifted) and prints:

- SQL statements per step of a reset (start, questions page, answers, reset page, new password);
- CPU per reset (this thread's CPU time over the six requests) against its floor: what
  argon2 alone costs for the same reset (three answer verifies, the new password's hash)
  plus the directory's own CPU (the builtin directory's verify of the old password is
  not part of a reset: the floor is the four argon2 operations);
- CPU per GET /forgot against a bare Flask page in this same process;
- with ``--rss``: the peak RSS (VmHWM) of a fresh process (the app built on a ready
  database) serving only pages, or doing resets;
- with ``--import-only``: the peak RSS of a fresh process after ``import selfservice``
  and after create_app, with the modules loaded (what a worker holds before any request).

The full suite with gunicorn, PostgreSQL and slapd lives beside this script (bench/).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

ANSWERS = ["blue bunny rabbit", "lisbon harbour", "boiled okra", "captain whiskers", "zorbly"]
UNLIMITED = "100000 per minute"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
NEW_PASSWORDS = ["Lantern-Orchard-Velvet-{}", "Quartz-Meadow-Pelican-{}"]


SETTINGS = {
    "SECRET_KEY": "profile-bench-secret-key-0123456789abcdef",
    "BASE_URL": "https://portal.example.test",
    "SESSION_COOKIE_SECURE": True,
    "DEBUG": False,
    **dict.fromkeys(("SIGN_IN_RATE_LIMIT", "RECOVERY_RATE_LIMIT", "GLOBAL_RATE_LIMIT"), UNLIMITED),
    "LOCKOUT_MAX_FAILURES_PER_DAY": 10_000_000,
    "SECOND_FACTOR": {"student": "off", "parent": "off", "staff": "off"},
}


def app_on(folder: str) -> Flask:
    """The portal on the scratch database in ``folder`` (built by :func:`build`)."""
    from selfservice import create_app

    database = f"sqlite:///{folder}/profile.sqlite"
    return create_app({**SETTINGS, "DATABASE_URL": database, "INSTANCE_PATH": folder})


def build(folder: str) -> Flask:
    from flask_migrate import upgrade
    from sqlalchemy import select

    from selfservice.directory import get_directory
    from selfservice.directory.builtin import NewAccount
    from selfservice.directory.interfaces import AccountKind
    from selfservice.extensions import db
    from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question
    from selfservice.portal.question_bank import seed_question_bank
    from selfservice.security import get_security

    app = app_on(folder)
    with app.app_context():
        upgrade()
        seed_question_bank(db.session)
        hasher = get_security().hasher
        ids = list(
            db.session.scalars(select(Question.id).where(Question.active.is_(True)).order_by(Question.id))
        )
        account = get_directory().create(  # type: ignore[attr-defined]
            NewAccount(
                login="s1000001",
                password="Correct-Horse-1001",
                kind=AccountKind.STUDENT,
                display_name="Ana Lopez",
                email="ana.lopez@students.school.test",
            )
        )
        rows = [
            EnrollmentAnswer(question_id=q, answer_hash=hasher.hash(a))
            for q, a in zip(ids, ANSWERS, strict=False)
        ]
        db.session.add(Enrollment(account_key=account.key, login="s1000001", answers=rows))
        db.session.commit()
    return app


def csrf(client: FlaskClient, path: str) -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


def reset(app: Flask, n: int, steps: Counter[str] | None = None) -> None:
    """One whole self-service reset: the six requests a browser makes."""
    from sqlalchemy import select

    from selfservice.extensions import db
    from selfservice.portal.models import Question, RecoveryChallenge

    client = app.test_client()
    step = [""]
    if steps is not None:
        from sqlalchemy import event

        with app.app_context():
            engine = db.engine

        def count(*_args: Any) -> None:
            steps[step[0]] += 1

        event.listen(engine, "before_cursor_execute", count)
    try:
        step[0] = "GET /forgot"
        token = csrf(client, "/forgot")
        step[0] = "POST /forgot"
        assert client.post("/forgot", data={"csrf_token": token, "login": "s1000001"}).status_code == 303
        step[0] = "GET /forgot/questions"
        token = csrf(client, "/forgot/questions")
        with client.session_transaction() as state:
            lookup = state["recovery"]["lookup"]
        step[0] = ""
        with app.app_context():
            pinned = list(db.session.get(RecoveryChallenge, lookup).question_ids)  # type: ignore[union-attr]
            order = list(
                db.session.scalars(select(Question.id).where(Question.active.is_(True)).order_by(Question.id))
            )
            db.session.remove()
        known = dict(zip(order, ANSWERS, strict=False))
        data = {f"answer_{i}": known[q] for i, q in enumerate(pinned, start=1)}
        step[0] = "POST /forgot/questions"
        answered = client.post("/forgot/questions", data={"csrf_token": token, **data})
        assert answered.status_code == 303, answered.status_code
        location = answered.headers["Location"]
        step[0] = "GET /forgot/reset"
        token = csrf(client, location)
        password = NEW_PASSWORDS[n % 2].format(n)
        step[0] = "POST /forgot/reset"
        done = client.post(
            location, data={"csrf_token": token, "new_password": password, "confirm": password}
        )
        assert done.status_code == 303, done.get_data(as_text=True)[:2000]
    finally:
        if steps is not None:
            event.remove(engine, "before_cursor_execute", count)


def floor(app: Flask) -> float:
    """CPU of the argon2 work a reset cannot avoid: three answer verifies and one password hash."""
    from selfservice.directory import get_directory
    from selfservice.security import get_security

    with app.app_context():
        hasher = get_security().hasher
        stored = hasher.hash("blue bunny rabbit")
        directory_hasher = get_directory().hasher  # type: ignore[attr-defined]
        start = time.thread_time()
        for _ in range(3):
            hasher.verify(stored, "blue bunny rabbit")
        directory_hasher.hash("Lantern-Orchard-Velvet-1")
        return time.thread_time() - start


def bare_flask() -> FlaskClient:
    bare = Flask("bare")

    @bare.get("/")
    def index() -> str:
        return "<!doctype html><title>bare</title><p>hello</p>"

    return bare.test_client()


def cpu_per_get(client: FlaskClient, path: str, count: int) -> float:
    for _ in range(50):
        client.get(path)
    start = time.thread_time()
    for _ in range(count):
        client.get(path)
    return (time.thread_time() - start) / count


def figures(resets: int, pages: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = build(folder)
        reset(app, 0)  # warm up: imports, template compilation, dummy hashes
        steps: Counter[str] = Counter()
        reset(app, 1, steps)
        print("SQL statements per step of one reset:")
        for name, count in steps.items():
            print(f"  {name:28} {count:3}")
        print(f"  {'total':28} {sum(steps.values()):3}")
        ratios, costs, floors = [], [], []
        for n in range(resets):
            start = time.thread_time()
            reset(app, n + 2)
            cost = time.thread_time() - start
            base = floor(app)
            costs.append(cost)
            floors.append(base)
            ratios.append(cost / base)
        print(
            f"CPU per reset: median {statistics.median(costs) * 1000:.1f} ms, floor "
            f"{statistics.median(floors) * 1000:.1f} ms, ratio median {statistics.median(ratios):.2f}x "
            f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x) over {resets} resets"
        )
        portal = cpu_per_get(app.test_client(), "/forgot", pages)
        bare = cpu_per_get(bare_flask(), "/", pages)
        print(
            f"CPU per GET /forgot: {portal * 1000:.3f} ms; bare Flask page {bare * 1000:.3f} ms; "
            f"throughput ratio {bare / portal:.2f}x"
        )


def profile(what: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = build(folder)
        reset(app, 0)
        profiler = cProfile.Profile(time.thread_time)  # CPU, not waits on the disk
        if what == "reset":
            profiler.enable()
            for n in range(count):
                reset(app, n + 1)
            profiler.disable()
        else:
            client = app.test_client()
            client.get("/forgot")
            profiler.enable()
            for _ in range(count):
                client.get("/forgot")
            profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(45)


def rss(folder: str, what: str, count: int) -> None:
    """Peak RSS of this fresh process: the app built on a ready database, then pages or resets."""

    def peak() -> float:
        # ru_maxrss survives fork and exec (it would report the parent's peak): VmHWM is this process's.
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if what == "import":
        import selfservice  # noqa: F401

        print(f"peak RSS after import selfservice: {peak():.1f} MB; modules loaded: {len(sys.modules)}")
    app = app_on(folder)
    print(f"peak RSS after create_app: {peak():.1f} MB; modules loaded: {len(sys.modules)}")
    if what == "import":
        return
    if what == "resets":
        for n in range(count):
            reset(app, n)
    else:
        client = app.test_client()
        for _ in range(count):
            client.get("/forgot")
    optional = ("zxcvbn_rs_py", "alembic", "flask_migrate", "cryptography", "ldap3", "redis", "smtplib")
    heavy = sorted(name for name in optional if name in sys.modules)
    dialects = sorted(
        name.rsplit(".", 1)[1]
        for name in sys.modules
        if name.count(".") == 2 and name.startswith("sqlalchemy.dialects.")
    )
    from babel import core, localedata

    locales = sorted(localedata._cache) + (["global"] if core._global_data is not None else [])
    print(f"peak RSS after {count} {what}: {peak():.1f} MB; heavy modules loaded: {heavy}")
    print(f"SQLAlchemy dialects loaded: {dialects}; Babel locale data loaded: {locales}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resets", type=int, default=20)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--profile", choices=["reset", "forgot"])
    parser.add_argument("--rss", choices=["pages", "resets"])
    parser.add_argument(
        "--import-only", action="store_true", help="peak RSS of importing and building the app"
    )
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.resets if args.profile == "reset" else args.pages)
    elif args.rss or args.import_only:
        # The database is built here; a fresh process serves, so nothing before counts in its peak.
        with tempfile.TemporaryDirectory() as folder:
            build(folder)
            what = args.rss or "import"
            command = [sys.executable, __file__, "--rss-child", folder, what, str(args.resets)]
            subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    else:
        figures(args.resets, args.pages)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--rss-child":
        rss(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
