"""Forms of the self-service pages. The rules live in the services; forms only parse."""

from __future__ import annotations

from collections.abc import Sequence

from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length

from selfservice.i18n import _l
from selfservice.web import MAX_INT32_ID, parse_id

# Enrollment ---------------------------------------------------------------------

#: Generous bounds for the raw input; the answer rules (ANSWER_*) decide after normalising.
ANSWER_INPUT_MAX_CHARS = 300
PASSWORD_INPUT_MAX_CHARS = 256


class EnrollmentForm(FlaskForm):
    """K question/answer pairs (``question_1``, ``answer_1``, ...), built by :func:`enrollment_form`."""

    current_password = PasswordField(
        _l("Your current password"),
        validators=[Length(max=PASSWORD_INPUT_MAX_CHARS, message=_l("This password is too long."))],
        render_kw={"autocomplete": "current-password"},
    )
    count = 0

    def slots(self) -> list[tuple[SelectField, StringField]]:
        return [(self[f"question_{n}"], self[f"answer_{n}"]) for n in range(1, self.count + 1)]

    def choices(self) -> list[tuple[int | None, str]]:
        """(question id or None, answer) per slot, as the enrollment service takes them."""
        return [(_question_id(select.data), answer.data or "") for select, answer in self.slots()]


def _question_id(value: str | None) -> int | None:
    return parse_id(value, minimum=1, maximum=MAX_INT32_ID)


def enrollment_form(count: int, questions: Sequence[tuple[int, str, str]]) -> EnrollmentForm:
    """An enrollment form with ``count`` question selects over ``questions`` ((id, text, lang))."""
    options = [SelectChoice("", _l("Choose a question"))]
    # A question shown in a fallback language says so, so screen readers pronounce it right.
    options += [SelectChoice(str(qid), text, render_kw={"lang": lang}) for qid, text, lang in questions]
    fields = {"count": count}
    for n in range(1, count + 1):
        fields[f"question_{n}"] = SelectField(
            _l("Question %(number)s", number=n),
            choices=options,
            # The enrollment service checks the choices and answers, so every problem of
            # the set shows at once; an unknown or retired id gets its message, not WTForms'.
            validate_choice=False,
        )
        fields[f"answer_{n}"] = StringField(
            _l("Answer %(number)s", number=n),
            validators=[Length(max=ANSWER_INPUT_MAX_CHARS, message=_l("This answer is too long."))],
            render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
        )
    form_class = type("SizedEnrollmentForm", (EnrollmentForm,), fields)
    return form_class()


# Change password ----------------------------------------------------------------


def _password_length() -> Length:
    return Length(max=PASSWORD_INPUT_MAX_CHARS, message=_l("This password is too long."))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[InputRequired(_l("Enter your current password.")), _password_length()],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("New password"),
        validators=[InputRequired(_l("Choose a new password.")), _password_length()],
        render_kw={"autocomplete": "new-password", "data-password-meter": ""},
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[InputRequired(_l("Type the new password again."))],
        render_kw={"autocomplete": "new-password"},
    )


# Forgotten password -------------------------------------------------------------

CODE_INPUT_MAX_CHARS = 32


class ForgotForm(FlaskForm):
    login = StringField(
        _l("Student ID, username or email"),
        validators=[InputRequired(_l("Enter your student ID, username or email.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )


class RecoveryAnswersForm(FlaskForm):
    """One answer per pinned question (``answer_1``, ...), built by :func:`recovery_answers_form`."""

    count = 0

    def answer_fields(self) -> list[PasswordField]:
        return [self[f"answer_{n}"] for n in range(1, self.count + 1)]

    def answers(self) -> list[str]:
        return [f.data or "" for f in self.answer_fields()]


def question_label(text: str, lang: str, page_language: str) -> str | Markup:
    """A question as a field label; marked with its language when it is not the page's."""
    if lang == page_language:
        return text
    return Markup('<span lang="{}">{}</span>').format(lang, text)


def recovery_answers_form(questions: Sequence[str | Markup]) -> RecoveryAnswersForm:
    """A form with one answer field per question text, the text as its label.

    Password fields: an answer is never echoed back into a page.
    """
    fields: dict[str, object] = {"count": len(questions)}
    for n, text in enumerate(questions, start=1):
        fields[f"answer_{n}"] = PasswordField(
            text,
            validators=[Length(max=ANSWER_INPUT_MAX_CHARS, message=_l("This answer is too long."))],
            render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
        )
    form_class = type("SizedRecoveryAnswersForm", (RecoveryAnswersForm,), fields)
    return form_class()


class VerificationCodeForm(FlaskForm):
    code = StringField(
        _l("Verification code"),
        validators=[InputRequired(_l("Type the code from the email.")), Length(max=CODE_INPUT_MAX_CHARS)],
        render_kw={"autocomplete": "one-time-code", "autocapitalize": "characters", "spellcheck": "false"},
    )


class RecoveryPasswordForm(FlaskForm):
    new_password = PasswordField(
        _l("New password"),
        validators=[InputRequired(_l("Choose a new password.")), Length(max=PASSWORD_INPUT_MAX_CHARS)],
        render_kw={"autocomplete": "new-password", "data-password-meter": ""},
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[InputRequired(_l("Type the new password again."))],
        render_kw={"autocomplete": "new-password"},
    )
