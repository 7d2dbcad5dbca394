"""Forms of the help desk. They check shape (MMYYYY, phone numbers); the services check the directory."""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, Regexp, ValidationError

from selfservice.helpdesk.models import ContactMethod, ContactOutcome
from selfservice.i18n import LANGUAGE_NAMES, _l
from selfservice.timeutil import utcnow
from selfservice.web import parse_id

NOTE_MAX_CHARS = 2000
#: How far back a birth year may plausibly be (students and the odd adult learner).
OLDEST_BIRTH_YEARS = 100
_MONTH_YEAR_SEPARATORS = re.compile(r"[\s/.\-]")
_PHONE = re.compile(r"\+?[0-9().\-\s/]+")
_EXTENSION = re.compile(r"(?:x|ext\.?|extension)\s*\d{1,6}$", re.IGNORECASE)
#: What the new-request pages put in ``form_key`` (``secrets.token_urlsafe``): never an API
#: client's key (``api:<client>:<Idempotency-Key>``), never longer than its column.
_FORM_KEY = re.compile(r"[A-Za-z0-9_\-]{0,43}")


def month_year(form: Any, field: Any) -> None:
    """MMYYYY: six digits (separators such as 03/2012 tolerated), month 01-12, a plausible year."""
    raw = _MONTH_YEAR_SEPARATORS.sub("", field.data or "")
    if not re.fullmatch(r"[0-9]{6}", raw):
        raise ValidationError(
            _l("Enter the birth month and year as six digits, MMYYYY (for example 032012).")
        )
    month, year = int(raw[:2]), int(raw[2:])
    if not 1 <= month <= 12:
        raise ValidationError(_l("The month (the first two digits) must be 01 to 12."))
    latest = utcnow().year
    if not latest - OLDEST_BIRTH_YEARS <= year <= latest:
        raise ValidationError(
            _l(
                "The year must be between %(first)s and %(last)s.",
                first=latest - OLDEST_BIRTH_YEARS,
                last=latest,
            )
        )
    field.data = raw


def phone_number(form: Any, field: Any) -> None:
    """Any usual way of writing a phone number: 555-0101, (305) 555 0101, +1 305.555.0101 x12."""
    value = (field.data or "").strip()
    number = _EXTENSION.sub("", value).strip()
    if not _PHONE.fullmatch(number) or not 7 <= len(re.sub(r"\D", "", number)) <= 15:
        raise ValidationError(_l("Enter a phone number, for example 305-555-0101."))
    field.data = value


def issued_form_key(form: Any, field: Any) -> None:
    """The double-submit key the page gave; anything else (a tampered form) gets a fresh key and a 400."""
    if not _FORM_KEY.fullmatch(field.data or ""):
        field.data = secrets.token_urlsafe(16)
        raise ValidationError(_l("The form expired. Try again."))


def _required(message: str) -> InputRequired:
    return InputRequired(message)


