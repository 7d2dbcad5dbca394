"""The API as another district system sees it: tokens, scopes, requests, events, account status."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.api.models import ApiClient
from selfservice.audit.models import AuditEvent
from selfservice.audit.services import SYSTEM
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.extensions import db
from selfservice.helpdesk.models import HelpRequest
from selfservice.mail.models import AccountLanguage
from selfservice.security import get_security
from selfservice.security.lockout import Locked
from selfservice.timeutil import utcnow
from tests.api.helpers import PARENT, STUDENT, Api, issue
from tests.fixtures.disabling import disable_by_admin
from tests.scratch import free_port


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make_app(API_EVENTS_SETTLE_SECONDS=0)


@pytest.fixture
def api(app: Flask, client: FlaskClient) -> Api:
    return Api(client, issue(app))


def audit_rows(app: Flask, tag: Tag) -> list[AuditEvent]:
    with app.app_context():
        return list(
            db.session.scalars(select(AuditEvent).where(AuditEvent.tag == str(tag)).order_by(AuditEvent.id))
        )


def test_a_student_request_opened_by_the_sis_lands_in_the_its_queue(app: Flask, api: Api) -> None:
    response = api.post("/requests", {**STUDENT, "note": "Locked out after break"})
    assert response.status_code == 201, response.json
    opened = response.json
    assert opened["queue"] == "its-student"
    assert opened["status"] == "open"
    assert opened["opened_by"] == "api:sis"
    assert api.get(f"/requests/{opened['number']}").json["student"]["name"] == "Ana Lopez"


def test_the_same_checks_as_the_form_refuse_a_wrong_birth_month(app: Flask, api: Api) -> None:
    response = api.post("/requests", {**STUDENT, "birth_month_year": "042012"})
    assert response.status_code == 400
    assert "do not match our records" in response.json["error"]["message"]
    assert "birth_month_year" in response.json["error"]["fields"]
    with app.app_context():
        assert db.session.scalar(select(HelpRequest)) is None
    assert audit_rows(app, Tag.HELP_REQUEST_REFUSED)[0].actor == "api:sis"


BURST = 16


def test_a_burst_of_parallel_mismatches_gets_no_more_checks_than_the_limit(make_app: Any) -> None:
    """Invariant 3, as for the help desk's form: the mismatch is claimed before the directory is asked."""
    app = make_app(HELPDESK_MISMATCH_RATE_LIMIT="5 per hour")
    api = Api(app.test_client(), issue(app))
    barrier = threading.Barrier(BURST)
    answers: list[Any] = []

    def send() -> None:
        barrier.wait()
        answers.append(api.post("/requests", {**STUDENT, "birth_month_year": "042012"}))

    threads = [threading.Thread(target=send) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [400] * 5 + [429] * (BURST - 5)
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)
    assert len(audit_rows(app, Tag.HELP_REQUEST_REFUSED)) == 5  # checked against the directory: 5


def test_only_details_that_do_not_match_count_against_the_client(make_app: Any) -> None:
    app = make_app(HELPDESK_MISMATCH_RATE_LIMIT="2 per hour")
    api = Api(app.test_client(), issue(app))
    assert [api.post("/requests", STUDENT).status_code for _ in range(3)] == [201] * 3
    wrong = {**STUDENT, "birth_month_year": "042012"}
    assert [api.post("/requests", wrong).status_code for _ in range(3)] == [400, 400, 429]
    assert api.post("/requests", STUDENT).json["error"]["code"] == "rate_limited"


def test_a_parent_without_email_is_refused_with_what_to_do(api: Api) -> None:
    response = api.post(
        "/requests", {**PARENT, "pin": "7390", "account_number": "A-2000002", "parent_name": "David Carter"}
    )
    assert response.status_code == 400
    assert "no email address on file" in response.json["error"]["message"]


def test_a_malformed_body_gets_field_messages_not_a_500(api: Api) -> None:
    response = api.post("/requests", {"kind": "student", "student_id": 7, "birth_month_year": "13/2012"})
    assert response.status_code == 400
    fields = response.json["error"]["fields"]
    assert set(fields) >= {"student_id", "student_name", "birth_month_year"}
    assert api.post("/requests", ["not", "an", "object"]).status_code == 400
    assert api.post("/requests", {**STUDENT, "student_name": "Ana\x00Lopez"}).status_code == 400


