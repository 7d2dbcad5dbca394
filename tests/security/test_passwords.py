"""The password policy every password-setting flow goes through."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from selfservice.security import passwords
from selfservice.security.passwords import (
    TOO_GUESSABLE,
    PasswordPolicy,
    check_password,
    policy_from_settings,
)

STRONG = "violet canoe drifts past seven lanterns"
DEFAULT = PasswordPolicy()


def problems(password: str, policy: PasswordPolicy = DEFAULT, **kwargs: str | None) -> list[str]:
    """check_password for the account jsmith / Jordan Smith unless told otherwise."""
    return check_password(password, policy, **{"login": "jsmith", "display_name": "Jordan Smith"} | kwargs)


def test_a_strong_passphrase_passes() -> None:
    assert problems(STRONG, confirm=STRONG) == []


def test_confirmation_must_match() -> None:
    assert problems(STRONG, confirm=STRONG + "x") == [passwords.MISMATCH]


def test_no_confirmation_means_nothing_to_match() -> None:
    assert passwords.MISMATCH not in problems(STRONG, confirm=None)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Zq8#vL2", passwords.TOO_SHORT),  # 7 characters
        ("x" * 129, passwords.TOO_LONG),
    ],
)
def test_length_limits(password: str, expected: str) -> None:
    assert expected in problems(password)


@pytest.mark.parametrize(
    "password",
    ["Zq8#vL2m", "voilà garçon éléphant " + "q" * 106],  # exactly 8 and exactly 128
)
def test_length_limits_are_inclusive(password: str) -> None:
    found = problems(password)
    assert passwords.TOO_SHORT not in found
    assert passwords.TOO_LONG not in found


def test_length_counts_characters_after_nfc() -> None:
    # Eight letters e + combining acute: 16 code points, 8 characters once composed.
    policy = PasswordPolicy(max_length=8, min_length=8, min_zxcvbn_score=0)
    assert check_password("e\u0301" * 8, policy) == []


def test_too_long_password_is_rejected_without_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("zxcvbn must not score a password that is already too long")

    monkeypatch.setattr(passwords, "zxcvbn", refuse)
    assert problems("correct horse " * 1000) == [passwords.TOO_LONG]


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("violet JSMITH canoe drifts", passwords.CONTAINS_LOGIN),
        ("violet canoe jordan drifts", passwords.CONTAINS_NAME),
        ("violet canoe SMITH drifts", passwords.CONTAINS_NAME),
        ("violet canoe riverside drifts", passwords.CONTAINS_BANNED_WORD),
    ],
)
def test_personal_and_banned_words_are_refused(password: str, expected: str) -> None:
    policy = PasswordPolicy(banned_words=("Riverside",))
    assert expected in problems(password, policy)


def test_short_name_parts_and_logins_are_not_looked_for() -> None:
    # "Al" and "Li" are under 4 letters; a 2-character login is not searched either.
    found = check_password("violet canoe drifts past all lights", DEFAULT, login="al", display_name="Al Li")
    assert found == []


@pytest.mark.parametrize(
    ("rule", "failing", "passing", "message"),
    [
        ("require_upper", STRONG, STRONG + " A", passwords.NEEDS_UPPER),
        ("require_lower", STRONG.upper(), STRONG.upper() + " a", passwords.NEEDS_LOWER),
        ("require_digit", STRONG, STRONG + " 7", passwords.NEEDS_DIGIT),
        (
            "require_symbol",
            "violetcanoedriftspastsevenlanterns",
            STRONG + "!",
            passwords.NEEDS_SYMBOL,
        ),
    ],
)
def test_composition_rules_when_turned_on(rule: str, failing: str, passing: str, message: str) -> None:
    policy = PasswordPolicy(**{rule: True})
    assert message in problems(failing, policy)
    assert problems(passing, policy) == []


def test_composition_rules_are_off_by_default() -> None:
    assert problems("violetcanoedriftspastsevenlanterns") == []


def test_common_password_gets_zxcvbn_feedback() -> None:
    found = problems("password1")
    assert found[0] == passwords.TOO_GUESSABLE
    assert "This is a very common password." in found
    assert len(found) > 2  # zxcvbn's suggestions follow its warning


def test_zxcvbn_knows_the_account_holder() -> None:
    # Fine for a stranger, too easy to guess for the account it names.
    policy = PasswordPolicy(min_zxcvbn_score=2)
    assert check_password("Okafor1987", policy) == []
    assert passwords.TOO_GUESSABLE in check_password("Okafor1987", policy, display_name="Ada Okafor")


def test_short_of_a_raised_minimum_only_the_too_easy_message_is_shown() -> None:
    # zxcvbn scores "violet canoe" 3 and gives advice only below 3: nothing to add to ours.
    assert problems("violet canoe", PasswordPolicy(min_zxcvbn_score=4)) == [passwords.TOO_GUESSABLE]


def test_only_the_first_hundred_characters_are_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    scored = []
    score = passwords.zxcvbn

    def recording(password: str, user_inputs: list[str]) -> object:
        scored.append(password)
        return score(password, user_inputs)

    monkeypatch.setattr(passwords, "zxcvbn", recording)
    assert problems(STRONG + " " + "q" * 80) == []  # 120 characters
    assert scored == [(STRONG + " " + "q" * 80)[: passwords.ZXCVBN_MAX_CHARS]]


def test_the_scorer_loads_with_the_first_password_checked() -> None:
    # Its dictionaries cost a worker about 9 MB: not at start, not for the pages that never score.
    code = (
        "import sys; from selfservice.security import passwords;"
        "before = 'zxcvbn_rs_py' in sys.modules;"
        "passwords.check_password('x', passwords.PasswordPolicy());"
        "print(before, 'zxcvbn_rs_py' in sys.modules)"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert loaded.stdout.split() == ["False", "True"]


def test_threads_checking_at_once_each_see_only_their_own_account() -> None:
    # No lock around the scorer: it keeps each call's names to itself.
    policy = PasswordPolicy(min_zxcvbn_score=2)
    accounts = ["Ada Okafor", "Jordan Smith"] * 2
    alone = {name: check_password("Okafor1987", policy, display_name=name) for name in accounts}
    start = threading.Barrier(len(accounts))
    seen: dict[int, list[list[str]]] = {}

    def check(number: int, name: str) -> None:
        start.wait()
        seen[number] = [check_password("Okafor1987", policy, display_name=name) for _ in range(100)]

    threads = [threading.Thread(target=check, args=item) for item in enumerate(accounts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert alone["Jordan Smith"] == []
    assert passwords.TOO_GUESSABLE in alone["Ada Okafor"]
    for number, name in enumerate(accounts):
        assert seen[number] == [alone[name]] * 100


def test_a_worker_forked_after_a_check_checks_alike() -> None:
    # A gunicorn master that checked a password (its scorer loaded) forks workers that score alike.
    before = problems("password1")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never back into pytest
        status = 1
        try:
            os.write(write, json.dumps(problems("password1")).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as answer:
        found = json.loads(answer.read())
    assert os.waitpid(pid, 0)[1] == 0
    assert found == before


def test_policy_from_settings() -> None:
    policy = policy_from_settings(
        {
            "PASSWORD_MIN_LENGTH": 12,
            "PASSWORD_MAX_LENGTH": 64,
            "PASSWORD_MIN_SCORE": 4,
            "PASSWORD_BANNED_WORDS": ["Riverside", "Unified"],
            "PASSWORD_REQUIRE_UPPER": True,
            "PASSWORD_REQUIRE_LOWER": True,
            "PASSWORD_REQUIRE_DIGIT": "true",
            "PASSWORD_REQUIRE_SYMBOL": "false",
        }
    )
    assert policy == PasswordPolicy(
        min_length=12,
        max_length=64,
        min_zxcvbn_score=4,
        banned_words=("Riverside", "Unified"),
        require_upper=True,
        require_lower=True,
        require_digit=True,
        require_symbol=False,
    )


def test_policy_from_settings_defaults_when_missing() -> None:
    assert policy_from_settings({}) == PasswordPolicy()


@pytest.mark.parametrize(
    "settings",
    [
        {"PASSWORD_MIN_LENGTH": 0},
        {"PASSWORD_MIN_LENGTH": 200},
        {"PASSWORD_MIN_SCORE": 5},
    ],
)
def test_policy_refuses_impossible_settings(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="PASSWORD_"):
        policy_from_settings(settings)


def test_a_banned_word_that_is_not_valid_text_does_not_break_the_check() -> None:
    # PASSWORD_BANNED_WORDS read from a badly encoded environment can hold a lone surrogate,
    # which the scorer cannot take: the check must still answer, not raise (a 500).
    policy = PasswordPolicy(banned_words=("Riverside", "bad\udc80word"))
    assert check_password(STRONG, policy, login="s1000001") == []
    assert TOO_GUESSABLE in check_password("riverside1", policy, login="s1000001")
