"""P5's floor: what the libraries a worker needs hold, before any of the portal's code.

    .venv/bin/python bench/memory_floor.py

In one fresh interpreter run as ``selfservice serve`` runs a worker (``-OO`` on bytecode
written beforehand; ``PYTHONOPTIMIZE=0`` measures without it), imports what a gunicorn
worker of the portal imports from other projects, one group at a time and in the order a
worker loads them, and prints the resident memory (VmRSS) after each; then scores one
password with zxcvbn-rs-py (its dictionaries are built on the first scoring) and runs one
argon2id hash with the default parameters through the portal's own pool (one 19 MiB
block, as a reset holds). Nothing of the portal is imported before the last step, so the
total is what the issue's 100 MB per worker has to hold before the portal's own code,
templates and caches.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

GROUPS = [
    ("Python and gunicorn's worker", ["gunicorn.workers.gthread", "gunicorn.http.wsgi"]),
    ("Flask, Werkzeug, Jinja", ["flask", "jinja2.ext"]),
    ("Flask extensions (login, WTF, Babel), limits", ["flask_login", "flask_wtf", "flask_babel", "limits"]),
    ("SQLAlchemy with its ORM", ["sqlalchemy", "sqlalchemy.orm", "flask_sqlalchemy"]),
    ("psycopg (PostgreSQL)", ["psycopg", "sqlalchemy.dialects.postgresql.psycopg"]),
    ("redis-py and limits' Redis storage", ["redis", "limits.storage.redis"]),
    ("ldap3 (OpenLDAP and AD)", ["ldap3"]),
    ("argon2-cffi, itsdangerous", ["argon2", "itsdangerous"]),
]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    if "PYTHONOPTIMIZE" not in os.environ:
        # Measure as `selfservice serve` runs a worker: -OO on bytecode written beforehand. This
        # process imports the portal to write it, so a fresh interpreter measures.
        from selfservice import serving

        environment = serving.worker_environment(os.environ)
        serving.precompile(serving.optimize_level(environment))
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)  # noqa: S606 - this script again
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    start = rss_mib()
    print(f"| step | adds (MiB) | resident (MiB) |\n|---|---:|---:|\n| interpreter | - | {start:.1f} |")
    before = start
    for label, modules in GROUPS:
        for module in modules:
            importlib.import_module(module)
        now = rss_mib()
        print(f"| {label} | {now - before:.1f} | {now:.1f} |")
        before = now
    from zxcvbn_rs_py import zxcvbn

    zxcvbn("Lantern-Orchard-42", ["s1000001"])
    now = rss_mib()
    print(f"| zxcvbn-rs-py, first scoring | {now - before:.1f} | {now:.1f} |")
    before = now
    from selfservice.argon2_pool import Argon2Hasher  # the portal's package __init__ and the pool

    hasher = Argon2Hasher()
    package = rss_mib()
    hasher.hash("Lantern-Orchard-42")
    now = rss_mib()
    floor = now - (package - before)  # without the portal's package, imported for the pool
    print(f"| one argon2id hash (m=19 MiB) from the pool | {now - package:.1f} | {floor:.1f} |")
    level = sys.flags.optimize
    print(f"\n{floor:.1f} MiB of libraries and one argon2 block, before the portal's own code (target 100)")
    print(f"(PYTHONOPTIMIZE={level}, as `selfservice serve` runs workers unless told otherwise)")
    from common import machine_line, result  # only now: it imports the portal and Flask

    print(f"ratio line: floor {floor:.1f} MiB / target 100 MiB = {floor / 100:.2f}x")
    print(machine_line())
    result("P5 floor: libraries + one argon2 block, OpenLDAP + PostgreSQL stack", floor, "MiB", "<= 100")


if __name__ == "__main__":
    main()
