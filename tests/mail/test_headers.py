"""Accented names keep their spaces in Subject and From, read back with the `email` package."""

from __future__ import annotations

import email
from email import policy
from email.header import decode_header, make_header

import pytest

from selfservice.mail.delivery import deliver_due
from selfservice.mail.services import queue_mail

SENDER = "Distrito Escolar de Peñasco \u2013 Oficina de Tecnología"
MAIL_FROM = f"{SENDER} <portal@penasco.example.org>"
SUBJECTS = [
    "José Núñez",
    "HD-000123 received: student password reset for José Núñez",
    "HD-000123 recibida: restablecimiento de contraseña del estudiante "
    "María José Núñez Peña de la escuela Núñez",
    "Réinitialisation du mot de passe pour Zoë Ångström — demande HD-000123 reçue aujourd\u2019hui",
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_accented_subjects_and_sender_arrive_with_their_spaces(
    make_app, smtp_server, worker, subject: str
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**smtp_server.settings(MAIL_FROM=MAIL_FROM))
    with app.app_context():
        queue_mail("jose.nunez@example.org", subject, "Texto.")
        deliver_due(app.config, worker=worker)

    [received] = smtp_server.mailbox.received
    assert str(received.message["Subject"]) == subject
    assert str(received.message["From"]) == MAIL_FROM
    assert received.message["From"].addresses[0].display_name == SENDER
    assert str(received.message["To"]) == "jose.nunez@example.org"
    # A reader on the legacy API (compat32) decodes the same words and spaces.
    legacy = email.message_from_bytes(received.message.as_bytes(policy=policy.SMTP))
    assert str(make_header(decode_header(legacy["Subject"]))) == subject
