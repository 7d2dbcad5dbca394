"""Real gunicorn instances on one PostgreSQL database and one Redis, and a small browser-like client."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from tests.scratch import free_port

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SELFSERVICE = str(Path(sys.executable).with_name("selfservice"))


def serve_argv(port: int, *gunicorn_options: str) -> list[str]:
    """The portal as docs/deployment.md starts it (``selfservice serve``: one worker run with
    ``-OO``, the redacted access log); ``--no-control-socket``: gunicorn 27 shares one
    control socket per user otherwise."""
    bind = f"127.0.0.1:{port}"
    return [
        SELFSERVICE,
        "serve",
        "--bind",
        bind,
        "--workers",
        "1",
        "--",
        "--no-control-socket",
        *gunicorn_options,
    ]


def worker_pids(master: int) -> list[int]:
    """The processes gunicorn's master ``master`` has forked (its workers), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{master}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Client:
    """Keeps cookies itself (they are Secure, and this talks plain HTTP to a trusted proxy hop)."""

    client_ip: str
    cookies: dict[str, str] = field(default_factory=dict)

    def get(self, base: str, path: str) -> Response:
        return self._send(urllib.request.Request(base + path, method="GET"))

    def post(self, base: str, path: str, data: dict[str, str], *, form_path: str | None = None) -> Response:
        page = self.get(base, form_path or path)
        match = CSRF_FIELD.search(page.text)
        body = urllib.parse.urlencode({"csrf_token": match.group(1) if match else "", **data}).encode()
        request = urllib.request.Request(base + path, data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> Response:
        request.add_header("X-Forwarded-For", self.client_ip)
        request.add_header("X-Forwarded-Proto", "https")
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=30) as response:
                result = Response(response.status, dict(response.headers), response.read().decode())
                set_cookies = response.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as error:
            result = Response(error.code, dict(error.headers), error.read().decode())
            set_cookies = error.headers.get_all("Set-Cookie") or []
        for header in set_cookies:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return result


@dataclass
class Instances:
    urls: list[str]
    database_url: str
    environment: dict[str, str]


def production_environment(database_url: str, instance_path: Path, **extra: str) -> dict[str, str]:
    """What an operator would set: production mode, PostgreSQL, Redis, one trusted proxy hop."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SELFSERVICE_")}
    environment.update(
        {
            "SELFSERVICE_SECRET_KEY": "two-instances-share-this-secret-0123456789",
            "SELFSERVICE_BASE_URL": "https://password.school.test",
            "SELFSERVICE_DATABASE_URL": database_url,
            "SELFSERVICE_INSTANCE_PATH": str(instance_path),
            "SELFSERVICE_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
            "SELFSERVICE_RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
            "SELFSERVICE_PROXY_HOPS": "1",
            "SELFSERVICE_ARGON2_MEMORY_KIB": "1024",
            "SELFSERVICE_ARGON2_TIME_COST": "1",
            **{f"SELFSERVICE_{key}": value for key, value in extra.items()},
        }
    )
    return environment


def start_gunicorn(environment: dict[str, str], count: int) -> Iterator[list[str]]:
    ports = [free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            serve_argv(port),
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait_until_serving(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.communicate(timeout=30)


def _wait_until_serving(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {process.stderr.read() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn at {url} did not answer within 60 s")
