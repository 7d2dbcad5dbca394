"""The password in the sync queue is held only encrypted, with a key that never reaches the database.

The key is SYNC_ENCRYPTION_KEY (a Fernet key: ``python -c "from cryptography.fernet import
Fernet; print(Fernet.generate_key().decode())"``), or, when that is empty, derived from
SECRET_KEY with HKDF. Fernet is AES-128-CBC with an HMAC-SHA256: a changed ciphertext is
refused, never decrypted into a wrong password. The cryptography package (about 8 MB) is
loaded with the first password queued or read, not by every worker at start.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from selfservice.config import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

HKDF_INFO = b"selfservice sync queue v1"


class Undecryptable(Exception):
    """A queued password cannot be decrypted with the current key (the key changed)."""


class SyncCipher:
    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key = key
        self._built: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._built is None:
            from cryptography.fernet import Fernet

            self._built = Fernet(self._key() if callable(self._key) else self._key)
        return self._built

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SyncCipher:
        given = str(config.get("SYNC_ENCRYPTION_KEY") or "").strip()
        if given:
            try:
                if len(base64.urlsafe_b64decode(given.encode())) != 32:
                    raise ValueError("not 32 bytes")
            except (ValueError, binascii.Error) as exc:
                raise ConfigError(
                    "SYNC_ENCRYPTION_KEY must be a Fernet key (32 bytes, url-safe base64)"
                ) from exc
            return cls(given.encode())
        return cls(functools.partial(derive_key, str(config.get("SECRET_KEY") or "")))

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise Undecryptable("the queued password cannot be decrypted with the current key") from exc


def derive_key(secret: str) -> bytes:
    """A Fernet key derived from ``secret`` (SECRET_KEY) for this one purpose."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))
