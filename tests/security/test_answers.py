"""Challenge answers: normalisation, argon2id hashing, enrollment rules."""

from __future__ import annotations

import pytest

from selfservice.security import answers
from selfservice.security.answers import (
    AnswerHasher,
    AnswerRules,
    answer_rules_from_settings,
    check_answers,
    normalise_answer,
)

PET = "What was the name of your first pet?"
STREET = "What street did you grow up on?"
TEACHER = "Who was your favourite teacher?"

# Small memory keeps the suite fast; test_default_hash_is_argon2id_19mib_t2_p1
# checks the real defaults.
FAST = {"memory_cost": 1024, "time_cost": 2, "parallelism": 1}


@pytest.fixture
def hasher() -> AnswerHasher:
    return AnswerHasher(**FAST)


def enroll(*answers: str, **identity: str | None) -> dict[int, str]:
    """check_answers for (question, answer) pairs over three distinct questions."""
    questions = [PET, STREET, TEACHER]
    identity = {
        "login": "jsmith",
        "display_name": "Jordan Smith",
        "current_password": None,
    } | identity
    return check_answers(list(zip(questions, answers, strict=False)), rules=AnswerRules(), **identity)


# --- normalisation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("  Mr.  Whiskers!! ", "mr. whiskers"),
        ("\uff26\uff2c\uff35\uff26\uff26\uff39", "fluffy"),  # full-width FLUFFY
        ("Straße", "strasse"),
        ("FLUFFY ", "fluffy"),
        ("Elm\t \nStreet", "elm street"),
        ('"Rex"', "rex"),
        ("¿Qué?", "qué"),
        ("Que\u0301", "qué"),  # combining accent composes to the same letter
        ("ﬁdo", "fido"),  # ligature
        ("\u200bfluffy\u00ad", "fluffy"),  # zero-width space and soft hyphen
        ("O'Brien", "o'brien"),  # inner punctuation stays
        ("M\u2019ap", "m'ap"),  # a phone's apostrophe is the keyboard's
        ("...", ""),
        ("", ""),
    ],
)
def test_answers_are_normalised(typed: str, normalised: str) -> None:
    assert normalise_answer(typed) == normalised


# --- hashing -----------------------------------------------------------------


def test_default_hash_is_argon2id_19mib_t2_p1() -> None:
    stored = AnswerHasher().hash("Fluffy")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_hash_never_contains_the_answer(hasher: AnswerHasher) -> None:
    stored = hasher.hash("Whiskers")
    assert "whiskers" not in stored.lower()


def test_same_answer_hashes_differently_each_time(hasher: AnswerHasher) -> None:
    assert hasher.hash("fluffy") != hasher.hash("fluffy")


@pytest.mark.parametrize("typed", ["fluffy", "FLUFFY ", "  Fluffy!", "\uff26\uff2c\uff35\uff26\uff26\uff39"])
def test_verify_accepts_normalisation_variants(hasher: AnswerHasher, typed: str) -> None:
    assert hasher.verify(hasher.hash("Fluffy"), typed) is True


@pytest.mark.parametrize("typed", ["fluff", "fluffy2", "", "mr. fluffy"])
def test_verify_rejects_a_wrong_answer(hasher: AnswerHasher, typed: str) -> None:
    assert hasher.verify(hasher.hash("Fluffy"), typed) is False


@pytest.mark.parametrize(
    "corrupt",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=1024,t=2,p=1$",
        "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        "$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWX",
        "$argon2id$v=19$m=1024,t=2,p=1$ßalt$hash",
    ],
)
def test_verify_is_false_for_a_corrupt_hash(hasher: AnswerHasher, corrupt: str) -> None:
    assert hasher.verify(corrupt, "fluffy") is False


def test_verify_is_false_for_a_truncated_hash(hasher: AnswerHasher) -> None:
    assert hasher.verify(hasher.hash("fluffy")[:-4], "fluffy") is False


def test_verify_count_counts_every_verify(hasher: AnswerHasher) -> None:
    stored = hasher.hash("fluffy")
    assert hasher.verify_count == 0
    hasher.verify(stored, "fluffy")
    hasher.verify(stored, "wrong")
    hasher.verify("corrupt", "fluffy")
    assert hasher.verify_count == 3


def test_needs_rehash_when_parameters_change() -> None:
    old = AnswerHasher(memory_cost=1024, time_cost=1).hash("fluffy")
    current = AnswerHasher(**FAST)
    assert current.verify(old, "fluffy") is True
    assert current.needs_rehash(old) is True
    assert current.needs_rehash(current.hash("fluffy")) is False


def test_needs_rehash_for_an_unreadable_hash(hasher: AnswerHasher) -> None:
    assert hasher.needs_rehash("not a hash") is True


# --- enrollment rules --------------------------------------------------------


def test_good_answers_pass() -> None:
    assert enroll("Rex", "Maple Avenue", "Mrs. Okafor") == {}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("ab", answers.TOO_SHORT),
        ("  a!! ", answers.TOO_SHORT),  # short once normalised
        ("x" * 101, answers.TOO_LONG),
        ("JSmith", answers.SAME_AS_LOGIN),
        ("jordan  smith.", answers.SAME_AS_NAME),
        ("Hunter2horse", answers.SAME_AS_PASSWORD),
        ("my pet name is rex", answers.REPEATS_QUESTION),
        ("FIRST one", answers.REPEATS_QUESTION),
    ],
)
def test_each_rule_names_the_bad_answer(answer: str, message: str) -> None:
    problems = enroll(answer, "Maple Avenue", "Mrs. Okafor", current_password="hunter2horse")
    assert problems == {0: message}


@pytest.mark.parametrize("answer", ["abc", "x" * 100, "a pet", "the rex", "Jordan", "names"])
def test_answers_at_the_edges_pass(answer: str) -> None:
    assert enroll(answer, "Maple Avenue", "Mrs. Okafor") == {}


def test_repeated_answer_is_reported_on_the_later_one() -> None:
    assert enroll("Rex", "Maple Avenue", "REX!") == {2: answers.DUPLICATE}


def test_an_answer_gets_only_its_first_problem() -> None:
    assert enroll("ab", "Maple Avenue", "ab") == {
        0: answers.TOO_SHORT,
        2: answers.TOO_SHORT,
    }


def test_without_a_current_password_nothing_matches_it() -> None:
    assert enroll("Rex", "Maple Avenue", "Mrs. Okafor", current_password=None) == {}


def test_short_question_words_may_be_repeated() -> None:
    problems = check_answers(
        [("What was the name of your first pet?", "was it rex")],
        login="jsmith",
        display_name="Jordan Smith",
        current_password=None,
        rules=AnswerRules(),
    )
    assert problems == {}


def test_question_word_rule_can_be_turned_off() -> None:
    problems = check_answers(
        [(PET, "my pet name is rex")],
        login="jsmith",
        display_name="Jordan Smith",
        current_password=None,
        rules=AnswerRules(forbid_question_words_min_letters=0),
    )
    assert problems == {}


def test_rules_from_settings() -> None:
    rules = answer_rules_from_settings(
        {
            "ANSWER_MIN_LENGTH": 4,
            "ANSWER_MAX_LENGTH": 50,
            "ANSWER_FORBID_QUESTION_WORDS_MIN_LETTERS": 5,
        }
    )
    assert rules == AnswerRules(min_length=4, max_length=50, forbid_question_words_min_letters=5)


def test_rules_from_settings_default_when_missing() -> None:
    assert answer_rules_from_settings({}) == AnswerRules()
