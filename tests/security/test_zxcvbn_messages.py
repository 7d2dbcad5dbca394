"""Every warning and suggestion the strength scorer can give reads in each language (issue 17).

The scorer (zxcvbn-rs-py) gives its advice as members of two enums, ``Warning`` and
``Suggestion``. The tests read the members from the enums themselves, so an upgrade that adds
or renames one fails here until it is mapped and translated.
"""

from __future__ import annotations

import pytest
import zxcvbn_rs_py
from babel.support import Translations

from selfservice.security import zxcvbn_messages
from selfservice.security.passwords import PasswordPolicy, check_password
from selfservice.security.zxcvbn_messages import SUGGESTIONS, WARNINGS, advice
from tests.site.test_translations import CATALOGS, LANGUAGES


def members(kind: type) -> dict[str, object]:
    """Every member of one of the scorer's enums by name (they are not iterable: read the class)."""
    return {name: value for name, value in vars(kind).items() if isinstance(value, kind)}


EVERY_MEMBER = [*members(zxcvbn_rs_py.Warning).values(), *members(zxcvbn_rs_py.Suggestion).values()]


def test_every_warning_the_scorer_can_give_is_mapped() -> None:
    assert members(zxcvbn_rs_py.Warning)
    assert set(members(zxcvbn_rs_py.Warning)) == set(WARNINGS)


def test_every_suggestion_the_scorer_can_give_is_mapped() -> None:
    assert members(zxcvbn_rs_py.Suggestion)
    assert set(members(zxcvbn_rs_py.Suggestion)) == set(SUGGESTIONS)


@pytest.mark.parametrize("member", EVERY_MEMBER, ids=repr)
def test_each_advice_says_what_the_scorer_says(member: object) -> None:
    # Ours may quote the examples where the scorer does not ('Sequences like "abc"...').
    assert advice(member).replace('"', "") == str(member).replace('"', "")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_advice_is_translated(language: str) -> None:
    catalog = Translations.load(str(CATALOGS), [language])
    untranslated = [advice(m) for m in EVERY_MEMBER if catalog.gettext(advice(m)) in ("", advice(m))]
    assert untranslated == []


def test_the_messages_marked_are_the_mapped_ones() -> None:
    assert set(zxcvbn_messages.ZXCVBN_MESSAGES) == {*WARNINGS.values(), *SUGGESTIONS.values()}


def test_the_check_gives_the_mapped_advice() -> None:
    found = check_password("abcdefgh", PasswordPolicy())
    assert 'Sequences like "abc" or "6543" are easy to guess.' in found
