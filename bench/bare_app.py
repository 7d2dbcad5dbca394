"""A bare Flask page, the baseline GET /forgot is measured against (bench/forgot_throughput.py).

    gunicorn --pythonpath bench bare_app:app

One route returning a fixed page of ``BENCH_BARE_PAGE_BYTES`` (set to the size of the
portal's /forgot page, so both send as many bytes): no templates, no session, no database.
"""

from __future__ import annotations

import os

from flask import Flask

app = Flask(__name__)
HEAD = "<!doctype html><html><head><title>bare</title></head><body>"
PAGE = (
    HEAD + "x" * max(0, int(os.environ.get("BENCH_BARE_PAGE_BYTES", "0")) - len(HEAD) - 14) + "</body></html>"
)


@app.get("/")
def page() -> str:
    return PAGE
