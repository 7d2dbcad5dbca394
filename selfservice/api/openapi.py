"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json and tested with schemathesis."""

from __future__ import annotations

from typing import Any

from selfservice.api.services import EVENTS_PAGE_MAX
from selfservice.config import SHIPPED_LANGUAGES

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(max_length: int, *, min_length: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


ERROR = _object(
    {
        "error": _object(
            {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            ["code", "message"],
        )
    }
)

MOMENT = _nullable({"type": "string", "format": "date-time"})

REQUEST = _object(
    {
        "number": {"type": "string", "examples": ["REQ-000042"]},
        "kind": {"enum": ["student", "parent"]},
        "status": {"enum": ["open", "in-progress", "escalated", "resolved", "closed"]},
        "queue": {"enum": ["its-student", "parent-support", "its-parent"]},
        "assignee": _nullable({"type": "string"}),
        "revision": {"type": "integer"},
        "created_at": MOMENT,
        "updated_at": MOMENT,
        "resolved_at": MOMENT,
        "closed_at": MOMENT,
        "opened_by": {"type": "string"},
        "account": _object({"login": {"type": "string"}, "name": {"type": "string"}}),
        "note": _nullable({"type": "string"}),
        "student": {"type": "object"},
        "parent": {"type": "object"},
    },
    ["number", "kind", "status", "queue", "revision", "created_at", "account"],
)

EVENT = _object(
    {
        "id": {"type": "integer"},
        "request": {"type": "string"},
        "created_at": MOMENT,
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "text": _nullable({"type": "string"}),
        "contact_method": _nullable({"type": "string"}),
        "contact_outcome": _nullable({"type": "string"}),
        "details": {"type": "object"},
    }
)

NEW_STUDENT_REQUEST = _object(
    {
        "kind": {"const": "student"},
        "student_id": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,40}$"},
        "student_name": _text(200),
        "birth_month_year": {"type": "string", "pattern": "^(0[1-9]|1[0-2])[0-9]{4}$"},
        "note": _text(2000, min_length=0),
    },
    ["kind", "student_id", "student_name", "birth_month_year"],
)

NEW_PARENT_REQUEST = _object(
    {
        "kind": {"const": "parent"},
        "contact_name": _text(200),
        "contact_phone": {"type": "string", "pattern": "^[0-9]{3}-[0-9]{3}-[0-9]{4}$"},
        "pin": {**_text(40), "writeOnly": True},
        "account_number": _text(40),
        "parent_name": _text(200),
        "parent_phone": {"type": "string", "pattern": "^[0-9]{3}-[0-9]{3}-[0-9]{4}$"},
        "language": {
            "type": "string",
            "enum": list(SHIPPED_LANGUAGES),
            "description": "The language the parent reads, one the portal offers (LANGUAGES); "
            "kept only when the parent has none stored yet.",
        },
        "note": _text(2000, min_length=0),
    },
    ["kind", "contact_name", "contact_phone", "pin", "account_number", "parent_name", "parent_phone"],
)

TEXT_BODY = _object({"text": _text(2000)})

ACCOUNT_STATUS = _object(
    {
        "login": {"type": "string"},
        "kind": {"enum": ["student", "parent", "staff"]},
        "enrolled": {"type": "boolean"},
        "enrolled_at": MOMENT,
        "locked_until": MOMENT,
        "last_password_change": MOMENT,
        "must_change_password": {"type": "boolean"},
        "disabled": {"type": "boolean", "description": "Sign-in refused now, for any reason."},
        "disabled_by_admin": {
            "type": "boolean",
            "description": "Disabled by an administrator: self-service refuses it until it is enabled again.",
        },
    }
)

WEBHOOK = _object(
    {
        "id": {"type": "integer", "description": "The delivery's event id: the same on every retry."},
        "type": {"const": "request.status"},
        "status": {"type": "string"},
        "request": REQUEST,
        "event": EVENT,
    }
)


ERROR_WORDS = {
    400: "The request is malformed or a field is wrong (see error.fields).",
    401: "No token, or a token that is unknown, revoked or expired.",
    403: "The token lacks the scope this operation needs.",
    404: "No such request or account.",
    409: "The request's state does not allow this any more.",
    413: "The body is too large.",
    429: "The token's rate limit is spent; see Retry-After.",
    503: "The directory did not answer; try again later.",
}


def _responses(success: dict[str, Any], *codes: int) -> dict[str, Any]:
    """The success response plus the errors every operation can give, and ``codes``."""
    errors = {
        str(code): {"$ref": f"#/components/responses/E{code}"} for code in (400, 401, 403, 429, 503, *codes)
    }
    return success | errors


NUMBER = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 20, "examples": ["REQ-000042"]},
}


