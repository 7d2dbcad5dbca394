"""Per-IP and global request limits (flask-limiter), checked before any view runs.

Limits are read from settings by name, so operators tune them without code. Every
breach becomes an audit event carrying the limit, the key, the endpoint and the IP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address

from selfservice.audit.services import record
from selfservice.audit.tags import Tag
from selfservice.extensions import limiter
from selfservice.web import current_origin

F = TypeVar("F", bound=Callable[..., Any])
GLOBAL_SCOPE = "global"


def throttle(setting: str, methods: tuple[str, ...] = ("POST",)) -> Callable[[F], F]:
    """Limit a view per IP by the setting ``setting``, and by the global limit shared by all."""
    per_ip = limiter.limit(
        lambda: current_app.config[setting], key_func=get_remote_address, methods=list(methods)
    )
    everyone = limiter.shared_limit(
        lambda: current_app.config["GLOBAL_RATE_LIMIT"],
        scope=GLOBAL_SCOPE,
        key_func=lambda: GLOBAL_SCOPE,
        methods=list(methods),
    )

    def decorator(view: F) -> F:
        return per_ip(everyone(view))  # type: ignore[return-value]

    return decorator


def record_breach(request_limit: RequestLimit) -> None:
    """Audit one breach; the 429 page itself comes from the error handler."""
    record(
        Tag.RATE_LIMIT_BREACH,
        outcome="refused",
        origin=current_origin(),
        details={
            "limit": str(request_limit.limit),
            "key": request_limit.key,
            "endpoint": request.endpoint or request.path,
            "method": request.method,
        },
    )


def init_app(app: Flask) -> None:
    """Call before ``limiter.init_app``: flask-limiter reads the callback from config there."""
    app.config.setdefault("RATELIMIT_ON_BREACH_CALLBACK", record_breach)
