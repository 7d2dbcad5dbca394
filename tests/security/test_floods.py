"""A flood hurts only its sender (invariant 14), on the real limiter storage (memory and Redis)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from selfservice.audit.models import AuditEvent
from selfservice.extensions import db, limiter
from selfservice.security import get_security
from selfservice.security.models import Lockout, RateLimitBreach
from selfservice.security.throttling import flush_breaches
from tests.conftest import AppFactory, csrf_token
from tests.portal.test_recovery import WRONG, answer, begin, enroll

FLOOD = 30
PARALLEL = 20
STORAGES = ["memory://", "redis://127.0.0.1:6379"]


def from_address(app: Flask, ip: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def limited_app(make_app: AppFactory, storage: str, **settings: Any) -> Flask:
    prefix = f"test-{uuid.uuid4().hex[:8]}"  # Redis is shared with other suites
    return make_app(RATELIMIT_STORAGE_URI=storage, RATELIMIT_KEY_PREFIX=prefix, **settings)


def flood(client: FlaskClient, path: str, data: dict[str, str], times: int = FLOOD) -> list[int]:
    token = csrf_token(client, path)
    return [client.post(path, data={"csrf_token": token, **data}).status_code for _ in range(times)]


@pytest.mark.parametrize("storage", STORAGES)
def test_a_flood_from_one_address_never_gives_another_address_a_429(
    make_app: AppFactory, storage: str
) -> None:
    # A small shared budget: refusals must not spend it, only answer checks that ran.
    app = limited_app(make_app, storage, RECOVERY_RATE_LIMIT="5 per minute", GLOBAL_RATE_LIMIT="8 per minute")
    enroll(app, "s1000001")
    attacker = from_address(app, "127.0.0.2")
    begin(attacker, "s1000002")
    statuses = flood(attacker, "/forgot/questions", {f"answer_{n}": WRONG for n in range(1, 4)})
    assert statuses == [303] * 5 + [429] * (FLOOD - 5)

    student = from_address(app, "127.0.0.3")
    assert begin(student, "s1000001").status_code == 303
    response = answer(student, app, "s1000001")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/forgot/reset/")


def test_a_refused_request_touches_no_session_database_or_template(make_app: AppFactory) -> None:
    app = make_app(SIGN_IN_RATE_LIMIT="1 per minute")
    client = from_address(app, "127.0.0.2")
    token = csrf_token(client, "/login")
    client.post("/login", data={"csrf_token": token, "login": "s1000001", "password": "wrong-one-1"})
    statements: list[str] = []
    rendered: list[str] = []
    with app.app_context():
        engine = db.engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    from flask import template_rendered

    template_rendered.connect(lambda sender, template, context, **_: rendered.append(template.name), app)
    client.post(
        "/login", data={"csrf_token": token, "login": "s1000001", "password": "wrong-one-2"}
    )  # page cached
    statements.clear()
    rendered.clear()
    try:
        refused = client.post("/login", data={"csrf_token": token, "login": "s1000001", "password": "x"})
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many attempts" in refused.get_data(as_text=True)
    assert refused.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in refused.headers  # no session was opened or saved
    assert statements == []
    assert rendered == []
    with app.app_context():
        assert (
            db.session.scalars(select(AuditEvent).where(AuditEvent.tag == "ratelimit:request:breach")).all()
            == []
        )
        assert flush_breaches() == 1
        (row,) = db.session.scalars(select(RateLimitBreach))
        assert (row.key, row.endpoint, row.count) == ("127.0.0.2", "auth.login", 2)


def test_the_refusal_page_speaks_the_persons_language(make_app: AppFactory) -> None:
    app = make_app(SIGN_IN_RATE_LIMIT="1 per minute")
    client = from_address(app, "127.0.0.2")
    token = csrf_token(client, "/login")
    client.post("/login", data={"csrf_token": token, "login": "x", "password": "y"})
    spanish = client.post("/login", data={"csrf_token": token}, headers={"Accept-Language": "es"}).get_data(
        as_text=True
    )
    haiti = client.post("/login", data={"csrf_token": token}, headers={"Accept-Language": "fr-HT,fr;q=0.8"})
    client.set_cookie("lang", "ht")
    creole = client.post("/login", data={"csrf_token": token}).get_data(as_text=True)
    assert 'lang="es"' in spanish
    assert "Too many attempts" not in spanish
    assert 'lang="ht"' in creole
    assert "Too many attempts" not in creole
    assert 'lang="ht"' in haiti.get_data(as_text=True)  # as every other page reads fr-HT (i18n.language_of)


@pytest.mark.parametrize("storage", STORAGES)
def test_trusted_networks_get_their_own_limits_and_others_do_not(make_app: AppFactory, storage: str) -> None:
    app = limited_app(
        make_app,
        storage,
        TRUSTED_NETWORKS=["10.20.0.0/16"],
        SIGN_IN_RATE_LIMIT="2 per minute",
        TRUSTED_SIGN_IN_RATE_LIMIT="6 per minute",
        SIGN_IN_ACCOUNT_RATE_LIMIT="100 per minute",
    )
    wrong = {"login": "s1000001", "password": "not-the-password"}
    school = flood(from_address(app, "10.20.3.4"), "/login", wrong, times=7)
    outside = flood(from_address(app, "10.21.0.1"), "/login", wrong, times=3)
    assert school == [400] * 6 + [429]
    assert outside == [400, 400, 429]


class Commands:
    """The Redis commands in a client's byte stream (RESP arrays), by name, as they complete."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._buffer = b""
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self._lock:
            self._buffer += data
            while (command := self._next()) is not None:
                self.names.append(command[0].decode().upper())

    def _next(self) -> list[bytes] | None:
        buffer, parts = self._buffer, []
        end = buffer.find(b"\r\n")
        if end < 0:
            return None
        position = end + 2
        for _ in range(int(buffer[1:end])):  # *<count>, then $<length> and the bytes of each part
            end = buffer.find(b"\r\n", position)
            if end < 0:
                return None
            start = end + 2
            stop = start + int(buffer[position + 1 : end])
            if len(buffer) < stop + 2:
                return None
            parts.append(buffer[start:stop])
            position = stop + 2
        self._buffer = buffer[position:]
        return parts


