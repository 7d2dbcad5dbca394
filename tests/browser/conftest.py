"""Browser fixtures: the system Chromium driven by Playwright, and the app served on loopback.

- Chromium is Debian's package at /usr/bin/chromium (scripts/test installs it); Playwright never
  downloads a browser. Without it the tests fail under CI=true and are skipped elsewhere.
- axe-core comes from the npm registry (package.json; scripts/test runs ``npm ci``).
- The app is the one ``make_app`` builds on the test database, served by werkzeug in a thread on a
  free 127.0.0.1 port. It keeps the production cookie flags (Secure, HttpOnly, SameSite=Lax):
  Chromium treats http://127.0.0.1 as a secure origin, so it stores and sends Secure cookies
  there. The sign-in journeys would fail if that ever stopped being true.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import AppFactory

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"

#: No network here: without these Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SIZES = {
    "phone": {"width": 375, "height": 667},
    "desktop": {"width": 1280, "height": 800},
}

#: Every page load in these tests comes from 127.0.0.1: lift the per-IP limits that a person
#: would never reach, except where a test is about them.
BROWSER_SETTINGS: dict[str, Any] = {
    "SIGN_IN_RATE_LIMIT": "1000 per minute",
    "RECOVERY_RATE_LIMIT": "1000 per minute",
    "PASSWORD_RATE_LIMIT": "1000 per minute",
    "GLOBAL_RATE_LIMIT": "5000 per minute",
    "HELP_DESK_PHONE": "305-555-0100",
}


def _missing(what: str, how: str) -> None:
    """A missing tool fails the run in CI and skips the browser tests elsewhere."""
    message = f"{what} is missing: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(str(CHROMIUM), "apt-get install chromium (scripts/test does it when run as root)")
    if not AXE_SCRIPT.exists():
        _missing(str(AXE_SCRIPT), "run npm ci at the top of the checkout (scripts/test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@dataclass
class LiveServer:
    app: Flask
    url: str

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture
def serve() -> Iterator[Callable[[Flask], LiveServer]]:
    """``serve(app)``: the app on a free loopback port until the test ends."""
    servers = []

    def start(app: Flask) -> LiveServer:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
        thread.start()
        servers.append((server, thread))
        return LiveServer(app, f"http://127.0.0.1:{server.server_port}")

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def browser_app(make_app: AppFactory) -> Callable[..., Flask]:
    """``browser_app(SETTING=value)``: make_app with the browser settings."""

    def build(**overrides: Any) -> Flask:
        return make_app(**{**BROWSER_SETTINGS, **overrides})

    return build


@pytest.fixture
def live(browser_app: Callable[..., Flask], serve: Callable[[Flask], LiveServer]) -> LiveServer:
    return serve(browser_app())


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    """Every test that takes ``size`` runs at a phone size and at a desktop size."""
    return request.param


@pytest.fixture
def open_page(browser: Any, size: str) -> Iterator[Callable[..., Any]]:
    """``open_page(javascript=True, locale="en-US")``: a new page in a fresh browser context."""
    contexts = []

    def open_(*, javascript: bool = True, locale: str = "en-US") -> Any:
        context = browser.new_context(
            viewport=SIZES[size], java_script_enabled=javascript, locale=locale, service_workers="block"
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.csp_violations = []  # type: ignore[attr-defined]
        page.on("console", lambda message: _note_csp(page, message))
        return page

    yield open_
    for context in contexts:
        context.close()


def _note_csp(page: Any, message: Any) -> None:
    if "Content Security Policy" in message.text:
        page.csp_violations.append(message.text)


@pytest.fixture
def page(open_page: Callable[..., Any]) -> Any:
    return open_page()
