"""The password policy: the one check every flow that sets a password goes through.

Length and guessability (zxcvbn) matter; composition rules are off by default,
as NIST SP 800-63B advises. The password is only inspected here: never stored,
logged or returned (security invariant 7).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfservice.directory.interfaces import PasswordRules
from selfservice.i18n_markers import N_
from selfservice.security.zxcvbn_messages import advice

if TYPE_CHECKING:
    from zxcvbn_rs_py import Entropy

# zxcvbn's time grows with the length (about 20 ms at 100 characters of digits and
# l33t symbols): only the first 100 characters are scored, as the Rust port itself does.
# The scorer keeps no state between calls (each call's user inputs are its own), so
# threads need no lock; it holds the GIL while it scores.
ZXCVBN_MAX_CHARS = 100
# As in Active Directory's complexity rule, a login shorter than this is not
# looked for inside the password (it would forbid too many passwords).
_MIN_LOGIN_CHARS = 3
_MIN_NAME_PART_LETTERS = 4
_LETTERS = re.compile(r"[^\W\d_]+")

MISMATCH = N_("The two passwords do not match.")
TOO_SHORT = N_("This password is too short.")
TOO_LONG = N_("This password is too long.")
CONTAINS_LOGIN = N_("A password cannot contain your username.")
CONTAINS_NAME = N_("A password cannot contain your name.")
CONTAINS_BANNED_WORD = N_("This password contains a word that is not allowed.")
NEEDS_UPPER = N_("Include at least one capital letter.")
NEEDS_LOWER = N_("Include at least one lowercase letter.")
NEEDS_DIGIT = N_("Include at least one digit.")
NEEDS_SYMBOL = N_("Include at least one symbol, such as ! or #.")
TOO_GUESSABLE = N_("This password is too easy to guess.")
TOO_COMMON = N_("This password is on a list of common or breached passwords. Choose another.")


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy. Lengths count Unicode characters."""

    min_length: int = 8
    max_length: int = 128
    min_zxcvbn_score: int = 3
    banned_words: tuple[str, ...] = ()
    require_upper: bool = False
    require_lower: bool = False
    require_digit: bool = False
    require_symbol: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("PASSWORD_MIN_LENGTH must be at least 1 and at most PASSWORD_MAX_LENGTH")
        if not 0 <= self.min_zxcvbn_score <= 4:
            raise ValueError("PASSWORD_MIN_SCORE must be between 0 and 4")


def policy_from_settings(settings: Mapping[str, Any]) -> PasswordPolicy:
    """Build the policy from PASSWORD_* settings; a missing key keeps its default."""
    default = PasswordPolicy()
    banned = settings.get("PASSWORD_BANNED_WORDS", default.banned_words)
    if isinstance(banned, str):
        banned = banned.split(",")
    return PasswordPolicy(
        min_length=int(settings.get("PASSWORD_MIN_LENGTH", default.min_length)),
        max_length=int(settings.get("PASSWORD_MAX_LENGTH", default.max_length)),
        min_zxcvbn_score=int(settings.get("PASSWORD_MIN_SCORE", default.min_zxcvbn_score)),
        banned_words=tuple(w.strip() for w in banned if w.strip()),
        require_upper=_flag(settings.get("PASSWORD_REQUIRE_UPPER", default.require_upper)),
        require_lower=_flag(settings.get("PASSWORD_REQUIRE_LOWER", default.require_lower)),
        require_digit=_flag(settings.get("PASSWORD_REQUIRE_DIGIT", default.require_digit)),
        require_symbol=_flag(settings.get("PASSWORD_REQUIRE_SYMBOL", default.require_symbol)),
    )


def raised_to(policy: PasswordPolicy, rules: PasswordRules) -> PasswordPolicy:
    """``policy`` made at least as strict as the directory's own rules: never a looser minimum."""
    min_length = max(policy.min_length, rules.min_length)
    return replace(policy, min_length=min_length, max_length=max(policy.max_length, min_length))


def _flag(value: Any) -> bool:
    """A setting read as a flag; the strings "false", "0", "no" and "off" are False."""
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "off"}
    return bool(value)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _name_parts(display_name: str) -> list[str]:
    return [p for p in _LETTERS.findall(_fold(display_name)) if len(p) >= _MIN_NAME_PART_LETTERS]


