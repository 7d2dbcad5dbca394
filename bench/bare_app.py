"""A bare Flask page, the baseline GET /forgot is measured against (bench/forgot_throughput.py),
and a bare refusal, the baseline of a refused POST (bench/flood.py).

    gunicorn --pythonpath bench bare_app:app        # Flask
    gunicorn --pythonpath bench bare_app:refusal    # a WSGI callable, no Flask

One route returning a fixed page of ``BENCH_BARE_PAGE_BYTES`` (set to the size of the
portal's /forgot page, so both send as many bytes): no templates, no session, no database.
A POST to /forgot/questions answers that page as a 429 with a Retry-After, through Flask
(``app``) or straight from a WSGI callable (``refusal``: gunicorn's own floor).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

app = Flask(__name__)
HEAD = "<!doctype html><html><head><title>bare</title></head><body>"
PAGE = (
    HEAD + "x" * max(0, int(os.environ.get("BENCH_BARE_PAGE_BYTES", "0")) - len(HEAD) - 14) + "</body></html>"
)
BODY = PAGE.encode()
REFUSED = "429 TOO MANY REQUESTS"
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Retry-After", "3600")]


@app.get("/")
def page() -> str:
    return PAGE


@app.post("/forgot/questions")
def refused() -> tuple[str, int, dict[str, str]]:
    return PAGE, 429, {"Retry-After": "3600"}


def refusal(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Every request: the fixed page as a 429, with no framework at all."""
    start_response(REFUSED, [*HEADERS, ("Content-Length", str(len(BODY)))])
    return [BODY]
