"""Pages every anonymous visitor sees alike, rendered once a minute per language (issue 17).

``GET /forgot`` is the busiest page of the portal and the same for every visitor who is
not signed in and has no message waiting: only its language and the form token differ.
:func:`render_shared` renders such a page once per (page, language) and minute with a
placeholder where the token goes, and puts each visitor's own token in. Anything that
makes a page personal (a signed-in user, a flashed message, a query string, form
errors) renders it afresh, as before.

:class:`SharedPages`, a WSGI layer in front of the app, answers the commonest case
without Flask's request cycle: a GET of a page in :data:`SHARED_PATHS` from a visitor
with no session yet, or one holding nothing but a form token. It fills its copy by
sending a request through the app (so the page, its status and its headers are the
app's own, security headers and ``no-store`` included), then per visitor does only what
the app would do for them: pick the language (cookie, then the browser's), sign the
visitor's own CSRF token, and, for a new visitor, set the same signed session cookie
holding the raw token, which Flask-WTF checks on the POST as before. Anything else (a
query string, a signed-in or half-way session, a message waiting, a session cookie it
cannot read, debug mode) goes to the app unchanged.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app, g, render_template, request, session
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf
from itsdangerous import URLSafeTimedSerializer
from werkzeug.http import parse_cookie

from selfservice.auth.store import SERVER_KEYS, anonymous_contents, anonymous_cookie, cookie_signer
from selfservice.i18n import LANGUAGE_COOKIE, language_of

#: A shared page is rendered again after this long (configuration a page shows may change).
PAGE_SECONDS = 60.0
#: Stands for the visitor's form token in a shared page: letters only, so escaping leaves it alone.
TOKEN_PLACEHOLDER = "SelfserviceSharedPageFormTokenPlaceholderQx"
EXTENSION_KEY = "selfservice.pages"
#: Paths :class:`SharedPages` answers itself (their views call :func:`render_shared`).
SHARED_PATHS = frozenset({"/forgot"})
#: Set in the environ of the request :class:`SharedPages` fills its copy with.
FILL_KEY = "selfservice.fill_shared_page"
#: A visitor's session may hold only this (Flask-WTF's raw token) to be answered by the layer.
CSRF_KEY = "csrf_token"
_lock = threading.Lock()


def render_shared(template: str, **context: Any) -> str:
    """``render_template(template, **context)``, from the shared copy when the visitor is anonymous.

    ``context`` must be the same for every anonymous visitor (an empty form on a GET).
    """
    if not _shareable():
        return render_template(template, **context)
    if request.environ.get(FILL_KEY):  # SharedPages fills its copy: keep the placeholder
        return _render_with_placeholder(template, generate_csrf(), context)
    token = generate_csrf()  # the visitor's own, kept in their session as before
    key = (template, str(get_locale()), request.path)
    pages: dict[tuple[str, str, str], tuple[float, str]] = current_app.extensions.setdefault(
        EXTENSION_KEY, {}
    )
    cached = pages.get(key)
    if cached is None or cached[0] < time.monotonic():
        cached = (time.monotonic() + PAGE_SECONDS, _render_with_placeholder(template, token, context))
        with _lock:
            pages[key] = cached
    return cached[1].replace(TOKEN_PLACEHOLDER, token)


def _shareable() -> bool:
    return (
        request.method == "GET"
        and not request.query_string
        and not any(key in session for key in SERVER_KEYS)  # nobody signed in, or half-way
        and "_flashes" not in session
        and not current_app.debug
    )


def _render_with_placeholder(template: str, token: str, context: dict[str, Any]) -> str:
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    setattr(g, field, TOKEN_PLACEHOLDER)  # what generate_csrf() hands the template
    try:
        page = render_template(template, **context)
    finally:
        setattr(g, field, token)
    # A form built before this call already holds the visitor's token: never share it.
    return page.replace(token, TOKEN_PLACEHOLDER)


# The WSGI layer ----------------------------------------------------------------------

StartResponse = Callable[..., Any]


class SharedPages:
    """WSGI layer: an anonymous GET of a shared page answered from the app's own copy."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._pages: dict[tuple[str, str, str], tuple[float, str, list[tuple[str, str]]]] = {}
        self._signers: tuple[URLSafeTimedSerializer, URLSafeTimedSerializer] | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "GET"
            or environ.get("QUERY_STRING")
            or environ.get("PATH_INFO") not in SHARED_PATHS
            or self.app.debug
        ):
            return self.wsgi_app(environ, start_response)
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        visitor = self._visitor(cookies.get(self.app.config["SESSION_COOKIE_NAME"]))
        if visitor is None:
            return self.wsgi_app(environ, start_response)
        language = language_of(cookies, environ.get("HTTP_ACCEPT_LANGUAGE", ""), self.app.config)
        page = self._page(environ, language)
        if page is None:
            return self.wsgi_app(environ, start_response)
        raw, new = visitor
        session_signer, csrf_signer = self._signing()
        body = page[0].replace(TOKEN_PLACEHOLDER, csrf_signer.dumps(raw)).encode()
        headers = [*page[1], ("Content-Length", str(len(body)))]
        if new:
            headers += [
                ("Vary", "Cookie"),
                ("Set-Cookie", anonymous_cookie(self.app, {CSRF_KEY: raw}, session_signer)),
            ]
        start_response("200 OK", headers)
        return [body]

    def _visitor(self, cookie: str | None) -> tuple[str, bool] | None:
        """(raw form token, whether the session is new); None when the app must answer."""
        if not cookie:
            return secrets.token_hex(20), True  # 40 hex digits, the shape of Flask-WTF's own
        contents = anonymous_contents(self.app, cookie, self._signing()[0])
        if contents is None or set(contents) != {CSRF_KEY} or not isinstance(contents[CSRF_KEY], str):
            return None
        return contents[CSRF_KEY], False

    def _signing(self) -> tuple[URLSafeTimedSerializer, URLSafeTimedSerializer]:
        """The session cookie's serializer and Flask-WTF's token serializer, built once."""
        if self._signers is None:
            config = self.app.config
            secret = config.get("WTF_CSRF_SECRET_KEY") or self.app.secret_key
            self._signers = (cookie_signer(self.app), URLSafeTimedSerializer(secret, salt="wtf-csrf-token"))
        return self._signers

    def _page(self, environ: dict[str, Any], language: str) -> tuple[str, list[tuple[str, str]]] | None:
        # Links carry the mount point; HSTS goes only over HTTPS.
        key = (
            environ.get("SCRIPT_NAME", "") + environ["PATH_INFO"],
            language,
            environ.get("wsgi.url_scheme", ""),
        )
        cached = self._pages.get(key)
        if cached is None or cached[0] < time.monotonic():
            filled = self._fill(environ, language)
            if filled is None:
                return None
            cached = (time.monotonic() + PAGE_SECONDS, *filled)
            self._pages[key] = cached
        return cached[1], cached[2]

    def _fill(self, environ: dict[str, Any], language: str) -> tuple[str, list[tuple[str, str]]] | None:
        """The page as the app answers a new visitor in ``language``, its token a placeholder."""
        request_environ = {
            **{k: v for k, v in environ.items() if k not in ("HTTP_COOKIE", "HTTP_ACCEPT_LANGUAGE")},
            "HTTP_COOKIE": f"{LANGUAGE_COOKIE}={language}",
            "wsgi.input": io.BytesIO(b""),
            FILL_KEY: True,
        }
        answer: list[Any] = []
        chunks = self.wsgi_app(
            request_environ, lambda status, headers, exc_info=None: answer.extend([status, headers])
        )
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        page = body.decode()
        if not answer or answer[0] != "200 OK" or TOKEN_PLACEHOLDER not in page:
            return None
        # Per visitor: the length (tokens may differ in length) and the new session's cookie.
        return page, [(k, v) for k, v in answer[1] if not _per_visitor(k, v)]


def _per_visitor(name: str, value: str) -> bool:
    name = name.lower()
    return name in ("content-length", "set-cookie") or (name == "vary" and value == "Cookie")


def init_app(app: Flask) -> None:
    """Put the shared pages' layer in front of the app (ProxyFix, added later, stays outermost)."""
    app.wsgi_app = SharedPages(app, app.wsgi_app)  # type: ignore[method-assign]
