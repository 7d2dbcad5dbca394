"""Per-address limits, answered before Flask does any work (invariants 2 and 14).

``@throttle("SIGN_IN_RATE_LIMIT")`` only marks a view. :class:`RefuseEarly`, a WSGI
layer in front of the app, finds the view a POST is for and spends one hit of the
address's limit for it. A refused request is answered there, with a page prerendered
per language and a ``Retry-After``: no session, template, database or directory work,
and no other limit's budget spent. The limit costs one Redis round trip, and none for the
address's next requests until the full window ends (the worker remembers the refusal:
``Limiter.hit(remember_refusal=True)``). Refusals are counted in memory and written as one
row per (address, limit, endpoint, minute) by a background flush, never a row each.

Addresses in ``TRUSTED_NETWORKS`` (a district's schools behind NAT) get the
``TRUSTED_``-prefixed limit of the same name. Per-account limits (sign-in) and the
answer lockout carry the guessing protection; per-address limits only bound what one
address can cost. No limit is shared by all clients: the CPU is protected by the
argon2 work gate (``security/work.py``), which counts only work actually done.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask, make_response, render_template
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie
from werkzeug.routing import MapAdapter, RequestRedirect

from selfservice.audit.counts import count_breaches
from selfservice.dbtypes import insert_for
from selfservice.extensions import db, limiter
from selfservice.i18n import LANGUAGE_COOKIE, language_of
from selfservice.limiter import RateLimited
from selfservice.security.models import RateLimitBreach
from selfservice.timeutil import utcnow

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
THROTTLE_ATTRIBUTE = "selfservice_throttle"
TRUSTED_PREFIX = "TRUSTED_"
#: Refusal pages are rendered again after this long (the help desk's hours change).
PAGE_SECONDS = 60.0
FLUSH_SECONDS = 2.0
#: Accept-Language headers up to this long have their language remembered (a browser's are short).
CACHED_HEADER_CHARS = 200


def throttle(setting: str, methods: tuple[str, ...] = ("POST",)) -> Callable[[F], F]:
    """Limit a view per address by the setting ``setting`` (enforced by :class:`RefuseEarly`)."""

    def decorator(view: F) -> F:
        setattr(view, THROTTLE_ATTRIBUTE, (setting, frozenset(methods)))
        return view

    return decorator


def trusted(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network], ip: str | None) -> bool:
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def parse_networks(values: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``TRUSTED_NETWORKS`` as networks; ValueError names a bad entry."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values]


def limit_setting(settings: Mapping[str, Any], setting: str, ip: str | None) -> str:
    """The setting that limits ``ip``: the trusted-network variant for the district's own networks."""
    if trusted(settings["TRUSTED_NETWORK_LIST"], ip) and TRUSTED_PREFIX + setting in settings:
        return TRUSTED_PREFIX + setting
    return setting


# Per-account claims (services) ----------------------------------------------------


def claim(settings: Mapping[str, Any], setting: str, scope: str, key: str, endpoint: str) -> None:
    """Spend one hit of a per-account limit *before* the check it guards; RateLimited when none is left.

    One atomic increment per claim, so a burst of parallel requests gets at most the
    limit's number of checks between them, on any number of workers sharing the storage.
    """
    windows = limiter.parse(settings[setting])
    wait = limiter.hit(windows, scope, setting, key)
    if wait:
        breaches.add(scope, key, f"{setting}: {settings[setting]}", endpoint)
        raise RateLimited(setting, wait, scope=scope)


def give_back(settings: Mapping[str, Any], setting: str, scope: str, key: str) -> None:
    """Return a claim whose outcome does not count (a match, not a mismatch)."""
    limiter.give_back(limiter.parse(settings[setting]), scope, setting, key)


# Refused before the app -----------------------------------------------------------


