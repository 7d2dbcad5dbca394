"""Walking /activate through the test client, as a parent with the letter would."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from selfservice.extensions import db
from selfservice.mail.models import OutboxMessage
from tests.conftest import post_form

LETTER = {"account_number": "A-2000001", "pin": "4821", "parent_name": "Maria Lopez"}
NO_EMAIL_LETTER = {"account_number": "A-2000002", "pin": "7390", "parent_name": "David Carter"}
NEW_PASSWORD = "Lantern-Meadow-Copper-77"
CODE = re.compile(r"^\s{4}([A-Z0-9]{8})\s*$", re.MULTILINE)


def submit_letter(client: FlaskClient, **changes: str) -> Any:
    return post_form(client, "/activate", {**LETTER, **changes})


def mailed_code(app: Flask, address: str = "maria.lopez@example.test") -> str:
    with app.app_context():
        message = db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.to_address == address, OutboxMessage.purpose == "activation:code")
            .order_by(OutboxMessage.id.desc())
        ).first()
    assert message is not None, "no activation code was mailed"
    match = CODE.search(message.body_text)
    assert match, message.body_text
    return match.group(1)


def answers(app: Flask, client: FlaskClient) -> dict[str, str]:
    """A valid set of questions and answers for the enrollment step."""
    page = client.get("/activate/questions").get_data(as_text=True)
    ids = re.findall(r"<option[^>]*value=\"(\d+)\"", page)
    count = app.config["ENROLL_QUESTION_COUNT"]
    words = ["saxophone", "lighthouse", "pomegranate", "tangerine", "harbor", "meadowlark", "violin"]
    data = {}
    for n in range(1, count + 1):
        data[f"question_{n}"] = ids[n - 1]
        data[f"answer_{n}"] = f"{words[n - 1]} {words[n]}"
    return data


def activate(app: Flask, client: FlaskClient) -> Any:
    """The whole flow, each step checked; the last response."""
    assert submit_letter(client).headers["Location"].endswith("/activate/code")
    response = post_form(client, "/activate/code", {"code": mailed_code(app)})
    assert response.headers["Location"].endswith("/activate/password")
    response = post_form(
        client, "/activate/password", {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.headers["Location"].endswith("/activate/questions"), response.get_data(as_text=True)
    response = post_form(client, "/activate/questions", answers(app, client))
    assert response.headers["Location"].endswith("/activate/done"), response.get_data(as_text=True)
    return response
