"""CA PINs at rest: encrypted while a request waits for delivery, wiped when it ends.

Fernet (AES-128-CBC with HMAC-SHA256) under a key derived from SECRET_KEY with HKDF, so no second secret has to be
managed. To rotate SECRET_KEY, put the old key first in SECRET_KEY_FALLBACKS (Django's own list, which sessions and
signed links also honour): PINs written under it still decrypt, new ones use the new key; drop the old key once no
request it wrote is PENDING (docs/operations.md). Without the old key among the fallbacks, the PINs of requests still
PENDING are unreadable: those requests are REJECTED with ``CA_PIN_UNREADABLE`` and must be sent again (docs/conax.md).
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class PinUnreadable(Exception):
    pass


@cache
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"conax-ca-pin", info=b"portal").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def pin_encrypt(pin: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(pin.encode()).decode()


@cache
def _readers(secret_key: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet(key) for key in (secret_key, *fallbacks)])


def pin_decrypt(token: str) -> str:
    try:
        readers = _readers(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))
        return readers.decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise PinUnreadable from exc
