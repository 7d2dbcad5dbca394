"""/api/v1: JSON for the district's other systems. Bearer tokens only: no cookie, no CSRF token.

Every call is checked in this order: token (401), the token's own rate limit (429,
before any other work), the operation's scope (403); then the view runs, and one
audit event names the client, the operation and the answer's status.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, InternalServerError

from selfservice.api import clients, services
from selfservice.api.clients import Scope
from selfservice.api.errors import ApiError, json_error
from selfservice.api.openapi import document
from selfservice.audit.services import record
from selfservice.audit.tags import Tag
from selfservice.directory import get_directory
from selfservice.directory.interfaces import DirectoryUnavailable
from selfservice.extensions import csrf, db, limiter
from selfservice.helpdesk import requests as desk_requests
from selfservice.helpdesk.forms import ParentRequestForm, StudentRequestForm
from selfservice.i18n import _
from selfservice.limiter import RateLimited
from selfservice.security import get_security, throttling
from selfservice.timeutil import utcnow
from selfservice.web import current_origin

F = TypeVar("F", bound=Callable[..., Any])

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(blueprint)

PUBLIC = frozenset({"api.openapi"})
MISMATCH_SCOPE = "api-mismatch"
MISMATCH_LIMIT = "HELPDESK_MISMATCH_RATE_LIMIT"
STUDENT_FIELDS = ("student_id", "student_name", "birth_month_year", "note")
PARENT_FIELDS = (
    "contact_name",
    "contact_phone",
    "pin",
    "account_number",
    "parent_name",
    "parent_phone",
    "note",
)


def needs(scope: Scope) -> Callable[[F], F]:
    """Mark the scope a view needs; checked before the view runs."""

    def mark(view: F) -> F:
        view.api_scope = scope  # type: ignore[attr-defined]
        return view

    return mark


@blueprint.before_request
def authenticate() -> None:
    if request.endpoint in PUBLIC:
        return
    # The limiter never fails a call: with its storage (Redis) away it counts per process.
    failures = limiter.parse(current_app.config["API_AUTH_FAILURE_RATE_LIMIT"])
    key = ("api-auth-failure", request.remote_addr or "unknown")
    if limiter.exhausted(failures, *key) is not None:
        # A flood of bad tokens is refused before any database work (invariant 14).
        raise ApiError(
            429, "rate_limited", _("Too many calls without a valid token. Try again later."), retry_after=60
        )
    token = _bearer_token()
    client = clients.authenticate(token, utcnow()) if token else None
    if client is None:
        limiter.hit(failures, *key)
        raise ApiError(401, "unauthorized", _("Send a valid API token: Authorization: Bearer <token>."))
    _spend_rate_limit(client)  # a refusal here is counted by the limiter, not audited row by row
    g.api_client = client
    scope = getattr(current_app.view_functions.get(request.endpoint or ""), "api_scope", None)
    if scope is None or scope not in client.scopes:  # a view that names no scope is open to none
        raise ApiError(
            403, "forbidden", _("This API client may not do that (it needs %(scope)s).", scope=scope)
        )


@blueprint.after_request
def audit_call(response: Response) -> Response:
    client = g.get("api_client")
    if client is None:
        return response  # refused before any client was known: counted by the limiter, not logged
    db.session.rollback()  # nothing half-done from a failed call may ride on this commit
    client = db.session.merge(client)
    clients.mark_used(client, utcnow(), request.remote_addr)
    record(
        Tag.API_CALL if response.status_code < 400 else Tag.API_REFUSED,
        outcome="success" if response.status_code < 400 else "refused",
        origin=current_origin(),
        actor=f"api:{client.name}",
        details={
            "client": client.name,
            "operation": request.endpoint,
            "method": request.method,
            "path": request.path[:200],
            "status": response.status_code,
        },
    )
    return response


def _bearer_token() -> str | None:
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _spend_rate_limit(client: clients.ApiClient) -> None:
    wait = limiter.hit(limiter.parse(client.rate_limit), "api-client", str(client.id))
    if wait is not None:
        raise ApiError(
            429, "rate_limited", _("Too many calls for this API client. Try again later."), retry_after=wait
        )


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", _("Send a JSON object (Content-Type: application/json)."))
    if _has_nul(body):
        raise ApiError(400, "bad_request", _("What you sent contains a character that is not allowed."))
    return body


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _checked_form(
    form_class: type, body: dict[str, Any], names: tuple[str, ...], *, errors: dict[str, str] | None = None
) -> Any:
    """The help desk's own form, filled from JSON: the same shape checks and the same messages.

    ``errors`` are the API's own field checks, reported with the form's in one answer.
    """
    form = form_class(formdata=MultiDict(services.body_strings(body, names)), meta={"csrf": False})
    if not form.validate() or errors:
        fields = {name: str(messages[0]) for name, messages in form.errors.items()} | (errors or {})
        raise ApiError(400, "invalid", _("Some fields are missing or wrong."), fields=fields)
    return form


def _parent_language(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The optional language the parent reads ("" when not given) and its field error, if any."""
    offered = current_app.config["LANGUAGES"]
    language = body.get("language", "")
    if "language" in body and not (isinstance(language, str) and language in offered):
        message = _(
            "Use one of the languages the portal offers: %(languages)s.", languages=", ".join(offered)
        )
        return "", {"language": message}
    return language, {}