class RefuseEarly:
    """WSGI layer: per-address limits checked before the request reaches Flask."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Any]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._throttled: dict[str, tuple[str, frozenset[str]]] | None = None
        self._methods: frozenset[str] | None = None
        self._routes: MapAdapter | None = None
        self.pages = RefusalPages(app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        refusal = self._refusal(environ)
        if refusal is None:
            return self.wsgi_app(environ, start_response)
        setting, endpoint, wait = refusal
        ip = environ.get("REMOTE_ADDR") or "?"
        breaches.add("ip", ip, f"{setting}: {self.app.config[setting]}", endpoint)
        body, headers = self.pages.page(self._language(environ), wait, environ.get("wsgi.url_scheme"))
        start_response("429 TOO MANY REQUESTS", [*headers, ("Retry-After", str(wait))])
        return [body]

    def _refusal(self, environ: dict[str, Any]) -> tuple[str, str, int] | None:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in self.throttled_methods():  # a GET page: no route to match here
            return None
        endpoint = self._endpoint(environ, method)
        rule = self.throttled().get(endpoint or "")
        if endpoint is None or rule is None or method not in rule[1]:
            return None
        ip = environ.get("REMOTE_ADDR")
        setting = limit_setting(self.app.config, rule[0], ip)
        windows = limiter.parse(self.app.config[setting])
        wait = limiter.hit(windows, "ip", setting, endpoint, ip or "?", remember_refusal=True)
        return (setting, endpoint, wait) if wait else None

    def _endpoint(self, environ: dict[str, Any], method: str) -> str | None:
        if self._routes is None:  # bound once: the portal matches on path and method only (no hosts)
            self._routes = self.app.url_map.bind("localhost")
        path = environ.get("PATH_INFO", "").encode("latin-1").decode(errors="replace")  # as Werkzeug reads it
        try:
            endpoint, _ = self._routes.match(path or "/", method=method)
        except (HTTPException, RequestRedirect):
            return None
        return str(endpoint)

    def throttled(self) -> dict[str, tuple[str, frozenset[str]]]:
        """Endpoint -> (setting, methods) of every view marked with :func:`throttle`."""
        if self._throttled is None:
            self._throttled = {
                endpoint: getattr(view, THROTTLE_ATTRIBUTE)
                for endpoint, view in self.app.view_functions.items()
                if hasattr(view, THROTTLE_ATTRIBUTE)
            }
        return self._throttled

    def throttled_methods(self) -> frozenset[str]:
        """Every method some limit applies to (POST, unless a view says otherwise)."""
        if self._methods is None:
            self._methods = frozenset().union(*(methods for _setting, methods in self.throttled().values()))
        return self._methods

    def _language(self, environ: dict[str, Any]) -> str:
        """The language every other page would use (:func:`selfservice.i18n.language_of`)."""
        config, cookie = self.app.config, environ.get("HTTP_COOKIE", "")
        if f"{LANGUAGE_COOKIE}=" in cookie:  # parsed only when it may hold a choice
            chosen = parse_cookie(cookie).get(LANGUAGE_COOKIE)
            if chosen in config["LANGUAGES"]:
                return str(chosen)
        accept = environ.get("HTTP_ACCEPT_LANGUAGE", "")
        if len(accept) > CACHED_HEADER_CHARS:
            return language_of({}, accept, config)
        return _browser_language(accept, tuple(config["LANGUAGES"]), config["DEFAULT_LANGUAGE"])


@functools.lru_cache(maxsize=64)
def _browser_language(accept: str, languages: tuple[str, ...], default: str) -> str:
    return language_of({}, accept, {"LANGUAGES": languages, "DEFAULT_LANGUAGE": default})


class RefusalPages:
    """The "Too many attempts" page per (language, minutes), rendered once a minute at most."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._pages: dict[tuple[str, int, bool], tuple[float, bytes, list[tuple[str, str]]]] = {}

    def page(
        self, language: str, wait_seconds: int, scheme: str | None
    ) -> tuple[bytes, list[tuple[str, str]]]:
        minutes = max(1, math.ceil(wait_seconds / 60))
        key = (language, minutes, scheme == "https")
        cached = self._pages.get(key)
        if cached is None or cached[0] < time.monotonic():
            cached = (time.monotonic() + PAGE_SECONDS, *self._render(language, minutes, scheme or "http"))
            self._pages[key] = cached
        return cached[1], cached[2]

    def _render(self, language: str, minutes: int, scheme: str) -> tuple[bytes, list[tuple[str, str]]]:
        from selfservice.site.headers import set_security_headers

        headers = {"Cookie": f"{LANGUAGE_COOKIE}={language}"}
        with self.app.test_request_context("/", headers=headers, base_url=f"{scheme}://localhost"):
            body = render_template("errors/rate_limited.html", minutes=minutes, prerendered=True)
            response = set_security_headers(make_response(body, 429))
            kept = [(k, v) for k, v in response.headers.items() if k.lower() != "set-cookie"]
            return response.get_data(), kept


# Breaches counted, written once per minute and key --------------------------------


class BreachCounter:
    """Refusals counted in this process, flushed as upserts of one row per key and minute."""

    def __init__(self) -> None:
        self._pending: Counter[tuple[datetime, str, str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._app: Flask | None = None
        self._thread_pid: int | None = None
        self._background = True

    def bind(self, app: Flask) -> None:
        """Flush into ``app``'s database; tests flush by hand (no thread outliving a test)."""
        self._app = app
        self._background = not app.config["TESTING"]
        with self._lock:
            self._pending.clear()

    def add(self, scope: str, key: str, limit: str, endpoint: str, count: int = 1) -> None:
        minute = utcnow().replace(second=0, microsecond=0)
        with self._lock:
            self._pending[(minute, scope[:16], key[:128], limit[:128], endpoint[:64])] += count
        if self._background and self._thread_pid != os.getpid():  # first breach in this (forked) worker
            self._thread_pid = os.getpid()
            threading.Thread(target=self._run, name="breach-flush", daemon=True).start()

    def flush(self) -> int:
        """Write what is pending (inside an app context); the number of rows upserted."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return 0
        rows = [
            {"minute": m, "scope": s, "key": k, "limit_name": li, "endpoint": e, "count": n}
            for (m, s, k, li, e), n in pending.items()
        ]
        try:
            db.session.execute(_upsert(), rows)
            count_breaches(db.session.connection(), ((row["minute"], row["count"]) for row in rows))
            db.session.commit()
        except Exception:
            db.session.rollback()
            with self._lock:
                self._pending.update(pending)  # try again at the next flush
            raise
        return len(rows)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            if self._app is None:
                continue
            try:
                with self._app.app_context():
                    self.flush()
                    db.session.remove()
            except Exception:
                log.warning("rate-limit breaches not written yet", exc_info=True)


def _upsert() -> Any:
    dialect = db.session.get_bind().dialect.name
    insert = insert_for(dialect)
    statement = insert(RateLimitBreach)
    return statement.on_conflict_do_update(
        index_elements=["minute", "scope", "key", "limit_name", "endpoint"],
        set_={"count": RateLimitBreach.count + statement.excluded["count"]},
    )


breaches = BreachCounter()


def flush_breaches() -> int:
    """Write this process's pending breach counts now (admin pages, tests)."""
    return breaches.flush()


def init_app(app: Flask) -> None:
    """Put the refusal layer in front of the app (ProxyFix, added later, stays outermost)."""
    app.config["TRUSTED_NETWORK_LIST"] = parse_networks(app.config["TRUSTED_NETWORKS"])
    breaches.bind(app)
    app.wsgi_app = RefuseEarly(app, app.wsgi_app)  # type: ignore[method-assign]
