"""gunicorn's access log without tokens: ``--logger-class selfservice.site.accesslog.RedactedLogger``.

The request line (``%(r)s``), the path (``%(U)s``) and the referrer (``%(f)s``) of a
reset page carry a live token; this logger writes ``/reset/[token]`` instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from selfservice.site.redaction import redact


class RedactedLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f", "{referer}i"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
