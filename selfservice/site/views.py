"""Home, health, language choice and (demo only) the outbox viewer."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from selfservice.i18n import LANGUAGE_COOKIE
from selfservice.mail.languages import remember_language
from selfservice.mail.services import recent_messages
from selfservice.site import services
from selfservice.web import safe_next

blueprint = Blueprint("site", __name__)
demo_blueprint = Blueprint("demo", __name__, url_prefix="/demo")

ONE_YEAR_SECONDS = 365 * 24 * 3600


@blueprint.get("/")
def home() -> ResponseReturnValue:
    account_key = current_user.key if current_user.is_authenticated else None
    return render_template("site/home.html", **services.home_facts(account_key))


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    report = services.health()
    return jsonify(report), 503 if report["status"] == "unavailable" else 200


@blueprint.post("/language")
def choose_language() -> ResponseReturnValue:
    """Remember an explicit language choice (CSRF-checked like every POST)."""
    language = request.form.get("language", "")
    response = make_response(redirect(safe_next(request.form.get("next")), code=303))
    if language in current_app.config["LANGUAGES"]:
        if current_user.is_authenticated:  # mail to this account speaks it from now on
            remember_language(current_user.key, language, current_app.config["LANGUAGES"])
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=ONE_YEAR_SECONDS, samesite="Lax", httponly=True
        )
    return response


@demo_blueprint.get("/mail")
def demo_mail() -> ResponseReturnValue:
    return render_template("site/demo_mail.html", messages=recent_messages(limit=50))
