"""Markers for translatable strings in modules that must not import Flask."""


def N_(message: str) -> str:  # the conventional gettext marker name
    """Mark ``message`` for extraction and return it unchanged.

    Services return these English message ids; views translate them with
    ``gettext`` at render time, in the user's language.
    """
    return message
