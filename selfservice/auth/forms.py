from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from selfservice.i18n import _l


class SignInForm(FlaskForm):
    login = StringField(
        _l("Student ID, username or email"),
        validators=[InputRequired(_l("Enter your student ID, username or email.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Enter your password.")), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()
