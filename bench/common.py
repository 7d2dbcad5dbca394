"""What the benchmarks share: scratch databases, the portal under gunicorn, a browser-like
client, seeded students with enrolled answers, one reset end to end, and /proc readings.

Each script in bench/ ends with ``RESULT {json}`` lines (see :func:`result`), which
bench/run_all.py gathers into its summary table.
"""

from __future__ import annotations

import html
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import select

from selfservice import create_app, serving
from selfservice.directory import get_directory
from selfservice.directory.builtin import NewAccount
from selfservice.directory.interfaces import AccountKind
from selfservice.extensions import db
from selfservice.portal.models import Enrollment, EnrollmentAnswer, Question
from selfservice.portal.question_bank import seed_question_bank
from selfservice.security import get_security

# The throwaway database and free port the tests use too (tests/scratch.py: no pytest in it),
# imported from the clone bench/ is in; the scripts take them from here.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.scratch import POSTGRES_ADMIN_URL, scratch_postgres
from tests.scratch import free_port as free_port

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
ANSWERS = ["blue bunny rabbit", "lisbon harbour", "boiled okra", "captain whiskers", "zorbly"]
STUDENT_PASSWORD = "Correct-Horse-1001"
ADMIN_PASSWORD = "Bench-Admin-Password-42"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LABELS = re.compile(r'<label[^>]*for="answer_(\d)"[^>]*>\s*([^<]+?)\s*<')
#: Limits that still run (and reach Redis) on every request but never refuse a benchmark.
LIFTED = "1000000 per minute"
LIMITS = ("SIGN_IN", "RECOVERY", "PASSWORD", "GLOBAL", "SIGN_IN_ACCOUNT")
TRUSTED_LIMITS = ("TRUSTED_SIGN_IN", "TRUSTED_RECOVERY", "TRUSTED_PASSWORD")
LIFTED_LIMITS = dict.fromkeys([f"{name}_RATE_LIMIT" for name in (*LIMITS, *TRUSTED_LIMITS)], LIFTED)


# Reporting ----------------------------------------------------------------------------


def machine_line() -> str:
    """Cores, load average and the time: the context every figure is read in."""
    one, five, fifteen = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cores, load average {one:.2f} {five:.2f} {fifteen:.2f}"
        f" at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"
    )