def _personal_problems(password: str, policy: PasswordPolicy, login: str, display_name: str) -> list[str]:
    folded, folded_login = _fold(password), _fold(login.strip())
    problems = []
    if len(folded_login) >= _MIN_LOGIN_CHARS and folded_login in folded:
        problems.append(CONTAINS_LOGIN)
    if any(part in folded for part in _name_parts(display_name)):
        problems.append(CONTAINS_NAME)
    if any(_fold(word) in folded for word in policy.banned_words if word):
        problems.append(CONTAINS_BANNED_WORD)
    return problems


def _composition_problems(password: str, policy: PasswordPolicy) -> list[str]:
    rules = [
        (policy.require_upper, NEEDS_UPPER, str.isupper),
        (policy.require_lower, NEEDS_LOWER, str.islower),
        (policy.require_digit, NEEDS_DIGIT, str.isdigit),
        (policy.require_symbol, NEEDS_SYMBOL, lambda c: not c.isalnum()),
    ]
    return [message for required, message, test in rules if required and not any(map(test, password))]


def zxcvbn(password: str, user_inputs: list[str]) -> Entropy:
    """zxcvbn's verdict (zxcvbn-rs-py); its dictionaries (about 9 MB) load with the first password checked."""
    from zxcvbn_rs_py import zxcvbn as score

    # The scorer takes valid text only: a lone surrogate (a badly encoded banned word from
    # the environment, say) becomes U+FFFD instead of an error.
    return score(_text(password), [_text(word) for word in user_inputs])


def _text(value: str) -> str:
    return value.encode("utf-8", "replace").decode("utf-8")


def _guessability_problems(password: str, policy: PasswordPolicy, user_inputs: list[str]) -> list[str]:
    """zxcvbn's verdict: the too-easy message, then its warning and suggestions (as message ids)."""
    result = zxcvbn(password[:ZXCVBN_MAX_CHARS], user_inputs)
    if int(result.score) >= policy.min_zxcvbn_score:
        return []
    feedback = result.feedback
    if feedback is None:  # given only below score 3
        return [TOO_GUESSABLE]
    found = [feedback.warning, *feedback.suggestions]
    return [TOO_GUESSABLE, *(advice(member) for member in found if member is not None)]


# Common and breached passwords ----------------------------------------------------
# A file shipped with the package. A password is refused when it, or its core once
# separators, leading/trailing digits and symbols and the usual letter swaps are taken
# off ("Summer2024!!" -> "summer"), is on the list.

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
_MIN_CORE_CHARS = 4
_SEPARATORS = re.compile(r"[\s\-_.]+")
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_UNLEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _cores(password: str) -> set[str]:
    folded = _fold(password)
    joined = _SEPARATORS.sub("", folded)
    cores = {folded, joined}
    for text in (folded, joined):
        core = _DECORATION.sub("", text)
        cores |= {core, core.translate(_UNLEET), text.translate(_UNLEET)}
    return {core for core in cores if len(core) >= _MIN_CORE_CHARS}


def is_common(password: str) -> bool:
    """Whether ``password`` is, once undecorated, one of the bundled common or breached passwords."""
    return bool(_cores(password) & common_passwords())


def check_password(
    password: str,
    policy: PasswordPolicy,
    *,
    login: str = "",
    display_name: str = "",
    confirm: str | None = None,
) -> list[str]:
    """Return what is wrong with ``password`` as user-facing messages; empty means acceptable."""
    problems = []
    if confirm is not None and confirm != password:
        problems.append(MISMATCH)
    length = len(unicodedata.normalize("NFC", password))
    if length < policy.min_length:
        problems.append(TOO_SHORT)
    if length > policy.max_length:
        problems.append(TOO_LONG)
    problems += _personal_problems(password, policy, login, display_name)
    problems += _composition_problems(password, policy)
    if password and length <= policy.max_length:
        user_inputs = [login, *_name_parts(display_name), *policy.banned_words]
        problems += _guessability_problems(password, policy, [u for u in user_inputs if u])
    if length <= policy.max_length and is_common(password):
        problems.append(TOO_COMMON)
    return list(dict.fromkeys(problems))  # zxcvbn may repeat one of ours
