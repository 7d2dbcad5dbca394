"""selfservice: a self-service password portal for a school district."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from selfservice import web
from selfservice.config import load_settings, validate

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """templates/, static/ or migrations/: inside the package when installed, else the checkout."""
    bundled = PACKAGE_DIR / name
    return bundled if bundled.is_dir() else PACKAGE_DIR.parent / name


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal. ``config`` overrides every other source of settings."""
    overrides = dict(config or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or os.environ.get("SELFSERVICE_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        instance_relative_config=True,
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    settings = load_settings(Path(app.instance_path), overrides)
    validate(settings)
    app.config.update(settings)
    app.config.update(_flask_settings(settings))
    _init_extensions(app, overrides.get("DIRECTORY_ADAPTER"))
    _register_blueprints(app)
    if settings["PROXY_HOPS"]:
        hops = settings["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app


def _flask_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings the Flask extensions read under their own names."""
    relaxed = settings["DEMO"] or settings["DEBUG"]
    secure_cookie = settings["SESSION_COOKIE_SECURE"] and not relaxed
    return {
        "SQLALCHEMY_DATABASE_URI": settings["DATABASE_URL"],
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(settings["DATABASE_URL"]),
        # A __Host- cookie is refused by browsers unless Secure, on "/", without a Domain.
        "SESSION_COOKIE_NAME": f"{'__Host-' if secure_cookie else ''}selfservice_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookie,
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": False,
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=settings["SESSION_IDLE_MINUTES"]),
        "SESSION_REFRESH_EACH_REQUEST": True,
        "RATELIMIT_STORAGE_URI": settings["RATELIMIT_STORAGE_URI"],
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": settings["RATELIMIT_KEY_PREFIX"],
        "BABEL_DEFAULT_LOCALE": settings["DEFAULT_LANGUAGE"],
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "BABEL_TRANSLATION_DIRECTORIES": str(PACKAGE_DIR / "translations"),
        "MAX_CONTENT_LENGTH": 64 * 1024,
        # Pages send no Referer (Referrer-Policy: no-referrer keeps tokens in URLs private), so
        # Flask-WTF's HTTPS Referer check would refuse every form: the CSRF token and the
        # SameSite=Lax session cookie are the protection.
        "WTF_CSRF_SSL_STRICT": False,
    }


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Writers wait for each other instead of failing with "database is locked".
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def _init_extensions(app: Flask, directory: Any) -> None:
    from selfservice import directory as directory_module
    from selfservice import i18n, security, sync
    from selfservice.extensions import csrf, db, limiter, migrate
    from selfservice.security import throttling

    db.init_app(app)
    migrate.init_app(app, db, directory=str(resource_dir("migrations")))
    csrf.init_app(app)
    throttling.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    directory_module.init_app(app, directory)
    security.init_app(app)
    sync.init_app(app)
    _import_models()


def _import_models() -> None:
    """Every model module, so metadata (and Alembic) sees every table."""
    from selfservice.activation import models as _activation  # noqa: F401
    from selfservice.api import models as _api  # noqa: F401
    from selfservice.audit import models as _audit  # noqa: F401
    from selfservice.auth import models as _auth  # noqa: F401
    from selfservice.directory import models as _directory  # noqa: F401
    from selfservice.helpdesk import models as _helpdesk  # noqa: F401
    from selfservice.mail import models as _mail  # noqa: F401
    from selfservice.portal import models as _portal  # noqa: F401
    from selfservice.security import models as _security  # noqa: F401
    from selfservice.site import models as _site  # noqa: F401
    from selfservice.sync import models as _sync  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from selfservice.activation import init_app as init_activation
    from selfservice.admin.views import blueprint as admin
    from selfservice.api import init_app as init_api
    from selfservice.auth import init_app as init_auth
    from selfservice.helpdesk.views import blueprint as helpdesk
    from selfservice.helpdesk.views import reset_blueprint as helpdesk_reset
    from selfservice.portal.views import blueprint as portal
    from selfservice.site import init_app as init_site
    from selfservice.sync.views import blueprint as sync

    web.init_app(app)  # the <id:...> URL converter, before any route uses it
    init_site(app)
    init_auth(app)
    app.register_blueprint(portal)
    app.register_blueprint(helpdesk)
    app.register_blueprint(helpdesk_reset)
    app.register_blueprint(admin)
    app.register_blueprint(sync)
    init_api(app)
    init_activation(app)
