"""Staff second factor (issue 14 item 11): TOTP (RFC 6238) with recovery codes.

Admin and ITS sign in with a password alone before this; now they need a code, set
up at the first sign-in, and another admin can reset it (audited).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from selfservice.audit.services import SYSTEM
from selfservice.audit.tags import Tag
from selfservice.auth import second_factor
from selfservice.auth.services import end_every_session
from selfservice.extensions import db
from selfservice.portal.passwords import How, NewPassword, apply_new_password
from selfservice.security import get_security
from selfservice.timeutil import utcnow
from tests.conftest import AppFactory, AuthActions, csrf_token, post_form
from tests.helpdesk.helpers import add_person, audit_events, outbox

SECRET = re.compile(r'<code class="secret-key">([A-Z2-7 ]+)</code>')
CODE = re.compile(r"<li><code>([a-z2-7]{5}(?:-[a-z2-7]{5}){3})</code></li>")
DEFAULTS = {"admin": "required", "its": "required", "support": "off", "employee": "off"}


class Clock:
    """The second factor's clock, moved by hand: one TOTP step is 30 seconds."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def step(self) -> None:
        self.now += timedelta(seconds=30)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(second_factor, "utcnow", clock)
    return clock


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(STAFF_SECOND_FACTOR=DEFAULTS)


def sign_in(app: Flask, login: str, password: str | None = None) -> tuple[FlaskClient, Any]:
    client = app.test_client()
    return client, AuthActions(client).login(login, password)


def enroll(
    app: Flask, clock: Clock, login: str = "admin1", password: str | None = None
) -> tuple[str, list[str]]:
    """Sign in and set the second factor up as a person would; the secret and recovery codes."""
    client, response = sign_in(app, login, password)
    assert response.headers["Location"] == "/login/second-factor/setup"
    page = client.get("/login/second-factor/setup").get_data(as_text=True)
    secret = SECRET.search(page).group(1).replace(" ", "")
    code = pyotp.TOTP(secret).at(clock.now)
    done = post_form(client, "/login/second-factor/setup", {"code": code})
    assert done.status_code == 200
    codes = CODE.findall(done.get_data(as_text=True))
    assert len(codes) == 10
    assert "Signed in as" in client.get("/").get_data(as_text=True)
    return secret, codes


def enter(client: FlaskClient, code: str) -> Any:
    return post_form(client, "/login/second-factor", {"code": code})


def test_an_admin_sets_up_the_second_factor_at_the_first_sign_in(app: Flask, clock: Clock) -> None:
    client, response = sign_in(app, "admin1")
    assert response.headers["Location"] == "/login/second-factor/setup"
    assert client.get("/admin/").status_code == 302  # the password alone is not a sign-in
    enroll(app, clock)
    [event] = audit_events(app, Tag.SECOND_FACTOR_ENROLLED)
    assert event.actor == "admin1"
    [notice] = outbox(app, "notice:second_factor_on")
    assert notice.to_address == "admin1@school.test"


def test_a_wrong_setup_code_turns_nothing_on(app: Flask, clock: Clock) -> None:
    client, _response = sign_in(app, "its1")
    client.get("/login/second-factor/setup")
    refused = post_form(client, "/login/second-factor/setup", {"code": "000000"})
    assert refused.status_code == 400
    assert "That code is not right" in refused.get_data(as_text=True)
    assert client.get("/helpdesk/").status_code == 302
    with app.app_context():
        assert not second_factor.enrolled(app.extensions["selfservice.directory"].find("its1").key)
    assert audit_events(app, Tag.SECOND_FACTOR_ENROLLED) == []


def test_the_next_sign_in_asks_for_a_code_and_each_code_counts_once(app: Flask, clock: Clock) -> None:
    secret, _codes = enroll(app, clock)
    clock.step()
    client, response = sign_in(app, "admin1")
    assert response.headers["Location"] == "/login/second-factor"
    assert client.get("/admin/audit").status_code == 302
    code = pyotp.TOTP(secret).at(clock.now)
    assert enter(client, code).status_code == 303
    assert client.get("/admin/audit").status_code == 200
    # The same code again (someone watching over a shoulder) is refused.
    thief, _response = sign_in(app, "admin1")
    assert enter(thief, code).status_code == 400
    assert thief.get("/admin/audit").status_code == 302


def test_a_recovery_code_signs_in_once(app: Flask, clock: Clock) -> None:
    _secret, codes = enroll(app, clock)
    client, _response = sign_in(app, "admin1")
    assert enter(client, codes[0].upper()).status_code == 303
    again, _response = sign_in(app, "admin1")
    assert enter(again, codes[0]).status_code == 400
    assert enter(again, codes[1].replace("-", "").upper()).status_code == 303  # typed without dashes
    assert len(audit_events(app, Tag.SECOND_FACTOR_RECOVERY_CODE_USED)) == 2


def test_recovery_codes_are_long_random_and_kept_only_salted_and_hashed(app: Flask, clock: Clock) -> None:
    import hashlib

    from selfservice.auth.models import SecondFactor
    from selfservice.extensions import db

    _secret, codes = enroll(app, clock)
    assert len(set(codes)) == 10
    assert all(len(code.replace("-", "")) == 20 for code in codes)  # 100 bits of base32
    with app.app_context():
        [row] = db.session.query(SecondFactor).all()
        stored = row.recovery_codes
    for code in codes:
        assert code not in stored
        assert hashlib.sha256(code.encode()).hexdigest() not in stored


