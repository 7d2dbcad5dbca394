"""Small helpers that turn the current request into plain values for services."""

from flask import request

from selfservice.audit.services import Origin


def current_origin() -> Origin:
    """The caller's address (after ProxyFix, when configured) and user agent."""
    return Origin(ip=request.remote_addr, user_agent=request.user_agent.string or None)


def is_safe_next(target: str | None) -> bool:
    """Only same-site relative paths are followed after sign-in."""
    return bool(target) and target.startswith("/") and not target.startswith("//") and "\\" not in target
