"""Forms of the activation pages: they parse; the service decides."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from selfservice.i18n import _l


class ActivationForm(FlaskForm):
    account_number = StringField(
        _l("Parent account number"),
        validators=[InputRequired(_l("Enter the account number from your letter.")), Length(max=40)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )
    # A password field: the PIN is not shown on screen and never sent back in a page.
    pin = PasswordField(
        _l("PIN"),
        validators=[InputRequired(_l("Enter the PIN from your letter.")), Length(max=40)],
        render_kw={"autocomplete": "off", "inputmode": "numeric"},
    )
    parent_name = StringField(
        _l("Your name, as the school has it"),
        validators=[InputRequired(_l("Enter your name.")), Length(max=200)],
        render_kw={"autocomplete": "name"},
    )
