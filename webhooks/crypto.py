"""Endpoint secrets at rest: Fernet under a key derived from SECRET_KEY with HKDF (as conax.crypto does for CA PINs).
A secret must be readable to sign with it, so it is encrypted, not digested; it is never logged, never shown after
it is set, never in a payload or a task argument. Rotating SECRET_KEY makes the stored secrets unreadable: their
deliveries fail with ``secret unreadable`` until a new secret is set."""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class SecretUnreadable(Exception):
    pass


@cache
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"webhook-secret", info=b"portal").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def secret_encrypt(secret: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable from exc
