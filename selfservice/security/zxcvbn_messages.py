"""zxcvbn's warnings and suggestions, marked for translation.

The scorer (zxcvbn-rs-py, the Rust port) gives its advice as members of two enums,
``Warning`` and ``Suggestion``, each with an English sentence as its ``str``. Every member
is mapped here, by name, to a message id; ``check_password`` returns the ids and the views
translate every problem with ``gettext``, so a family reads the advice in their own
language. The ids are the sentences the Python port wrote (the translations predate the
switch): they differ from the Rust port's only in the quotes around "abc" and "6543".
tests/security/test_zxcvbn_messages.py reads the members from the enums, so an upgrade
that adds one fails loudly until it is mapped and translated.
"""

from __future__ import annotations

from functools import cache

from selfservice.i18n_markers import N_

WARNINGS: dict[str, str] = {
    "StraightRowsOfKeysAreEasyToGuess": N_("Straight rows of keys are easy to guess."),
    "ShortKeyboardPatternsAreEasyToGuess": N_("Short keyboard patterns are easy to guess."),
    "RepeatsLikeAaaAreEasyToGuess": N_('Repeats like "aaa" are easy to guess.'),
    "RepeatsLikeAbcAbcAreOnlySlightlyHarderToGuess": N_(
        'Repeats like "abcabcabc" are only slightly harder to guess than "abc".'
    ),
    "ThisIsATop10Password": N_("This is a top-10 common password."),
    "ThisIsATop100Password": N_("This is a top-100 common password."),
    "ThisIsACommonPassword": N_("This is a very common password."),
    "ThisIsSimilarToACommonlyUsedPassword": N_("This is similar to a commonly used password."),
    "SequencesLikeAbcAreEasyToGuess": N_('Sequences like "abc" or "6543" are easy to guess.'),
    "RecentYearsAreEasyToGuess": N_("Recent years are easy to guess."),
    "AWordByItselfIsEasyToGuess": N_("A word by itself is easy to guess."),
    "DatesAreOftenEasyToGuess": N_("Dates are often easy to guess."),
    "NamesAndSurnamesByThemselvesAreEasyToGuess": N_("Names and surnames by themselves are easy to guess."),
    "CommonNamesAndSurnamesAreEasyToGuess": N_("Common names and surnames are easy to guess."),
}

SUGGESTIONS: dict[str, str] = {
    "UseAFewWordsAvoidCommonPhrases": N_("Use a few words, avoid common phrases."),
    "NoNeedForSymbolsDigitsOrUppercaseLetters": N_("No need for symbols, digits, or uppercase letters."),
    "AddAnotherWordOrTwo": N_("Add another word or two. Uncommon words are better."),
    "CapitalizationDoesntHelpVeryMuch": N_("Capitalization doesn't help very much."),
    "AllUppercaseIsAlmostAsEasyToGuessAsAllLowercase": N_(
        "All-uppercase is almost as easy to guess as all-lowercase."
    ),
    "ReversedWordsArentMuchHarderToGuess": N_("Reversed words aren't much harder to guess."),
    "PredictableSubstitutionsDontHelpVeryMuch": N_(
        "Predictable substitutions like '@' instead of 'a' don't help very much."
    ),
    "UseALongerKeyboardPatternWithMoreTurns": N_("Use a longer keyboard pattern with more turns."),
    "AvoidRepeatedWordsAndCharacters": N_("Avoid repeated words and characters."),
    "AvoidSequences": N_("Avoid sequences."),
    "AvoidRecentYears": N_("Avoid recent years."),
    "AvoidYearsThatAreAssociatedWithYou": N_("Avoid years that are associated with you."),
    "AvoidDatesAndYearsThatAreAssociatedWithYou": N_("Avoid dates and years that are associated with you."),
}

ZXCVBN_MESSAGES: tuple[str, ...] = (*WARNINGS.values(), *SUGGESTIONS.values())


@cache
def _by_sentence() -> dict[str, str]:
    # The enums' members are neither hashable nor named at run time: their sentence is the key.
    from zxcvbn_rs_py import Suggestion, Warning

    tables = ((Warning, WARNINGS), (Suggestion, SUGGESTIONS))
    return {str(getattr(kind, name)): message for kind, table in tables for name, message in table.items()}


def advice(member: object) -> str:
    """The message id for one of the scorer's warnings or suggestions (its own sentence if unmapped)."""
    sentence = str(member)
    return _by_sentence().get(sentence, sentence)
