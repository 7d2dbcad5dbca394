"""The admin console's form for a new API client."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Field, IntegerField, SelectMultipleField, StringField, widgets
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from selfservice.api.clients import BAD_RATE_LIMIT, NO_SCOPE, SCOPE_LABELS, valid_rate_limit
from selfservice.i18n import _, _l


class ScopeField(SelectMultipleField):
    """One checkbox per scope (works without JavaScript)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ApiClientForm(FlaskForm):
    name = StringField(
        _l("Name of the system"),
        validators=[InputRequired(_l("Name the system that will use this token.")), Length(max=80)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    scopes = ScopeField(_l("What it may do"), validate_choice=False)
    rate_limit = StringField(
        _l("Rate limit"),
        validators=[InputRequired(_l("Enter a rate limit.")), Length(max=100)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    expires_in_days = IntegerField(
        _l("Expires after (days)"),
        validators=[Optional(), NumberRange(min=1, max=3650, message=_l("Choose 1 to 3650 days."))],
        render_kw={"inputmode": "numeric"},
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.scopes.choices = [(scope.value, _(label)) for scope, label in SCOPE_LABELS.items()]

    # Every field's problem shows at once; the service checks again (the CLI has no form).
    def validate_scopes(self, field: Field) -> None:
        if not field.data:
            raise ValidationError(_(NO_SCOPE))

    def validate_rate_limit(self, field: Field) -> None:
        if field.data and not valid_rate_limit(field.data):
            raise ValidationError(_(BAD_RATE_LIMIT))


class RevokeForm(FlaskForm):
    """Only the CSRF token: the button is the confirmation."""
