"""Admin forms: log filters (GET, no CSRF: they change nothing) and the question bank."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, tzinfo
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from selfservice.admin.audit_log import AuditQuery
from selfservice.admin.timerange import parse_moment
from selfservice.audit.tags import Tag
from selfservice.i18n import _, _l

MOMENT_HINT = _l("A date (2026-03-01), a date and time (2026-03-01 08:30) or a span back from now (7d, 48h).")


class FilterForm(FlaskForm):
    """Read from the query string; never carries a CSRF token because it only reads."""

    class Meta:
        csrf = False

    since = StringField(_l("From"), validators=[Optional(), Length(max=40)], description=MOMENT_HINT)
    until = StringField(_l("To"), validators=[Optional(), Length(max=40)])

    def __init__(self, *args: Any, zone: tzinfo, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone
        self.now = now

    def validate_since(self, field: Field) -> None:
        self._moment(field, end_of_day=False)

    def validate_until(self, field: Field) -> None:
        end = self._moment(field, end_of_day=True)
        start = self._moment(self.since, end_of_day=False) if self.since.data else None
        if end is not None and start is not None and start >= end:
            raise ValidationError(_("The end of the time range must come after its start."))

    def moment(self, field: Field, *, end_of_day: bool) -> datetime | None:
        """The field as an aware UTC datetime, once the form has validated."""
        return self._moment(field, end_of_day=end_of_day) if field.data else None

    def _moment(self, field: Field, *, end_of_day: bool) -> datetime | None:
        if not (field.data or "").strip():
            return None
        try:
            return parse_moment(field.data, self.zone, now=self.now, end_of_day=end_of_day)
        except (ValueError, OverflowError) as exc:
            raise ValidationError(
                _("Enter a date like 2026-03-01, a date and time like 2026-03-01 08:30, or 7d.")
            ) from exc


def _tag_choices() -> list[tuple[str, str]]:
    return [("", _l("Any event")), *((tag.value, tag.value) for tag in Tag)]


def _valid_ip(form: FlaskForm, field: Field) -> None:
    if field.data:
        try:
            ipaddress.ip_address(field.data.strip())
        except ValueError as exc:
            raise ValidationError(_("Enter an IP address like 192.0.2.10 or 2001:db8::1.")) from exc


class AuditFilterForm(FilterForm):
    tag = SelectField(_l("Event"), choices=_tag_choices, validate_choice=False, default="")
    subject = StringField(_l("Account (login)"), validators=[Optional(), Length(max=128)])
    actor = StringField(_l("Done by"), validators=[Optional(), Length(max=128)])
    ip = StringField(_l("IP address"), validators=[Optional(), Length(max=45), _valid_ip])
    outcome = StringField(
        _l("Outcome"),
        validators=[
            Optional(),
            Regexp(r"^[a-z-]{1,16}$", message=_l("An outcome is one lower-case word, like success.")),
        ],
    )

    def validate_tag(self, field: Field) -> None:
        if field.data and field.data not in {tag.value for tag in Tag}:
            raise ValidationError(_("Choose an event from the list."))

    def to_query(self) -> AuditQuery:
        def text(field: Field) -> str | None:
            return (field.data or "").strip() or None

        return AuditQuery(
            tags=(self.tag.data,) if self.tag.data else (),
            subject=text(self.subject),
            actor=text(self.actor),
            ip=text(self.ip),
            outcome=text(self.outcome),
            since=self.moment(self.since, end_of_day=False),
            until=self.moment(self.until, end_of_day=True),
        )


class LockoutFilterForm(FilterForm):
    login = StringField(_l("Account (login)"), validators=[Optional(), Length(max=128)])


class RateLimitFilterForm(FilterForm):
    """The breaches page: a range it can chart (a bar per hour or day), empty ends defaulted."""

    #: Without a start, the page shows this long before the end.
    DEFAULT_SPAN = timedelta(days=7)
    #: A bar per day: a year of them is still a chart; since year 1 it was a minute of work.
    LONGEST_SPAN = timedelta(days=366)

    ip = StringField(_l("IP address"), validators=[Optional(), Length(max=45), _valid_ip])

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        try:
            since, until = self.time_range()
        except OverflowError:  # the default start, a week before a date in year 1
            self.until.errors.append(
                _("Enter a date like 2026-03-01, a date and time like 2026-03-01 08:30, or 7d.")
            )
            return False
        if since >= until:
            self.since.errors.append(_("The end of the time range must come after its start."))
        elif until - since > self.LONGEST_SPAN:
            self.since.errors.append(
                _("Choose a time range of at most %(days)d days.", days=self.LONGEST_SPAN.days)
            )
        return not self.since.errors

    def time_range(self) -> tuple[datetime, datetime]:
        """[since, until) as aware UTC datetimes: until defaults to now, since to a week before."""
        until = self.moment(self.until, end_of_day=True) or self.now
        return self.moment(self.since, end_of_day=False) or until - self.DEFAULT_SPAN, until


class ConfirmForm(FlaskForm):
    """A POST that needs a deliberate tick first (unlock, retire)."""

    confirm = BooleanField(_l("Yes, I have checked and want to do this"), validators=[DataRequired()])

    def __init__(self, *args: Any, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirm.validators = [DataRequired(message or _("Tick the box to confirm."))]


class ActionForm(FlaskForm):
    """A bare POST button: just the CSRF token."""


def _squeeze(text: str | None) -> str | None:
    """Inner runs of whitespace to one space, none at the ends."""
    return " ".join(text.split()) if text else text


class QuestionForm(FlaskForm):
    text = TextAreaField(
        _l("Question (English)"),
        validators=[DataRequired(_l("Enter the question.")), Length(min=10, max=300)],
        filters=[_squeeze],
    )
    text_es = TextAreaField(
        _l("Spanish translation"), validators=[Optional(), Length(max=300)], filters=[_squeeze]
    )
    text_ht = TextAreaField(
        _l("Haitian Creole translation"), validators=[Optional(), Length(max=300)], filters=[_squeeze]
    )
    text_fr = TextAreaField(
        _l("French translation"), validators=[Optional(), Length(max=300)], filters=[_squeeze]
    )

    def translations(self) -> dict[str, str]:
        found = {"es": self.text_es.data, "ht": self.text_ht.data, "fr": self.text_fr.data}
        return {code: text for code, text in found.items() if text}

    def cleaned_text(self) -> str:
        return self.text.data or ""

    @classmethod
    def for_question(cls, question: Any, **kwargs: Any) -> QuestionForm:
        translations = question.translations or {}
        data = {f"text_{code}": translations.get(code) for code in ("es", "ht", "fr")}
        data["text"] = question.text
        return cls(data=data, **kwargs)