def test_an_idempotency_key_opens_one_request_for_two_sends(app: Flask, api: Api) -> None:
    first = api.post("/requests", STUDENT, headers={"Idempotency-Key": "sis-42"})
    second = api.post("/requests", STUDENT, headers={"Idempotency-Key": "sis-42"})
    assert first.json["number"] == second.json["number"]
    with app.app_context():
        assert len(db.session.scalars(select(HelpRequest)).all()) == 1


def test_notes_and_close_from_the_external_desk_show_in_the_events_feed(api: Api) -> None:
    number = api.post("/requests", STUDENT).json["number"]
    assert api.post(f"/requests/{number}/notes", {"text": "Called the family"}).status_code == 200
    closed = api.post(f"/requests/{number}/close", {"text": "Done at the desk"})
    assert closed.status_code == 200
    assert closed.json["status"] == "closed"
    again = api.post(f"/requests/{number}/close", {"text": "twice"})
    assert again.status_code == 409
    feed = api.get("/events?after=0").json
    assert [event["action"] for event in feed["events"]] == ["opened", "note", "resolved", "closed"]
    assert api.get(f"/events?after={feed['next']}").json == {"events": [], "next": feed["next"]}
    second_page = api.get(f"/events?after={feed['events'][1]['id']}&limit=1").json
    assert [event["action"] for event in second_page["events"]] == ["resolved"]


def test_account_status_says_enrolled_and_locked_but_never_a_secret(app: Flask, api: Api) -> None:
    unlocked = api.get("/accounts/p2000001/status")
    assert unlocked.status_code == 200
    assert unlocked.json == {
        "login": "p2000001",
        "kind": "parent",
        "enrolled": False,
        "enrolled_at": None,
        "locked_until": None,
        "last_password_change": None,
        "must_change_password": False,
        "disabled": False,
        "disabled_by_admin": False,
    }
    with app.app_context():
        account = get_directory().find("p2000001")
        lockout = get_security().lockout
        for _ in range(app.config["LOCKOUT_MAX_FAILURES"]):
            lockout.claim_attempt(account.key, account.login, SYSTEM)
        with pytest.raises(Locked):
            lockout.claim_attempt(account.key, account.login, SYSTEM)
    locked = api.get("/accounts/p2000001/status")
    assert locked.json["locked_until"] is not None
    assert "4821" not in locked.get_data(as_text=True)
    assert api.get("/accounts/nobody-here/status").status_code == 404


def test_no_token_a_wrong_token_and_a_revoked_token_get_401(app: Flask, client: FlaskClient) -> None:
    token = issue(app)
    assert client.get("/api/v1/events").status_code == 401
    assert Api(client, token + "x").get("/events").status_code == 401
    assert Api(client, token).get("/events").status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-client", "revoke", "sis"])
    assert "revoked" in result.output
    refused = Api(client, token).get("/events")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json["error"]["code"] == "unauthorized"


def test_an_expired_token_gets_401(app: Flask, client: FlaskClient) -> None:
    token = issue(app, expires_in_days=1)
    with app.app_context():
        row = db.session.scalar(select(ApiClient))
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert Api(client, token).get("/events").status_code == 401


@pytest.mark.parametrize(
    ("scope", "allowed", "refused"),
    [
        ("requests:read", ("GET", "/events"), ("GET", "/accounts/s1000001/status")),
        ("accounts:read", ("GET", "/accounts/s1000001/status"), ("POST", "/requests")),
        ("requests:create", ("POST", "/requests"), ("GET", "/events")),
    ],
)
def test_a_token_does_only_what_its_scopes_allow(
    app: Flask, client: FlaskClient, scope: str, allowed: tuple[str, str], refused: tuple[str, str]
) -> None:
    api = Api(client, issue(app, scopes=[scope]))

    def call(method: str, path: str) -> int:
        return (api.post(path, STUDENT) if method == "POST" else api.get(path)).status_code

    assert call(*allowed) in (200, 201)
    assert call(*refused) == 403


def test_a_token_past_its_rate_limit_gets_429_with_retry_after(app: Flask, client: FlaskClient) -> None:
    api = Api(client, issue(app, rate_limit="2 per minute"))
    assert [api.get("/events").status_code for _ in range(3)] == [200, 200, 429]
    refused = api.get("/events")
    assert int(refused.headers["Retry-After"]) >= 1
    other = Api(client, issue(app, name="desk"))
    assert other.get("/events").status_code == 200  # one client's flood does not spend another's budget


