"""Pages every anonymous visitor sees alike, rendered once a minute per language (issue 17).

``GET /forgot`` is the busiest page of the portal and the same for every visitor who is
not signed in and has no message waiting: only its language and the form token differ.
:func:`render_shared` renders such a page once per (page, language) and minute with a
placeholder where the token goes, and puts each visitor's own token in. Anything that
makes a page personal (a signed-in user, a flashed message, a query string, form
errors) renders it afresh, as before.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import current_app, g, render_template, request, session
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf

from selfservice.auth.store import SERVER_KEYS

#: A shared page is rendered again after this long (configuration a page shows may change).
PAGE_SECONDS = 60.0
#: Stands for the visitor's form token in a shared page: letters only, so escaping leaves it alone.
TOKEN_PLACEHOLDER = "SelfserviceSharedPageFormTokenPlaceholderQx"
EXTENSION_KEY = "selfservice.pages"
_lock = threading.Lock()


def render_shared(template: str, **context: Any) -> str:
    """``render_template(template, **context)``, from the shared copy when the visitor is anonymous.

    ``context`` must be the same for every anonymous visitor (an empty form on a GET).
    """
    if not _shareable():
        return render_template(template, **context)
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