class Proxy:
    """A TCP relay in front of Redis that a test can stop and start (the shared Redis stays up),
    and that names every command a client sends through it (``commands``)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.sockets: list[socket.socket] = []
        self.commands: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            sent = Commands()
            sent.names = self.commands
            for a, b, seen in ((client, upstream, sent), (upstream, client, None)):
                threading.Thread(target=self._pipe, args=(a, b, seen), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, seen: Commands | None) -> None:
        try:
            while data := source.recv(65536):
                if seen is not None:
                    seen.feed(data)  # before it is sent on: counted by the time the answer is back
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def stop(self) -> None:
        self.up.clear()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()

    def start(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.stop()
        self.listener.close()


@pytest.fixture
def redis_proxy() -> Iterator[Proxy]:
    proxy = Proxy(("127.0.0.1", 6379))
    yield proxy
    proxy.close()


def test_redis_stopped_mid_flood_gives_no_500_and_recovers(make_app: AppFactory, redis_proxy: Proxy) -> None:
    app = limited_app(make_app, f"redis://127.0.0.1:{redis_proxy.port}", SIGN_IN_RATE_LIMIT="3 per minute")
    client = from_address(app, "127.0.0.2")
    wrong = {"login": "s1000001", "password": "not-the-password"}
    assert flood(client, "/login", wrong, times=2) == [400, 400]
    assert client.get("/healthz").json["checks"]["limiter"] == "ok"

    redis_proxy.stop()
    down = flood(client, "/login", wrong, times=5)
    assert 500 not in down
    assert down == [400, 400, 400, 429, 429]  # counted per process in memory meanwhile
    health = client.get("/healthz")
    assert (health.status_code, health.json["status"]) == (200, "degraded")

    redis_proxy.start()
    assert client.get("/healthz").json["checks"]["limiter"] == "ok"
    assert flood(client, "/login", wrong, times=2) == [400, 429]  # Redis still held the first two


@pytest.mark.parametrize("limit", ["2 per minute;100 per hour", "100 per minute;2 per hour"])
def test_a_refusal_costs_one_redis_command_and_its_repeats_none(
    make_app: AppFactory, redis_proxy: Proxy, limit: str
) -> None:
    # Every window checked and the full one's wait read in one round trip, whichever refuses;
    # then the worker knows the window is full until it ends.
    app = limited_app(make_app, f"redis://127.0.0.1:{redis_proxy.port}", SIGN_IN_RATE_LIMIT=limit)
    wrong = {"login": "s1000001", "password": "not-the-password"}
    assert flood(from_address(app, "127.0.0.9"), "/login", wrong, times=3) == [400, 400, 429]  # page cached
    client = from_address(app, "127.0.0.2")
    assert flood(client, "/login", wrong, times=2) == [400, 400]
    token = csrf_token(client, "/login")
    redis_proxy.commands.clear()

    first = client.post("/login", data={"csrf_token": token, **wrong})
    first_commands = list(redis_proxy.commands)
    redis_proxy.commands.clear()
    again = client.post("/login", data={"csrf_token": token, **wrong})

    assert (first.status_code, again.status_code) == (429, 429)
    assert len(first_commands) == 1, first_commands
    assert redis_proxy.commands == []
    longest = 60 if "2 per minute" in limit else 3600
    assert 0 < int(again.headers["Retry-After"]) <= int(first.headers["Retry-After"]) <= longest


def test_a_remembered_refusal_ends_with_its_window(make_app: AppFactory) -> None:
    app = limited_app(make_app, "redis://127.0.0.1:6379", SIGN_IN_RATE_LIMIT="2 per 2 seconds")
    client = from_address(app, "127.0.0.2")
    wrong = {"login": "s1000001", "password": "not-the-password"}
    refused = flood(client, "/login", wrong, times=4)
    assert refused == [400, 400, 429, 429]
    time.sleep(2.1)
    assert flood(client, "/login", wrong, times=1) == [400]


def test_a_hit_that_spends_costs_one_redis_command(make_app: AppFactory, redis_proxy: Proxy) -> None:
    limited_app(make_app, f"redis://127.0.0.1:{redis_proxy.port}")
    windows = limiter.parse("5 per minute;50 per hour")
    assert limiter.hit(windows, "test", "warm-up") is None
    redis_proxy.commands.clear()

    assert limiter.hit(windows, "test", "counted") is None

    assert len(redis_proxy.commands) == 1, redis_proxy.commands
    assert limiter.used(windows, "test", "counted") == 1


@pytest.mark.parametrize("storage", STORAGES)
def test_parallel_hits_spend_no_window_past_the_one_that_refuses(make_app: AppFactory, storage: str) -> None:
    # Invariant 14 under a race: the hour window refuses, so the minute window keeps its budget.
    limited_app(make_app, storage)
    minute, hour = windows = limiter.parse("100 per minute;3 per hour")
    start = threading.Barrier(PARALLEL)
    waits: list[int | None] = []

    def hit() -> None:
        start.wait()
        waits.append(limiter.hit(windows, "test", "race"))

    threads = [threading.Thread(target=hit) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert waits.count(None) == 3
    assert limiter.used([minute], "test", "race") == 3
    assert limiter.used([hour], "test", "race") == 3


def test_answer_checks_wait_for_a_free_argon2_slot_then_get_a_503(make_app: AppFactory) -> None:
    app = make_app(ARGON2_MAX_CONCURRENT=1, ARGON2_WAIT_SECONDS=0)
    enroll(app, "s1000001")
    client = app.test_client()
    begin(client, "s1000001")
    with app.app_context():
        gate = get_security().work
    with gate.slot():  # another request holds the only slot
        busy = answer(client, app, right=False)
    assert busy.status_code == 503
    assert busy.headers["Retry-After"]
    with app.app_context():
        assert db.session.scalar(select(Lockout.failures)) == 0  # the unchecked guess was given back
    assert answer(client, app, right=False).status_code == 303
