"""Tokens out of log lines: reset-page paths carry a live token, and logs outlive it.

Used by the portal's own error log lines, by the gunicorn access log class that
docs/deployment.md recommends (:mod:`selfservice.site.accesslog`), and by a filter on
the development server's request log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: /forgot/reset/<token> and /reset/<token>, wherever they appear in a line.
TOKEN_PATH = re.compile(r"(/(?:forgot/)?reset/)[^/?#\s\"']+")
REDACTED = r"\1[token]"


def redact(text: str) -> str:
    """``text`` with the token of every reset-page path replaced."""
    return TOKEN_PATH.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message and arguments so no reset-page token reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        return True


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def install(logger_names: tuple[str, ...] = ("werkzeug",)) -> None:
    """Put the filter on the named loggers once (the development server logs every request line)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
            logger.addFilter(RedactTokens())