def _operation(
    operation_id: str, scope: str, summary: str, responses: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "description": f"Needs the scope `{scope}`.",
        "security": [{"bearerAuth": [scope]}],
        "responses": responses,
        **extra,
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def document(server_url: str = "/") -> dict[str, Any]:
    """The whole document; ``server_url`` is where the API's root is served."""
    created = {
        "201": _json(_ref("HelpRequest"), "The request was opened (or had been, for this Idempotency-Key).")
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "selfservice API",
            "version": "1",
            "description": "Help requests and account self-service status for the district's other systems. "
            "See docs/api.md.",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/api/v1/requests": {
                "post": _operation(
                    "openRequest",
                    "requests:create",
                    "Open a student or parent help request (the help desk form's checks).",
                    _responses(created, 413),
                    requestBody=_body({"oneOf": [_ref("NewStudentRequest"), _ref("NewParentRequest")]}),
                    parameters=[
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                        }
                    ],
                )
            },
            "/api/v1/requests/{number}": {
                "get": _operation(
                    "getRequest",
                    "requests:read",
                    "Read one request.",
                    _responses({"200": _json(_ref("HelpRequest"), "The request.")}, 404),
                    parameters=[NUMBER],
                )
            },
            "/api/v1/requests/{number}/notes": {
                "post": _operation(
                    "addNote",
                    "requests:work",
                    "Add a note from the external desk.",
                    _responses(
                        {"200": _json(_ref("HelpRequest"), "The request after the note.")}, 404, 409, 413
                    ),
                    parameters=[NUMBER],
                    requestBody=_body(_ref("Text")),
                )
            },
            "/api/v1/requests/{number}/close": {
                "post": _operation(
                    "closeRequest",
                    "requests:work",
                    "Resolve (when still active) and close a request.",
                    _responses({"200": _json(_ref("HelpRequest"), "The closed request.")}, 404, 409, 413),
                    parameters=[NUMBER],
                    requestBody=_body(_ref("Text")),
                )
            },
            "/api/v1/events": {
                "get": _operation(
                    "listEvents",
                    "requests:read",
                    "Timeline events of every request after a cursor, oldest first.",
                    _responses(
                        {
                            "200": _json(
                                _object(
                                    {
                                        "events": {"type": "array", "items": _ref("Event")},
                                        "next": {"type": "integer"},
                                    }
                                ),
                                "Up to `limit` events and the cursor to ask from next.",
                            )
                        }
                    ),
                    parameters=[
                        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": EVENTS_PAGE_MAX},
                        },
                    ],
                )
            },
            "/api/v1/accounts/{login}/status": {
                "get": _operation(
                    "getAccountStatus",
                    "accounts:read",
                    "An account's self-service status (never an answer, PIN or password).",
                    _responses({"200": _json(_ref("AccountStatus"), "The account's status.")}, 404),
                    parameters=[
                        {
                            "name": "login",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 254},
                        }
                    ],
                )
            },
        },
        "webhooks": {
            "requestStatus": {
                "post": {
                    "summary": "A request's status changed (signed: X-Selfservice-Signature).",
                    "requestBody": _body(_ref("Webhook")),
                    "responses": {"200": {"description": "Any 2xx acknowledges the delivery."}},
                }
            }
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": ERROR,
                "HelpRequest": REQUEST,
                "Event": EVENT,
                "NewStudentRequest": NEW_STUDENT_REQUEST,
                "NewParentRequest": NEW_PARENT_REQUEST,
                "Text": TEXT_BODY,
                "AccountStatus": ACCOUNT_STATUS,
                "Webhook": WEBHOOK,
            },
            "responses": {f"E{code}": _json(_ref("Error"), words) for code, words in ERROR_WORDS.items()},
        },
    }
