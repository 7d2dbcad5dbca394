"""API errors as JSON: ``{"error": {"code", "message", "fields"}}`` with a 4xx (or a 503)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from selfservice.i18n import _

#: Machine-readable codes for the HTTP errors the routing and Werkzeug raise.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(Exception):
    """Stop the call and answer ``status`` with this JSON error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message
        self.fields, self.retry_after = fields, retry_after

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        response = jsonify({"error": error})
        response.status_code = self.status
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="selfservice"'
        if self.retry_after:
            response.headers["Retry-After"] = str(self.retry_after)
        return response


def json_error(error: HTTPException) -> Response:
    """Any Werkzeug HTTP error (404, 405, 413 ...) under /api as JSON."""
    code = error.code or 500
    message = error.description or _("The request could not be understood.")
    response = ApiError(code, HTTP_CODES.get(code, "error"), message).response()
    allowed = getattr(error, "valid_methods", None)
    if code == 405 and allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response
