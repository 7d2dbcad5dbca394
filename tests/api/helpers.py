"""API test helpers: issue a token through the service, call /api/v1 with it."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from selfservice.api.clients import create_client
from selfservice.audit.services import SYSTEM

EVERY_SCOPE = ["requests:create", "requests:read", "requests:work", "accounts:read"]

STUDENT = {
    "kind": "student",
    "student_id": "1000001",
    "student_name": "Ana Lopez",
    "birth_month_year": "032012",
}
PARENT = {
    "kind": "parent",
    "contact_name": "Maria Lopez",
    "contact_phone": "305-555-0101",
    "pin": "4821",
    "account_number": "A-2000001",
    "parent_name": "Maria Lopez",
    "parent_phone": "305-555-0101",
}


def issue(app: Flask, name: str = "sis", scopes: list[str] | None = None, **options: Any) -> str:
    """A token for a new client (every scope unless told), as an admin would create it."""
    with app.app_context():
        issued = create_client(
            name,
            EVERY_SCOPE if scopes is None else scopes,
            rate_limit=options.pop("rate_limit", "1000 per minute"),
            expires_in_days=options.pop("expires_in_days", None),
            actor="admin1",
            origin=SYSTEM,
        )
    return issued.token


class Api:
    """Calls /api/v1 with one bearer token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self.headers, **kwargs)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(f"/api/v1{path}", json=body, headers={**self.headers, **(headers or {})})