def result(figure: str, value: float, unit: str, target: str = "", note: str = "") -> None:
    """One figure for bench/run_all.py's summary: ``RESULT {json}``."""
    line = {"figure": figure, "value": round(value, 3), "unit": unit, "target": target, "note": note}
    print("RESULT " + json.dumps(line), flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


# Databases ----------------------------------------------------------------------------


@contextmanager
def scratch_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.sqlite"


def scratch_database(kind: str) -> Any:
    """``sqlite`` or ``postgres``: a context manager yielding the database URL."""
    return scratch_sqlite() if kind == "sqlite" else scratch_postgres("selfservice_bench")


def postgres_backend_cpu(database_url: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``database_url`` right now, from /proc."""
    name = database_url.rsplit("/", 1)[1]
    admin = sa.create_engine(POSTGRES_ADMIN_URL)
    with admin.connect() as connection:
        pids = connection.scalars(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :name"), {"name": name}
        ).all()
    admin.dispose()
    return cpu_seconds(pids)


# The portal's settings ------------------------------------------------------------------


def portal_settings(database_url: str, instance: str, **extra: Any) -> dict[str, Any]:
    """Production settings (default argon2, Redis under a fresh key prefix), limits lifted."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": instance,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "WEB_WORKERS": 2,
        "BASE_URL": "https://password.school.test",
        **LIFTED_LIMITS,
        **extra,
    }


def environment(settings: Mapping[str, Any]) -> dict[str, str]:
    """The settings as SELFSERVICE_* variables (lists and tables as JSON), nothing else inherited."""
    found = {k: v for k, v in os.environ.items() if not k.startswith("SELFSERVICE_")}
    for key, value in settings.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        found[f"SELFSERVICE_{key}"] = text
    return found


def build_app(settings: Mapping[str, Any]) -> Flask:
    """The portal in this process, migrated, with the question bank."""
    app = create_app(dict(settings))
    with app.app_context():
        upgrade()
        if not db.session.scalar(select(Question.id).limit(1)):
            seed_question_bank(db.session)
    return app


def close_app(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    close = getattr(app.extensions.get("selfservice.directory"), "close", None)
    if close is not None:
        close()


# Students -------------------------------------------------------------------------------


def create_student(app: Flask, login: str, number: int) -> None:
    """A builtin student account (the builtin directory only)."""
    with app.app_context():
        get_directory().create(  # type: ignore[attr-defined]
            NewAccount(
                login=login,
                password=STUDENT_PASSWORD,
                kind=AccountKind.STUDENT,
                display_name=f"Student {number}",
                email=f"{login}@students.school.test",
                student_id=str(number),
            )
        )


def create_admin(app: Flask) -> None:
    with app.app_context():
        get_directory().create(  # type: ignore[attr-defined]
            NewAccount(
                login="benchadmin",
                password=ADMIN_PASSWORD,
                kind=AccountKind.STAFF,
                display_name="Bench Admin",
                groups=["admins"],
            )
        )


def enroll(app: Flask, logins: Iterable[str]) -> dict[str, str]:
    """Enroll each account (found in the app's directory) with ANSWERS; {question text: answer}."""
    with app.app_context():
        hasher, directory = get_security().hasher, get_directory()
        questions = list(
            db.session.scalars(select(Question).where(Question.active.is_(True)).order_by(Question.id))
        )[: len(ANSWERS)]
        for login in logins:
            account = directory.find(login)
            assert account is not None, login
            rows = [
                EnrollmentAnswer(question_id=q.id, answer_hash=hasher.hash(a))
                for q, a in zip(questions, ANSWERS, strict=True)
            ]
            db.session.add(Enrollment(account_key=account.key, login=account.login, answers=rows))
        db.session.commit()
        return {q.text_in("en"): a for q, a in zip(questions, ANSWERS, strict=True)}


# Browsers -----------------------------------------------------------------------------


class Requester(Protocol):
    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]: ...


class Browser:
    """One keep-alive HTTP connection from a fixed source address, with its own cookies."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
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
        return post(self, path, form, page)


@dataclass
class InProcessBrowser:
    """The same interface over the Flask test client (HTTPS, so Secure cookies come back)."""

    client: FlaskClient

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        response = self.client.open(path, method=method, data=form, base_url="https://localhost")
        location = response.headers.get("Location", "").removeprefix("https://localhost")
        return response.status_code, location, response.get_data(as_text=True)


Answer = tuple[int, str, str]


def post(browser: Requester, path: str, form: dict[str, str], page: str | None = None) -> Answer:
    """POST ``form`` with the CSRF token of ``page`` (fetched from ``path`` when not given)."""
    if page is None:
        page = browser.request("GET", path)[2]
    token = CSRF.search(page)
    return browser.request("POST", path, {"csrf_token": token.group(1) if token else "", **form})


def reset(browser: Requester, login: str, answers: Mapping[str, str]) -> bool:
    """One forgotten-password reset in six requests: start, three answers, a new password."""
    post(browser, "/forgot", {"login": login})
    _, _, page = browser.request("GET", "/forgot/questions")
    texts = dict(LABELS.findall(page))
    form = {f"answer_{n}": answers.get(html.unescape(text).strip(), "unknown") for n, text in texts.items()}
    status, location, _ = post(browser, "/forgot/questions", form, page=page)
    if status != 303 or "/forgot/reset/" not in location:
        return False
    password = f"Lantern-{secrets.token_hex(4)}-Orchard-{secrets.randbelow(90) + 10}"
    status, location, _ = post(browser, location, {"new_password": password, "confirm": password})
    return status == 303 and location.endswith("/forgot/done")


# Servers ------------------------------------------------------------------------------


@contextmanager
def gunicorn(
    env: Mapping[str, str],
    port: int,
    *,
    workers: int = 2,
    threads: int = 4,
    app: str = "selfservice.wsgi:app",
    health: str = "/healthz",
) -> Iterator[subprocess.Popen[str]]:
    """gunicorn serving ``app`` on 127.0.0.1:port until the block ends, started as
    ``selfservice serve`` starts it (its command line, and workers run with ``-OO`` on
    precompiled bytecode unless ``PYTHONOPTIMIZE`` says otherwise), ``--no-control-socket``."""
    environment = serving.worker_environment(env, workers)
    serving.precompile(serving.optimize_level(environment))
    process = subprocess.Popen(
        serving.gunicorn_argv(
            f"127.0.0.1:{port}",
            workers,
            threads=threads,
            extra=["--no-control-socket", "--pythonpath", str(Path(__file__).parent)],
            app=app,
            # The logger imports the portal into the master: not for the bare Flask baseline.
            logger_class=serving.LOGGER_CLASS if app == serving.APP else None,
        ),
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(children(process.pid)) < workers or not _answers(port, health):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                error = process.stderr.read() if process.stderr else ""
                raise RuntimeError(f"gunicorn did not start: {error[-3000:]}")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _answers(port: int, path: str) -> bool:
    try:
        Browser(port).request("GET", path)
    except OSError:
        return False
    return True


def children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    except FileNotFoundError:
        pass
    return found


def server_pids(process: subprocess.Popen[str]) -> list[int]:
    """gunicorn's master and its workers."""
    return [process.pid, *children(process.pid)]


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of these processes (all their threads), from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def worker_peaks(process: subprocess.Popen[str]) -> list[float]:
    """Peak RSS (MiB) of each gunicorn worker."""
    return [peak_rss_mib(pid) for pid in children(process.pid)]