def test_every_call_is_audited_with_the_clients_name_and_last_use_shown(
    app: Flask, client: FlaskClient
) -> None:
    api = Api(client, issue(app))
    api.get("/events")
    api.get("/requests/REQ-999999")
    calls = audit_rows(app, Tag.API_CALL)
    refused = audit_rows(app, Tag.API_REFUSED)
    assert [(row.actor, row.details["status"]) for row in calls] == [("api:sis", 200)]
    assert [(row.actor, row.details["status"]) for row in refused] == [("api:sis", 404)]
    with app.app_context():
        assert db.session.scalar(select(ApiClient)).last_used_at is not None


def test_errors_under_the_api_are_json_even_for_unknown_paths(api: Api, client: FlaskClient) -> None:
    for response in (
        api.get("/nowhere"),
        client.delete("/api/v1/requests", headers=api.headers),
        api.get("/requests/not-a-number"),
        api.get("/events?after=-1"),
        api.get("/events?limit=abc"),
    ):
        assert response.status_code in (400, 404, 405)
        assert response.is_json
        assert response.json["error"]["message"]


def test_the_openapi_document_is_served_without_a_token(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) >= {"/api/v1/requests", "/api/v1/events", "/api/v1/accounts/{login}/status"}


def test_the_token_is_stored_only_as_a_hash(app: Flask) -> None:
    token = issue(app)
    with app.app_context():
        row = db.session.scalar(select(ApiClient))
        assert token not in (row.token_hash, row.token_hint)
        assert len(row.token_hash) == 64


def test_fresh_events_wait_until_they_have_settled(make_app: Any) -> None:
    app = make_app(API_EVENTS_SETTLE_SECONDS=1)
    api = Api(app.test_client(), issue(app))
    api.post("/requests", STUDENT)
    assert api.get("/events").json == {"events": [], "next": 0}
    time.sleep(1.1)
    assert [event["action"] for event in api.get("/events").json["events"]] == ["opened"]


def test_staff_accounts_have_no_status_here(api: Api) -> None:
    assert api.get("/accounts/admin1/status").status_code == 404
    assert api.get("/accounts/s1000001/status").status_code == 200


def test_a_flood_of_bad_tokens_is_cut_off_before_the_database(make_app: Any) -> None:
    app = make_app(API_AUTH_FAILURE_RATE_LIMIT="3 per minute")
    client = app.test_client()
    statuses = [Api(client, "ssapi_wrong").get("/events").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    good = Api(client, issue(app))
    assert good.get("/events").status_code == 429  # the address is cut off, whatever it sends now


def test_with_the_limiter_storage_down_calls_are_still_limited_and_answered(make_app: Any) -> None:
    app = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}")
    response = Api(app.test_client(), issue(app)).get("/events")
    # The limiter counts in memory while its storage is away (docs/deployment.md): no 500, no outage.
    assert response.status_code == 200
    assert app.test_client().get("/healthz").get_json()["checks"]["limiter"] == "degraded"


def test_account_status_tells_an_administrators_disable_from_a_lockout(
    app: Flask, api: Api, request: pytest.FixtureRequest
) -> None:
    disable_by_admin(request, app, "p2000001")
    status = api.get("/accounts/p2000001/status").json
    assert (status["disabled"], status["disabled_by_admin"]) == (True, True)


def _remembered_language(app: Flask, login: str) -> str | None:
    with app.app_context():
        account = get_directory().find(login)
        assert account is not None
        return db.session.scalar(
            select(AccountLanguage.language).where(AccountLanguage.account_key == account.key)
        )


def test_a_parent_request_through_the_api_keeps_the_language_the_parent_reads(app: Flask, api: Api) -> None:
    response = api.post("/requests", {**PARENT, "language": "ht"})
    assert response.status_code == 201, response.json
    assert _remembered_language(app, "p2000001") == "ht"


def test_the_language_on_an_api_request_never_replaces_one_already_stored(app: Flask, api: Api) -> None:
    assert api.post("/requests", {**PARENT, "language": "es"}).status_code == 201
    assert api.post("/requests", {**PARENT, "language": "fr"}).status_code == 201
    assert _remembered_language(app, "p2000001") == "es"


@pytest.mark.parametrize("language", ["de", "", "EN-us", 7])
def test_a_language_the_portal_does_not_offer_gets_the_apis_field_error(
    app: Flask, api: Api, language: object
) -> None:
    response = api.post("/requests", {**PARENT, "language": language})
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid"
    assert "language" in response.json["error"]["fields"]
    assert _remembered_language(app, "p2000001") is None
    with app.app_context():
        assert db.session.scalar(select(HelpRequest.id)) is None