# --- the document -------------------------------------------------------------------------


@blueprint.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(document(request.root_url.rstrip("/") + "/"))


# --- help requests ------------------------------------------------------------------------


@blueprint.post("/requests")
@needs(Scope.REQUESTS_CREATE)
def open_request() -> ResponseReturnValue:
    body = _json_body()
    kind = body.get("kind")
    if kind not in ("student", "parent"):
        raise ApiError(
            400,
            "invalid",
            _("Some fields are missing or wrong."),
            fields={"kind": _("Use student or parent.")},
        )
    key = _idempotency_key()
    if kind == "student":
        form = _checked_form(StudentRequestForm, body, STUDENT_FIELDS)
        details: Any = desk_requests.StudentDetails(
            form.student_id.data, form.student_name.data, form.birth_month_year.data, form.note.data or ""
        )
        opener: Callable[..., Any] = desk_requests.open_student_request
    else:
        language, problems = _parent_language(body)
        form = _checked_form(ParentRequestForm, body, PARENT_FIELDS, errors=problems)
        details = desk_requests.ParentDetails(
            contact_name=form.contact_name.data,
            contact_phone=form.contact_phone.data,
            pin=form.pin.data,
            account_number=form.account_number.data,
            parent_name=form.parent_name.data,
            parent_phone=form.parent_phone.data,
            note=form.note.data or "",
            language=language,
        )
        opener = desk_requests.open_parent_request
    _claim_mismatch()
    mismatch = False
    try:
        opened = opener(
            get_directory(),
            services.staff_for(g.api_client),
            details,
            origin=current_origin(),
            settings=current_app.config,
            form_key=services.form_key(g.api_client, key),
        )
    except desk_requests.RequestRefused as refused:
        mismatch = refused.mismatch
        raise ApiError(
            400, "refused", _(refused.message), fields=dict.fromkeys(refused.failed, _(refused.message))
        ) from None
    finally:
        if not mismatch:  # only details that did not match the directory keep their claim
            throttling.give_back(current_app.config, MISMATCH_LIMIT, MISMATCH_SCOPE, str(g.api_client.id))
    return jsonify(services.describe_request(opened)), 201


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 40 and key.replace("-", "").replace("_", "").isalnum() and key.isascii()):
        raise ApiError(
            400, "bad_request", _("Idempotency-Key: use 1 to 40 letters, digits, dashes or underscores.")
        )
    return key


def _claim_mismatch() -> None:
    """Details that do not match count per client, as they do per employee: claimed before the
    directory is asked, so a burst of parallel calls gets at most the limit's number of checks."""
    client, endpoint = str(g.api_client.id), request.endpoint or "api"
    try:
        throttling.claim(current_app.config, MISMATCH_LIMIT, MISMATCH_SCOPE, client, endpoint)
    except RateLimited as limited:
        raise ApiError(
            429,
            "rate_limited",
            _("Too many requests whose details did not match. Try again later."),
            retry_after=limited.resets_in,
        ) from None


