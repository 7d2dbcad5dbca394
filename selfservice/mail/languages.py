"""Which language a mail to an account speaks: the holder's own, never the sender's.

A parent's reset-link mail is sent while an ITS technician works in English; a lock
notice is triggered by whoever typed the wrong answers. Neither may choose the
language: the account's remembered choice does, else the district's default.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from selfservice.extensions import db
from selfservice.mail.models import AccountLanguage
from selfservice.timeutil import utcnow


def remember_language(
    account_key: str, language: str, languages: Sequence[str], *, replace: bool = True
) -> None:
    """Store ``language`` as the account's choice (ignored unless one of ``languages``).

    ``replace=False`` (a language staff were told) never overrides one already remembered.
    """
    if not account_key or language not in languages:
        return
    row = db.session.get(AccountLanguage, account_key)
    if row is None:
        db.session.add(AccountLanguage(account_key=account_key, language=language))
    elif row.language != language and replace:
        row.language, row.chosen_at = language, utcnow()
    else:
        return
    try:
        db.session.commit()
    except IntegrityError:  # the same account chose in two tabs at once: either choice will do
        db.session.rollback()


def language_of(account_key: str | None, languages: Sequence[str], default: str) -> str:
    """The account's remembered language while the site still offers it, else ``default``."""
    if not account_key:
        return default
    chosen = db.session.scalar(
        select(AccountLanguage.language).where(AccountLanguage.account_key == account_key)
    )
    return chosen if chosen in languages else default
