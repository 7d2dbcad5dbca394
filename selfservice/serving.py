"""How ``selfservice serve`` starts gunicorn: its command line and the workers' environment.

A worker runs with ``PYTHONOPTIMIZE=2`` (Python's ``-OO``): docstrings are not loaded with
the code, which keeps about 6 MiB of every worker's memory free (issue 17, P5;
docs/benchmarks.md). The portal itself never relies on ``assert`` (ruff's S101 holds for
``selfservice/``) nor on a docstring, and the suite's gunicorn instances run this way
(``tests/deploy``). Python only writes bytecode for ``-OO`` when it compiles a module, which
a read-only install forbids, so :func:`precompile` writes it for the portal, its libraries
and the standard library before the workers start; where it cannot, workers compile what
they import at every start (slower, and more memory at the peak).
"""

from __future__ import annotations

import compileall
import os
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

APP = "selfservice.wsgi:app"
LOGGER_CLASS = "selfservice.site.accesslog.RedactedLogger"
OPTIMIZE = 2


def gunicorn_argv(
    bind: str,
    workers: int,
    *,
    threads: int | None = None,
    extra: Sequence[str] = (),
    app: str = APP,
    logger_class: str | None = LOGGER_CLASS,
) -> list[str]:
    """gunicorn through this interpreter, with the access log that keeps reset tokens out."""
    argv = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    if logger_class is not None:
        argv += ["--logger-class", logger_class]
    return [*argv, *extra, app]


def worker_environment(environ: Mapping[str, str], workers: int | None = None) -> dict[str, str]:
    """``environ`` with ``PYTHONOPTIMIZE=2`` unless the operator set it (``0`` turns it off),
    and ``SELFSERVICE_WEB_WORKERS`` equal to gunicorn's ``--workers``."""
    found = dict(environ)
    found.setdefault("PYTHONOPTIMIZE", str(OPTIMIZE))
    if workers is not None:
        found["SELFSERVICE_WEB_WORKERS"] = str(workers)
    return found


def optimize_level(environ: Mapping[str, str]) -> int:
    """The ``-O`` level a Python started with ``environ`` runs at (as CPython reads it)."""
    text = environ.get("PYTHONOPTIMIZE", "")
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        return 1


def code_folders() -> list[Path]:
    """Where a worker's modules come from: the portal, its libraries, the standard library."""
    package = Path(__file__).resolve().parent
    paths = sysconfig.get_paths()
    folders = [package, Path(paths["purelib"]), Path(paths["platlib"]), Path(paths["stdlib"])]
    unique: list[Path] = []
    for folder in folders:  # a folder inside one already listed is compiled with it
        if folder.is_dir() and not any(folder.is_relative_to(listed) for listed in unique):
            unique.append(folder)
    return unique


def precompile(level: int, folders: Iterable[Path] | None = None) -> list[Path]:
    """Write the bytecode of ``level`` where it is missing or stale; the folders not writable."""
    if level <= 0:
        return []
    unwritable = []
    for folder in code_folders() if folders is None else folders:
        if not os.access(folder, os.W_OK):
            unwritable.append(folder)
            continue
        compileall.compile_dir(folder, quiet=2, optimize=level, workers=1)
    return unwritable
