"""The operator docs stay true: every test docs/security.md names exists, every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from selfservice.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(::\w+)?`")


def named_tests(text: str) -> list[tuple[str, str | None]]:
    """(file, test) pairs; a bare ``::name`` belongs to the file named before it."""
    found: list[tuple[str, str | None]] = []
    current = ""
    for match in REFERENCE.finditer(text):
        path, name = match.groups()
        current = path or current
        if path or name:
            found.append((current, name[2:] if name else None))
    return found


def test_every_test_named_in_the_security_doc_exists() -> None:
    references = named_tests((ROOT / "docs" / "security.md").read_text())
    assert len(references) > 40
    for path, name in references:
        source = (ROOT / path).read_text()
        if name:
            assert re.search(rf"def {name}\(", source), f"{path}::{name} is named in docs/security.md"


def test_every_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = [key for key in DEFAULTS if f"`{key}`" not in documented]
    assert missing == [], "document these settings in docs/configuration.md"
