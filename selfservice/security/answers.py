"""Challenge answers: normalisation, argon2id hashing and enrollment rules.

Answers are normalised before they are hashed or compared, so "FLUFFY " and
"fluffy" are the same answer. Each answer is hashed on its own with argon2id
(security invariant 1). Nothing here logs or returns an answer's text.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError

from selfservice.argon2_pool import Argon2Hasher
from selfservice.i18n_markers import N_

# A "word" for the question-word rule is a run of letters: digits, punctuation
# and the apostrophe in "mother's" all split words.
_WORD = re.compile(r"[^\W\d_]+")

# Phones type U+2019 for ' (smart punctuation): "m\u2019ap" from a phone and "m'ap" from a
# school computer are one answer. (Grave and acute accents alone stand in for it too.)
_APOSTROPHES = str.maketrans(dict.fromkeys("\u2019\u2018\u02bc\u00b4`\u2032", "'"))


def _is_outer_junk(char: str) -> bool:
    """True for characters stripped from both ends: whitespace, punctuation, symbols."""
    return char.isspace() or unicodedata.category(char)[0] in "PS"


def normalise_answer(text: str) -> str:
    """Return the canonical form of an answer, the form that is hashed and compared."""
    return _legacy_normalise(text).translate(_APOSTROPHES)


def _legacy_normalise(text: str) -> str:
    """:func:`normalise_answer` before apostrophes were folded: what older hashes were made of."""
    # NFKC folds compatibility forms (full-width letters, ligatures); casefold
    # then maps "ß" to "ss"; NFKC again because casefolding can denormalise.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    # Invisible format characters (zero-width space, soft hyphen, BOM) would make
    # two answers that look the same hash differently.
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    collapsed = " ".join(visible.split())
    start, end = 0, len(collapsed)
    while start < end and _is_outer_junk(collapsed[start]):
        start += 1
    while end > start and _is_outer_junk(collapsed[end - 1]):
        end -= 1
    return collapsed[start:end]


class AnswerHasher:
    """Hash and verify normalised answers with argon2id.

    ``verify_count`` counts calls to :meth:`verify`, so tests can assert that
    no argon2 verify happened (for example before a throttle or lock check).
    It is a plain counter, not meant for metrics across threads.
    """

    def __init__(
        self, memory_cost: int = 19456, time_cost: int = 2, parallelism: int = 1, *, max_blocks: int = 2
    ) -> None:
        """Parameters are argon2's: memory in KiB (default 19 MiB), iterations, lanes.

        ``max_blocks`` argon2 memory blocks are kept per process for reuse (``ARGON2_MAX_CONCURRENT``).
        """
        self._hasher = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, max_blocks=max_blocks
        )
        self.verify_count = 0
        self.pad_count = 0
        self._pad_hash: str | None = None

    def pad(self, count: int) -> None:
        """Spend the time of ``count`` verifies without checking anything (``pad_count``).

        A locked account's answers are never checked (invariant 2), but the page takes
        as long as a checked one (issue 14, item 5).
        """
        if self._pad_hash is None:
            self._pad_hash = self._hasher.hash(secrets.token_urlsafe(32))
        for _ in range(count):
            self.pad_count += 1
            with contextlib.suppress(VerificationError):
                self._hasher.verify(self._pad_hash, "-")

    def hash(self, answer: str) -> str:
        """Return the encoded argon2id hash of the normalised answer."""
        return self._hasher.hash(normalise_answer(answer))

    def verify(self, stored_hash: str, answer: str) -> bool:
        """True when ``answer`` matches; False on a mismatch or an unreadable hash."""
        self.verify_count += 1
        if self._verify(stored_hash, normalise_answer(answer)):
            return True
        legacy = _legacy_normalise(answer)
        # Only an answer with a curly apostrophe costs a second verify (a decoy's too).
        return legacy != normalise_answer(answer) and self._verify(stored_hash, legacy)

    def _verify(self, stored_hash: str, normalised: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, normalised)
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            # VerifyMismatchError is a VerificationError; a corrupt or truncated
            # hash raises InvalidHashError or a plain VerificationError, and a
            # hash with non-ASCII characters fails to encode.
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters (or is unreadable).

        Call it after a successful :meth:`verify` and store :meth:`hash` of the
        same answer when it returns True.
        """
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, UnicodeEncodeError):
            return True


@dataclass(frozen=True)
class AnswerRules:
    """What makes an enrolled answer acceptable.

    ``forbid_question_words_min_letters`` of 0 turns the question-word rule off.
    """

    min_length: int = 3
    max_length: int = 100
    forbid_question_words_min_letters: int = 4


def answer_rules_from_settings(settings: Mapping[str, Any]) -> AnswerRules:
    """Build the rules from ANSWER_* settings; a missing key keeps its default."""
    defaults = AnswerRules()
    return AnswerRules(
        min_length=int(settings.get("ANSWER_MIN_LENGTH", defaults.min_length)),
        max_length=int(settings.get("ANSWER_MAX_LENGTH", defaults.max_length)),
        forbid_question_words_min_letters=int(
            settings.get(
                "ANSWER_FORBID_QUESTION_WORDS_MIN_LETTERS",
                defaults.forbid_question_words_min_letters,
            )
        ),
    )


TOO_SHORT = N_("This answer is too short.")
TOO_LONG = N_("This answer is too long.")
SAME_AS_LOGIN = N_("An answer cannot be your username.")
SAME_AS_NAME = N_("An answer cannot be your name.")
SAME_AS_PASSWORD = N_("An answer cannot be your password.")
REPEATS_QUESTION = N_("An answer cannot repeat a word from its question.")
DUPLICATE = N_("Each answer must be different from your other answers.")


def _question_words(question: str, min_letters: int) -> set[str]:
    if min_letters <= 0:
        return set()
    return {w for w in _WORD.findall(normalise_answer(question)) if len(w) >= min_letters}


def _problem(answer: str, question: str, identities: list[tuple[str, str]], rules: AnswerRules) -> str | None:
    """The first rule one normalised answer breaks, or None."""
    if len(answer) < rules.min_length:
        return TOO_SHORT
    if len(answer) > rules.max_length:
        return TOO_LONG
    for value, message in identities:
        if value and answer == value:
            return message
    if _question_words(question, rules.forbid_question_words_min_letters) & set(_WORD.findall(answer)):
        return REPEATS_QUESTION
    return None


def check_answers(
    pairs: list[tuple[str, str]],
    *,
    login: str,
    display_name: str,
    current_password: str | None,
    rules: AnswerRules,
) -> dict[int, str]:
    """Check (question text, answer) pairs; return index -> message for each bad answer.

    An empty dict means every answer is acceptable. Each answer gets at most one
    message; a repeated answer is reported on its later occurrence.
    """
    identities = [
        (normalise_answer(login), SAME_AS_LOGIN),
        (normalise_answer(display_name), SAME_AS_NAME),
        (normalise_answer(current_password or ""), SAME_AS_PASSWORD),
    ]
    problems: dict[int, str] = {}
    seen: set[str] = set()
    for index, (question, raw_answer) in enumerate(pairs):
        answer = normalise_answer(raw_answer)
        problem = _problem(answer, question, identities, rules)
        if problem is None and answer in seen:
            problem = DUPLICATE
        if problem is not None:
            problems[index] = problem
        seen.add(answer)
    return problems
