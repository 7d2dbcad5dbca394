"""Every string marked for translation has an entry in every shipped catalog, and catalogs compile."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = ROOT / "selfservice" / "translations"
LANGUAGES = ["es", "ht", "fr"]
KEYWORDS = {"_": None, "_l": None, "N_": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
METHODS = [
    ("selfservice/**.py", "python"),
    ("templates/**.html", "jinja2"),
    ("templates/**.txt", "jinja2"),
]


def marked_messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=METHODS, keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalog(language: str):  # type: ignore[no-untyped-def]
    with (CATALOGS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def test_sources_mark_strings_for_translation() -> None:
    assert len(marked_messages()) > 200


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated(language: str) -> None:
    messages = catalog(language)
    missing = []
    for message_id in sorted(marked_messages()):
        entry = messages.get(message_id)
        if entry is None or entry.fuzzy or not all(_strings(entry.string)):
            missing.append(message_id)
    assert missing == [], f"{len(missing)} strings lack a {language} translation: run scripts/i18n update"


def _tuple(value: str | list[str] | tuple[str, ...]) -> str | tuple[str, ...]:
    return tuple(value) if isinstance(value, list | tuple) else value


def _strings(string: str | tuple[str, ...]) -> tuple[str, ...]:
    return string if isinstance(string, tuple) else (string,)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_compiles_without_errors(language: str) -> None:
    messages = catalog(language)
    errors = [(message.id, str(error)) for message in messages for error in message.check(messages)]
    assert errors == []
    write_mo(io.BytesIO(), messages)


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalog_is_up_to_date(language: str) -> None:
    with (CATALOGS / language / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    source = {_tuple(m.id): _tuple(m.string) for m in catalog(language) if m.id and not m.fuzzy}
    shipped = {_tuple(m.id): _tuple(m.string) for m in compiled if m.id}
    assert shipped == source, "run scripts/i18n compile"


@pytest.mark.parametrize(
    ("language", "heading"), [("es", "contraseña"), ("ht", "modpas"), ("fr", "mot de passe")]
)
def test_pages_speak_the_chosen_language(client: FlaskClient, language: str, heading: str) -> None:
    client.set_cookie("lang", language)
    page = client.get("/").get_data(as_text=True)
    assert f'lang="{language}"' in page
    assert heading in page.lower()
