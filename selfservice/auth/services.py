"""Sign-in rules: the directory decides; every attempt is audited."""

from __future__ import annotations

from selfservice.audit.services import Origin, record
from selfservice.audit.tags import Tag
from selfservice.auth.store import end_sessions
from selfservice.directory.interfaces import Account, Directory


def sign_in(directory: Directory, login: str, password: str, origin: Origin) -> Account | None:
    """The account when ``password`` binds for ``login``, else ``None`` (audited either way)."""
    account = directory.authenticate(login.strip(), password)
    if account is None:
        record(Tag.LOGIN_FAILURE, outcome="failure", origin=origin, subject=login.strip()[:128])
        return None
    record(
        Tag.LOGIN_SUCCESS, origin=origin, actor=account.login, subject=account.login, subject_key=account.key
    )
    return account


def sign_out(login: str, origin: Origin, account_key: str | None = None) -> None:
    """Sign-out ends every session of the account, on every browser (invariant 17)."""
    if account_key is not None:
        end_sessions(account_key, commit=False)
    record(Tag.LOGOUT, origin=origin, actor=login, subject=login, subject_key=account_key)


def end_every_session(account_key: str, subject_login: str, *, actor: str, origin: Origin) -> int:
    """An admin ends every session of an account at once (audited); how many there were."""
    ended = end_sessions(account_key, commit=False)
    record(
        Tag.SESSIONS_ENDED,
        origin=origin,
        actor=actor,
        subject=subject_login,
        subject_key=account_key,
        details={"sessions": ended},
    )
    return ended