def test_five_wrong_codes_send_the_person_back_to_the_password(app: Flask, clock: Clock) -> None:
    enroll(app, clock)
    client, _response = sign_in(app, "admin1")
    statuses = [enter(client, "123456").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 400]
    last = post_form(client, "/login/second-factor", {"code": "123456"})
    assert last.headers["Location"] == "/login"
    assert client.get("/login/second-factor").headers["Location"] == "/login"


def test_support_and_employees_sign_in_without_a_code_by_default(app: Flask) -> None:
    for login in ("support1", "teacher1", "s1000001"):
        _client, response = sign_in(app, login)
        assert "second-factor" not in response.headers["Location"], login


def test_a_setting_requires_it_for_support(make_app: AppFactory) -> None:
    app = make_app(STAFF_SECOND_FACTOR={**DEFAULTS, "support": "required"})
    _client, response = sign_in(app, "support1")
    assert response.headers["Location"] == "/login/second-factor/setup"


def test_another_admin_resets_a_lost_second_factor(app: Flask, clock: Clock) -> None:
    enroll(app, clock, "its1")
    its_browser, _response = sign_in(app, "its1")  # half-way: password given
    add_person(app, "admin2", groups=["admins"], email="admin2@school.test")
    enroll(app, clock, "admin2", "Long-Enough-admin2-9")
    clock.step()
    admin2 = app.test_client()
    AuthActions(admin2).login("admin2", "Long-Enough-admin2-9")
    with app.app_context():
        admin_secret = _secret_of(app, "admin2")
    enter(admin2, pyotp.TOTP(admin_secret).at(clock.now))
    page = admin2.get("/admin/accounts/?login=its1").get_data(as_text=True)
    assert "On, 10 recovery codes left" in page
    key = re.search(r'/admin/accounts/([^/"]+)/reset-second-factor', page).group(1)
    token = csrf_token(admin2, "/admin/accounts/?login=its1")
    reset = admin2.post(f"/admin/accounts/{key}/reset-second-factor", data={"csrf_token": token})
    assert reset.status_code == 303
    [event] = audit_events(app, Tag.SECOND_FACTOR_RESET)
    assert (event.actor, event.subject) == ("admin2", "its1")
    [notice] = outbox(app, "notice:second_factor_reset")
    assert notice.to_address == "its1@school.test"
    _client, response = sign_in(app, "its1")
    assert response.headers["Location"] == "/login/second-factor/setup"
    del its_browser


@pytest.mark.parametrize("change", ["password-reset", "second-factor-reset", "sessions-ended"])
def test_a_sign_in_waiting_for_its_code_ends_with_the_accounts_sessions(
    app: Flask, clock: Clock, change: str
) -> None:
    """Invariant 17: a half-way session (password proved, code owed) is a session of the account too."""
    secret, _codes = enroll(app, clock)
    waiting, response = sign_in(app, "admin1")
    assert response.headers["Location"] == "/login/second-factor"
    with app.app_context():
        directory = app.extensions["selfservice.directory"]
        account = directory.find("admin1")
        if change == "password-reset":
            new = NewPassword("Orchard-Lantern-Pebble-51", "Orchard-Lantern-Pebble-51")
            apply_new_password(directory, get_security(), account, new, how=How.RECOVERY, origin=SYSTEM)
        elif change == "second-factor-reset":
            second_factor.reset(account.key, account.login, actor="admin2", origin=SYSTEM)
        else:
            end_every_session(account.key, account.login, actor="admin2", origin=SYSTEM)
            db.session.commit()
    clock.step()
    for path in ("/login/second-factor", "/login/second-factor/setup"):
        assert waiting.get(path).headers["Location"] == "/login"
    code = {"code": pyotp.TOTP(secret).at(clock.now)}
    entered = post_form(waiting, "/login/second-factor", code, form_path="/login")
    assert entered.headers["Location"] == "/login"
    assert waiting.get("/admin/audit").status_code == 302


def test_an_admin_cannot_reset_their_own_second_factor(app: Flask, clock: Clock) -> None:
    secret, _codes = enroll(app, clock)
    clock.step()
    client, _response = sign_in(app, "admin1")
    enter(client, pyotp.TOTP(secret).at(clock.now))
    page = client.get("/admin/accounts/?login=admin1").get_data(as_text=True)
    key = re.search(r'/admin/accounts/([^/"]+)/reset-second-factor', page).group(1)
    token = csrf_token(client, "/admin/accounts/?login=admin1")
    client.post(f"/admin/accounts/{key}/reset-second-factor", data={"csrf_token": token})
    assert audit_events(app, Tag.SECOND_FACTOR_RESET) == []


def _secret_of(app: Flask, login: str) -> str:
    from selfservice.auth.models import SecondFactor
    from selfservice.extensions import db

    account = app.extensions["selfservice.directory"].find(login)
    return db.session.get(SecondFactor, account.key).secret
