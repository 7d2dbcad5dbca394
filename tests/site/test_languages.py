"""Families read every word in their own language: the browser's tags, the remembered choice, mail,
dates, questions, password advice and the district's own texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from sqlalchemy import select

from selfservice import create_app
from selfservice.config import ConfigError
from selfservice.dates import day_names, format_clock, format_moment
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.mail.models import AccountLanguage, OutboxMessage
from selfservice.mail.notices import Notice, notify_account
from selfservice.portal.models import Question
from selfservice.portal.question_bank import SEED_BANK
from selfservice.security.zxcvbn_messages import ZXCVBN_MESSAGES
from tests.conftest import AppFactory, AuthActions, csrf_token, person, post_form
from tests.helpdesk.helpers import act, browser, link_mails, open_request, opened_number, outbox

NEW_YORK_EVENING = datetime(2026, 12, 2, 19, 14, tzinfo=UTC)  # 14:14 in America/New_York


def translated(app: Flask, text: str, language: str, **values: Any) -> str:
    with app.test_request_context(), force_locale(language):
        return gettext(text, **values)


def page_language(client: FlaskClient, path: str = "/") -> str:
    found = re.search(r'<html lang="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)


# Which language ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("ht", "ht"),
        ("ht-HT", "ht"),
        ("fr-HT, fr;q=0.9", "ht"),  # Haitian phones
        ("fr-FR, fr;q=0.9", "fr"),
        ("fr-CA", "fr"),
        ("es-MX, es;q=0.9", "es"),
        ("de-DE, de;q=0.9", "en"),  # nothing served: the district's default
    ],
)
def test_the_browsers_language_chooses_the_page_language(
    client: FlaskClient, accept: str, expected: str
) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    assert page_language(client) == expected


def test_french_pages_are_french(client: FlaskClient) -> None:
    client.set_cookie("lang", "fr")
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "mot de passe" in page.lower()


@pytest.mark.parametrize(
    ("language", "title"),
    [
        ("en", "Forgot your password? · Springfield Schools Password Help"),
        ("es", "¿Olvidó su contraseña? · Ayuda con contraseñas de Springfield Schools"),
        ("fr", "Mot de passe oublié ? · Aide aux mots de passe de Springfield Schools"),
        ("ht", "Ou bliye modpas ou? · Èd pou modpas Springfield Schools"),
    ],
)
def test_the_page_title_a_screen_reader_reads_first_is_in_the_languages_word_order(
    client: FlaskClient, language: str, title: str
) -> None:
    client.set_cookie("lang", language)
    page = client.get("/forgot").get_data(as_text=True)
    found = re.search(r"<title>(.*?)</title>", page, re.DOTALL)
    assert found
    assert " ".join(found.group(1).split()) == title


def test_the_holders_choice_is_remembered_at_sign_in_and_when_they_switch(
    app: Flask, client: FlaskClient
) -> None:
    client.set_cookie("lang", "es")
    assert AuthActions(client).login("p2000001").status_code == 303
    assert _remembered(app, "p2000001") == "es"
    post_form(client, "/language", {"language": "fr", "next": "/"}, form_path="/")
    assert _remembered(app, "p2000001") == "fr"


def test_a_choice_made_while_signed_out_is_not_stored_for_anyone(app: Flask, client: FlaskClient) -> None:
    post_form(client, "/language", {"language": "ht", "next": "/"}, form_path="/")
    with app.app_context():
        assert db.session.scalars(select(AccountLanguage)).all() == []


def test_choosing_kreyol_after_the_page_went_stale_answers_in_kreyol(app: Flask) -> None:
    """The phone's browser asks for English; the page sat open past its form token's life."""
    stale = csrf_token(app.test_client(), "/forgot")
    phone = app.test_client()
    phone.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-US,en;q=0.9"

    response = phone.post("/language", data={"csrf_token": stale, "language": "ht", "next": "/forgot"})

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert '<html lang="ht">' in page
    assert translated(app, "Please try again", "ht") in page
    assert "Please try again" not in page


def _remembered(app: Flask, login: str) -> str | None:
    with app.app_context():
        account = get_directory().find(login)
        assert account is not None
        row = db.session.get(AccountLanguage, account.key)
        return row.language if row else None


# Mail speaks the holder's language, whoever sends it ---------------------------------------------


def test_a_parents_reset_link_follows_the_parents_language_not_the_technicians(app: Flask) -> None:
    parent = browser(app, None)
    parent.set_cookie("lang", "es")
    assert AuthActions(parent).login("p2000001").status_code == 303  # the parent chose Spanish
    teacher = app.test_client()
    teacher.set_cookie("lang", "ht")  # the employee works in Kreyòl
    assert AuthActions(teacher).login("teacher1").status_code == 303
    support, its = browser(app, "support1"), browser(app, "its1")  # both in English

    number = opened_number(open_request(teacher, "parent"))
    assert act(support, number, "take").status_code == 303
    reason = {"escalate_reason": "Parent cannot sign in; a reset is needed."}
    assert act(support, number, "escalate", reason).status_code == 303
    assert act(its, number, "reset-link").status_code == 303

    (link,) = link_mails(app)
    parent_name = person("p2000001").display_name
    subject = translated(
        app, "%(number)s: password reset link for %(name)s", "es", number=number, name=parent_name
    )
    assert link.subject == subject
    assert "The link works once" not in link.body_text
    assert 'lang="es"' in (link.body_html or "")
    assert "UTC" not in link.body_text
    (received,) = outbox(app, "helpdesk:received")  # the employee's receipt: in the employee's language
    assert received.subject.startswith(
        translated(app, "%(number)s received: %(what)s", "ht", number=number, what="")
    )


def test_a_parent_who_never_signed_in_gets_the_reset_link_in_the_language_they_told_the_school(
    app: Flask,
) -> None:
    """The parent phoned the school in Kreyòl: never signed in, so the portal knows no language."""
    teacher, support, its = browser(app, "teacher1"), browser(app, "support1"), browser(app, "its1")
    assert 'name="parent_language"' in teacher.get("/helpdesk/new/parent").get_data(as_text=True)

    number = opened_number(open_request(teacher, "parent", parent_language="ht"))
    assert act(support, number, "take").status_code == 303
    reason = {"escalate_reason": "Parent cannot sign in; a reset is needed."}
    assert act(support, number, "escalate", reason).status_code == 303
    assert act(its, number, "reset-link").status_code == 303

    (link,) = link_mails(app)
    subject = translated(
        app, "%(number)s: password reset link for %(name)s", "ht", number=number, name="Maria Lopez"
    )
    assert link.subject == subject
    assert 'lang="ht"' in (link.body_html or "")
    assert _remembered(app, "p2000001") == "ht"


def test_the_parents_own_choice_wins_over_the_language_given_on_a_request(app: Flask) -> None:
    parent = browser(app, None)
    parent.set_cookie("lang", "es")
    assert AuthActions(parent).login("p2000001").status_code == 303

    opened_number(open_request(browser(app, "teacher1"), "parent", parent_language="fr"))

    assert _remembered(app, "p2000001") == "es"


def test_a_notice_goes_in_the_accounts_language_even_from_a_page_in_another(app: Flask) -> None:
    with app.test_request_context(headers={"Cookie": "lang=fr"}):
        account = get_directory().find("s1000001")
        assert account is not None
        notify_account(account, Notice.UNLOCKED)  # nobody chose: the district's language
        db.session.add(AccountLanguage(account_key=account.key, language="ht"))
        db.session.commit()
        notify_account(account, Notice.UNLOCKED)
        first, second = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert first.subject == "Password self-service is unlocked for your account"
    assert second.subject == translated(app, "Password self-service is unlocked for your account", "ht")
    assert "UTC" not in first.body_text + second.body_text


# Dates and times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Wednesday, December 2, 2026, 2:14\u202fPM"),
        ("es", "miércoles, 2 de diciembre de 2026, 14:14"),
        ("fr", "mercredi 2 décembre 2026, 14:14"),
        ("ht", "mèkredi 2 desanm 2026 a 14:14"),
    ],
)
def test_a_moment_is_told_in_the_district_zone_and_the_readers_language(language: str, expected: str) -> None:
    assert format_moment(NEW_YORK_EVENING, language, "America/New_York") == expected


def test_kreyol_has_its_own_day_names_and_clock() -> None:
    assert day_names("ht")[:3] == ["lendi", "madi", "mèkredi"]
    assert format_clock(time(16, 30), "ht") == "16:30"


def test_help_desk_hours_in_kreyol_name_the_days_in_kreyol(client: FlaskClient) -> None:
    client.set_cookie("lang", "ht")
    page = client.get("/").get_data(as_text=True)
    assert "lendi, madi, mèkredi, jedi, vandredi" in page
    assert "Mon" not in page
    assert "M11" not in page


def test_no_page_or_mail_template_formats_a_date_with_strftime() -> None:
    root = Path(__file__).resolve().parents[2]
    users_see = [*root.glob("templates/**/*.html"), *root.glob("templates/**/*.txt")]
    users_see += [
        root / "selfservice" / "helpdesk" / "notify.py",
        root / "selfservice" / "mail" / "notices.py",
        root / "selfservice" / "admin" / "views.py",
    ]
    assert [str(path) for path in users_see if "strftime" in path.read_text(encoding="utf-8")] == []


# Questions and password advice -------------------------------------------------------------------


def test_the_shipped_questions_are_offered_in_spanish_and_an_untranslated_one_says_it_is_english(
    app: Flask, auth: AuthActions, client: FlaskClient
) -> None:
    with app.app_context():
        db.session.add(Question(text="Which district-made question has no translation yet?", position=99))
        db.session.commit()
    client.set_cookie("lang", "es")
    auth.login("s1000001")
    page = client.get("/enroll").get_data(as_text=True)
    for seed in SEED_BANK:
        assert f">{seed['es']}</option>" in page
        assert seed["en"] not in page
    untranslated = (
        r'<option lang="en" value="\d+">Which district-made question has no translation yet\?</option>'
    )
    assert re.search(untranslated, page)


def test_every_shipped_question_has_every_language() -> None:
    for seed in SEED_BANK:
        assert set(seed) == {"en", "es", "ht", "fr"}
        assert all(seed.values())


def test_password_advice_reads_in_spanish(app: Flask, auth: AuthActions, client: FlaskClient) -> None:
    client.set_cookie("lang", "es")
    auth.login("s1000001")
    data = {
        "current_password": person("s1000001").password,
        "new_password": "password1",
        "confirm": "password1",
    }
    response = post_form(client, "/password", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert [message for message in ZXCVBN_MESSAGES if message in page] == []
    spanish = [translated(app, message, "es") for message in ZXCVBN_MESSAGES]
    assert any(advice in page for advice in spanish)


def test_the_enrollment_summary_names_each_question(
    app: Flask, auth: AuthActions, client: FlaskClient
) -> None:
    client.set_cookie("lang", "es")
    auth.login("s1000001")
    page = post_form(client, "/enroll", {}).get_data(as_text=True)
    summary = page.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    label = translated(app, "Question %(number)s", "es", number=2)
    assert f"{label}: {translated(app, 'Choose a question.', 'es')}" in summary


# The district's own texts --------------------------------------------------------------------------


def test_district_name_and_hours_note_can_be_set_per_language(make_app: AppFactory) -> None:
    app = make_app(
        DISTRICT_NAME_BY_LANGUAGE={"es": "Distrito Escolar de Springfield"},
        SUPPORT_HOURS_NOTE_BY_LANGUAGE={"es": "Cerrado durante las vacaciones escolares."},
    )
    client = app.test_client()
    english = client.get("/").get_data(as_text=True)
    client.set_cookie("lang", "es")
    spanish = client.get("/").get_data(as_text=True)
    assert "Distrito Escolar de Springfield" in spanish
    assert "Cerrado durante las vacaciones" in spanish
    assert "Distrito Escolar" not in english
    assert app.config["DISTRICT_NAME"] in english
    assert "There is no evening help desk" in english


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"LANGUAGES": ["en", "de"]}, "LANGUAGES"),
        ({"DEFAULT_LANGUAGE": "fr", "LANGUAGES": ["en", "es"]}, "DEFAULT_LANGUAGE"),
        ({"DISTRICT_NAME_BY_LANGUAGE": {"de": "Schulbezirk"}}, "DISTRICT_NAME_BY_LANGUAGE"),
        ({"SUPPORT_HOURS_NOTE_BY_LANGUAGE": {"es": 7}}, "SUPPORT_HOURS_NOTE_BY_LANGUAGE"),
    ],
)
def test_language_settings_are_checked_at_start(
    tmp_path: Path, overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        create_app(
            {"TESTING": True, "DATABASE_URL": "sqlite://", "INSTANCE_PATH": str(tmp_path), **overrides}
        )


def test_the_admin_edits_the_french_wording_of_a_question(
    app: Flask, auth: AuthActions, client: FlaskClient
) -> None:
    auth.login("admin1")
    with app.app_context():
        question = db.session.scalars(select(Question).order_by(Question.id)).first()
        assert question is not None
        ident, text = question.id, question.text
    path = f"/admin/questions/{ident}"
    page = client.get(path).get_data(as_text=True)
    assert SEED_BANK[0]["fr"].replace("'", "&#39;") in page
    data = {
        "text": text,
        "text_es": SEED_BANK[0]["es"],
        "text_ht": SEED_BANK[0]["ht"],
        "text_fr": "Nouvelle formulation ?",
    }
    client.post(path, data={"csrf_token": csrf_token(client, path), **data})
    with app.app_context():
        question = db.session.get(Question, ident)
        assert question is not None
        assert question.translations["fr"] == "Nouvelle formulation ?"
        assert question.translations["es"] == SEED_BANK[0]["es"]


def test_spanish_names_mothers_too_wherever_it_says_father() -> None:
    from tests.site.test_translations import catalog

    gendered = []
    for message in catalog("es"):
        text = " ".join(message.string) if isinstance(message.string, tuple) else message.string
        if message.id and re.search(r"\bpadre\b", text, re.IGNORECASE) and "madre" not in text:
            gendered.append(text)
    assert gendered == []


def test_the_dashboard_in_kreyol_labels_days_in_kreyol(
    app: Flask, auth: AuthActions, client: FlaskClient
) -> None:
    client.set_cookie("lang", "ht")
    auth.login("admin1")
    page = client.get("/admin/").get_data(as_text=True)
    assert re.search(
        r"\b(len|mad|mèk|jed|van|sam|dim) \d{1,2} (jan|fev|mas|avr|me|jen|jiy|out|sep|okt|nov|des)\b", page
    )
    assert not re.search(r"\bM(1[0-2]|[1-9])\b", page)  # Babel's placeholder month names


def test_a_recovery_question_in_a_fallback_language_is_marked_and_escaped() -> None:
    from selfservice.portal.forms import question_label

    assert question_label("¿Qué?", "es", "es") == "¿Qué?"
    assert (
        str(question_label("Tom & <Jerry>?", "en", "ht")) == '<span lang="en">Tom &amp; &lt;Jerry&gt;?</span>'
    )