class StudentRequestForm(FlaskForm):
    student_id = StringField(
        _l("Student ID number"),
        validators=[
            _required(_l("Enter the student ID number.")),
            Length(max=40),
            Regexp(r"^\s*[A-Za-z0-9\-]+\s*$", message=_l("A student ID has only letters and digits.")),
        ],
        render_kw={"autocomplete": "off", "inputmode": "numeric", "spellcheck": "false"},
    )
    student_name = StringField(
        _l("Student name"),
        validators=[_required(_l("Enter the student's name.")), Length(max=200)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    birth_month_year = StringField(
        _l("Birth month and year (MMYYYY)"),
        validators=[_required(_l("Enter the birth month and year.")), Length(max=20), month_year],
        render_kw={"autocomplete": "off", "inputmode": "numeric"},
    )
    note = TextAreaField(_l("Note for ITS (optional)"), validators=[Optional(), Length(max=NOTE_MAX_CHARS)])
    form_key = HiddenField(validators=[issued_form_key])


class ParentRequestForm(FlaskForm):
    contact_name = StringField(
        _l("Contact name"),
        validators=[_required(_l("Enter the name of the person to contact.")), Length(max=200)],
        render_kw={"autocomplete": "off"},
    )
    contact_phone = StringField(
        _l("Contact phone number"),
        validators=[_required(_l("Enter the contact phone number.")), Length(max=40), phone_number],
        render_kw={"autocomplete": "off", "inputmode": "tel"},
    )
    # A password field: the PIN is not shown on screen and never sent back in a page.
    pin = PasswordField(
        _l("Parent PIN"),
        validators=[_required(_l("Enter the parent PIN.")), Length(max=40)],
        render_kw={"autocomplete": "off", "inputmode": "numeric"},
    )
    account_number = StringField(
        _l("Parent account number"),
        validators=[_required(_l("Enter the parent account number.")), Length(max=40)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    parent_name = StringField(
        _l("Parent name"),
        validators=[_required(_l("Enter the parent's name.")), Length(max=200)],
        render_kw={"autocomplete": "off"},
    )
    parent_phone = StringField(
        _l("Parent contact phone number"),
        validators=[_required(_l("Enter the parent's contact phone number.")), Length(max=40), phone_number],
        render_kw={"autocomplete": "off", "inputmode": "tel"},
    )
    parent_language = SelectField(_l("Language the parent reads"), default="")
    note = TextAreaField(
        _l("Note for Parent Support (optional)"), validators=[Optional(), Length(max=NOTE_MAX_CHARS)]
    )
    form_key = HiddenField(validators=[issued_form_key])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        languages = current_app.config["LANGUAGES"]
        self.parent_language.choices = [
            ("", _l("Not said (the district's language)"), {}),
            # Each name in its own language, said so for screen readers.
            *((code, name, {"lang": code}) for code, name in LANGUAGE_NAMES.items() if code in languages),
        ]


class ActionForm(FlaskForm):
    """A button on a request: carries the revision the page was drawn from."""

    revision = HiddenField(validators=[InputRequired(), Regexp(r"^[0-9]{1,9}$")])

    @property
    def revision_value(self) -> int:
        return parse_id(self.revision.data) or 0


class AssignForm(ActionForm):
    assign_login = StringField(
        _l("Username of the colleague"),
        validators=[_required(_l("Enter a username.")), Length(max=128)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class NoteForm(ActionForm):
    note_text = TextAreaField(
        _l("Note"), validators=[_required(_l("Write the note.")), Length(max=NOTE_MAX_CHARS)]
    )


class ContactForm(ActionForm):
    contact_method = SelectField(
        _l("How"),
        choices=[
            SelectChoice(ContactMethod.PHONE.value, _l("Phone call")),
            SelectChoice(ContactMethod.EMAIL.value, _l("Email")),
            SelectChoice(ContactMethod.VOICEMAIL.value, _l("Voicemail")),
        ],
        validators=[_required(_l("Choose how you contacted the parent."))],
    )
    contact_outcome = SelectField(
        _l("Outcome"),
        choices=[
            SelectChoice(ContactOutcome.REACHED.value, _l("Reached the parent")),
            SelectChoice(ContactOutcome.NO_ANSWER.value, _l("No answer or no reply")),
            SelectChoice(ContactOutcome.LEFT_MESSAGE.value, _l("Left a message")),
            SelectChoice(ContactOutcome.WRONG_CONTACT.value, _l("Wrong number or address")),
        ],
        validators=[_required(_l("Choose the outcome."))],
    )
    contact_note = TextAreaField(_l("What happened"), validators=[Optional(), Length(max=NOTE_MAX_CHARS)])


class EscalateForm(ActionForm):
    escalate_reason = TextAreaField(
        _l("Why ITS is needed"),
        validators=[_required(_l("Say why the request goes to ITS.")), Length(max=NOTE_MAX_CHARS)],
    )


class ResolveForm(ActionForm):
    resolve_note = TextAreaField(
        _l("How it was resolved"),
        validators=[_required(_l("Say how the request was resolved.")), Length(max=NOTE_MAX_CHARS)],
    )


class CloseForm(ActionForm):
    close_note = TextAreaField(
        _l("Closing note (optional)"), validators=[Optional(), Length(max=NOTE_MAX_CHARS)]
    )


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField(
        _l("New password"),
        validators=[_required(_l("Choose a new password.")), Length(max=256)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[_required(_l("Type the new password again.")), Length(max=256)],
        render_kw={"autocomplete": "new-password"},
    )
