"""Small helpers that turn the current request into plain values for services.

Input from outside that steers the app goes through one helper per kind (DESIGN
invariant 13): :func:`safe_next` decides every redirect target taken from a request,
:func:`parse_id` every number (ids, revisions, cursors), also as the ``<id:...>`` URL
converter. Neither raises on bad input: the caller shows a 404 or a 400.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app, request
from werkzeug.routing import BaseConverter, ValidationError

from selfservice.audit.services import Origin

#: Ids are 64-bit signed integers (BigId); larger numbers name nothing.
MAX_ID = 2**63 - 1
#: Ids of plain Integer columns (the question bank) are 32-bit on PostgreSQL.
MAX_INT32_ID = 2**31 - 1
#: Longest redirect target followed; longer ones are nobody's bookmark.
MAX_NEXT_CHARS = 2048


def current_origin() -> Origin:
    """The caller's address (after ProxyFix, when configured) and user agent."""
    return Origin(ip=request.remote_addr, user_agent=request.user_agent.string or None)


# Redirect targets ------------------------------------------------------------------


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site, else ``default``.

    Browsers drop tabs and line breaks from URLs and read ``\\`` as ``/``, so a target is
    judged as a browser would read it: control characters stripped, percent-escapes
    decoded (repeatedly), and then it must start with exactly one ``/``, hold no
    backslash and name no scheme or host. The stripped target is what is followed.
    """
    if not target or len(target) > MAX_NEXT_CHARS:
        return default
    cleaned = _strip_controls(target)
    decoded = cleaned
    for _round in range(3):
        decoded = _strip_controls(unquote(decoded))
    for form in (cleaned, decoded):
        if not form.startswith("/") or form.startswith("//") or "\\" in form:
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return default
    return cleaned


def _strip_controls(text: str) -> str:
    """``text`` without control, format or line/paragraph separator characters."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp"})


# Numbers -------------------------------------------------------------------------


def parse_id(text: str | None, *, maximum: int = MAX_ID, minimum: int = 0) -> int | None:
    """The number written in ASCII digits in ``text``, when within bounds; else ``None``.

    ``int()`` alone takes Unicode digits (``"٣"``), signs, spaces and underscores, and no
    upper bound: a number too large for the database was a 500.
    """
    if not text or not text.isascii() or not text.isdigit() or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if minimum <= value <= maximum else None


class IdConverter(BaseConverter):
    """``<id:name>`` (or ``<id(maximum=N):name>``) in a route: a bounded id, anything else a 404."""

    regex = r"[0-9]{1,19}"
    part_isolating = True

    def __init__(self, map: Any, maximum: int = MAX_ID) -> None:
        super().__init__(map)
        self.maximum = maximum

    def to_python(self, value: str) -> int:
        number = parse_id(value, minimum=1, maximum=self.maximum)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


# Links in mail ---------------------------------------------------------------------


def base_url() -> str:
    """The site's address for links in mail: BASE_URL, never the request's Host header.

    Only demo, debug and test apps, which may run without BASE_URL, fall back to the
    address the request came to.
    """
    configured = str(current_app.config["BASE_URL"]).rstrip("/")
    if configured:
        return configured
    config = current_app.config
    if config["DEMO"] or config["DEBUG"] or config["TESTING"]:
        return request.url_root.rstrip("/")
    raise RuntimeError("BASE_URL is not set")  # refused at start (config.validate)


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
