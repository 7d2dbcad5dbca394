"""Where passwords live: the Directory protocol, its adapters and the app's accessor."""

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from selfservice.directory.interfaces import Directory

EXTENSION_KEY = "selfservice.directory"


def build_directory(settings: Mapping[str, Any]) -> Directory:
    """The adapter named by the DIRECTORY setting."""
    kind = settings["DIRECTORY"]
    if kind in {"builtin", "demo"}:
        from selfservice.directory.builtin import BuiltinDirectory

        return BuiltinDirectory(settings)
    if kind == "openldap":
        from selfservice.directory.ldap import LdapDirectory

        return LdapDirectory(settings)
    if kind == "ad":
        from selfservice.directory.ad import AdDirectory

        return AdDirectory(settings)
    raise ValueError(f"unknown directory {kind!r}")


def init_app(app: Flask, directory: Directory | None = None) -> None:
    app.extensions[EXTENSION_KEY] = directory or build_directory(app.config)


def get_directory() -> Directory:
    """The directory adapter of the current app."""
    return current_app.extensions[EXTENSION_KEY]