@blueprint.get("/requests/<number>")
@needs(Scope.REQUESTS_READ)
def read_request(number: str) -> ResponseReturnValue:
    return jsonify(services.describe_request(_request(number)))


@blueprint.post("/requests/<number>/notes")
@needs(Scope.REQUESTS_WORK)
def add_note(number: str) -> ResponseReturnValue:
    help_request = _request(number)
    services.add_note(help_request, g.api_client, _text(_json_body()), current_origin())
    return jsonify(services.describe_request(help_request))


@blueprint.post("/requests/<number>/close")
@needs(Scope.REQUESTS_WORK)
def close_request(number: str) -> ResponseReturnValue:
    help_request = _request(number)
    services.close(get_directory(), help_request, g.api_client, _text(_json_body()), current_origin())
    return jsonify(services.describe_request(help_request))


def _request(number: str) -> Any:
    try:
        return services.get_request(number)
    except services.NotFound:
        raise ApiError(404, "not_found", _("There is no help request with this number.")) from None


def _text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise ApiError(
            400,
            "invalid",
            _("Some fields are missing or wrong."),
            fields={"text": _("Write 1 to 2000 characters.")},
        )
    return text


@blueprint.get("/events")
@needs(Scope.REQUESTS_READ)
def events() -> ResponseReturnValue:
    after = _query_int("after", 0, minimum=0)
    limit = _query_int("limit", 100, minimum=1, maximum=services.EVENTS_PAGE_MAX)
    settled = utcnow() - timedelta(seconds=current_app.config["API_EVENTS_SETTLE_SECONDS"])
    found, cursor = services.events_after(after, limit, settled_before=settled)
    return jsonify({"events": found, "next": cursor})


def _query_int(name: str, default: int, *, minimum: int, maximum: int = 2**62) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not minimum <= int(raw) <= maximum:
        raise ApiError(
            400,
            "invalid",
            _("Some fields are missing or wrong."),
            fields={name: _("Use a whole number from %(low)d to %(high)d.", low=minimum, high=maximum)},
        )
    return int(raw)


# --- accounts -------------------------------------------------------------------------------


@blueprint.get("/accounts/<login>/status")
@needs(Scope.ACCOUNTS_READ)
def account_status(login: str) -> ResponseReturnValue:
    try:
        status = services.account_status(get_directory(), get_security(), login)
    except services.NotFound:
        raise ApiError(404, "not_found", _("There is no account with this login.")) from None
    return jsonify(status.as_json())


# --- errors: JSON, never a page ---------------------------------------------------------------


@blueprint.errorhandler(ApiError)
def api_error(error: ApiError) -> ResponseReturnValue:
    return error.response()


@blueprint.errorhandler(services.Conflict)
def conflict(_error: services.Conflict) -> ResponseReturnValue:
    return ApiError(
        409, "conflict", _("This request's state does not allow that (it may be closed already).")
    ).response()


@blueprint.errorhandler(DirectoryUnavailable)
def directory_unavailable(error: DirectoryUnavailable) -> ResponseReturnValue:
    current_app.logger.warning("directory unavailable: %s", error)
    db.session.rollback()
    return ApiError(
        503, "unavailable", _("The directory did not answer. Try again in a minute."), retry_after=60
    ).response()


@blueprint.errorhandler(HTTPException)
def http_error(error: HTTPException) -> ResponseReturnValue:
    return json_error(error)


@blueprint.errorhandler(InternalServerError)
def server_error(error: InternalServerError) -> ResponseReturnValue:
    original = getattr(error, "original_exception", None) or error
    current_app.logger.error("unhandled error on %s", request.path, exc_info=original)
    db.session.rollback()
    return ApiError(500, "server_error", _("Something went wrong on our side. Nothing was lost.")).response()
