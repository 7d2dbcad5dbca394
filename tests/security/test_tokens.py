"""One-time tokens (invariant 6): bound to account and purpose, single use, short-lived, void on change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update

from selfservice.extensions import db
from selfservice.security import get_security
from selfservice.security.models import TokenNonce
from selfservice.security.tokens import Purpose, TokenRefused, TokenService
from selfservice.timeutil import utcnow

HOUR = timedelta(hours=1)


@pytest.fixture
def tokens(app: Flask) -> Iterator[TokenService]:
    with app.app_context():
        yield get_security().tokens


def issue(tokens: TokenService, key: str = "account-1", purpose: Purpose = Purpose.RECOVERY) -> str:
    value = tokens.issue(key, purpose, HOUR).value
    db.session.commit()
    return value


def test_a_token_is_bound_to_its_account_and_purpose(tokens: TokenService) -> None:
    value = issue(tokens, "account-1", Purpose.RECOVERY)
    claim = tokens.peek(value, Purpose.RECOVERY)
    assert (claim.account_key, claim.purpose) == ("account-1", Purpose.RECOVERY)
    with pytest.raises(TokenRefused):
        tokens.peek(value, Purpose.ASSISTED_RESET)
    with pytest.raises(TokenRefused):
        tokens.consume(value, Purpose.ASSISTED_RESET)
    assert tokens.consume(value, Purpose.RECOVERY).account_key == "account-1"


def test_peeking_does_not_use_a_token_up_but_consuming_does(tokens: TokenService) -> None:
    value = issue(tokens)
    tokens.peek(value, Purpose.RECOVERY)
    tokens.peek(value, Purpose.RECOVERY)
    tokens.consume(value, Purpose.RECOVERY)
    with pytest.raises(TokenRefused):
        tokens.consume(value, Purpose.RECOVERY)
    with pytest.raises(TokenRefused):
        tokens.peek(value, Purpose.RECOVERY)


def test_an_expired_token_is_refused(tokens: TokenService) -> None:
    value = issue(tokens)
    db.session.execute(update(TokenNonce).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    with pytest.raises(TokenRefused):
        tokens.peek(value, Purpose.RECOVERY)
    with pytest.raises(TokenRefused):
        tokens.consume(value, Purpose.RECOVERY)


def test_void_all_kills_every_unused_token_of_the_account_only(tokens: TokenService) -> None:
    mine = [issue(tokens, "account-1"), issue(tokens, "account-1", Purpose.ASSISTED_RESET)]
    theirs = issue(tokens, "account-2")
    assert tokens.void_all("account-1") == 2
    db.session.commit()
    with pytest.raises(TokenRefused):
        tokens.peek(mine[0], Purpose.RECOVERY)
    with pytest.raises(TokenRefused):
        tokens.peek(mine[1], Purpose.ASSISTED_RESET)
    assert tokens.peek(theirs, Purpose.RECOVERY).account_key == "account-2"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"), id="bad-signature"),
        pytest.param(lambda v: "", id="empty"),
        pytest.param(lambda v: "not.a.token", id="garbage"),
        pytest.param(
            lambda v: (
                TokenService("another-secret-key-0123456789-abcdef")
                .issue("account-1", Purpose.RECOVERY, HOUR)
                .value
            ),
            id="other-secret",
        ),
    ],
)
def test_forged_tokens_are_refused(tokens: TokenService, forge: Callable[[str], str]) -> None:
    value = issue(tokens)
    forged = forge(value)
    db.session.rollback()  # a token from another secret leaves its nonce row behind, unsaved
    with pytest.raises(TokenRefused):
        tokens.peek(forged, Purpose.RECOVERY)
    with pytest.raises(TokenRefused):
        tokens.consume(forged, Purpose.RECOVERY)
    assert tokens.consume(value, Purpose.RECOVERY).account_key == "account-1"


def test_a_signed_token_needs_its_nonce_row(tokens: TokenService) -> None:
    """A token whose server-side half is gone (purged, another database) is refused."""
    value = issue(tokens)
    db.session.execute(TokenNonce.__table__.delete())
    db.session.commit()
    with pytest.raises(TokenRefused):
        tokens.peek(value, Purpose.RECOVERY)
