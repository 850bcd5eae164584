"""Rotating SECRET_KEY (docs/operations.md): CA PINs encrypted under the old key stay readable while it is listed in
SECRET_KEY_FALLBACKS, and only then."""

from __future__ import annotations

import pytest

from conax.crypto import PinUnreadable, pin_decrypt, pin_encrypt

OLD, NEW = (
    "o" * 10 + "ld-key-5f2c9a7e1b3d4c6a8e0f2b4d6c8a0e2f4b6d8c0a",
    "n" * 10 + "ew-key-a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4",
)


def test_a_pin_written_under_the_old_key_reads_while_the_old_key_is_a_fallback(settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD, []
    token = pin_encrypt("1234")

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW, [OLD]
    assert pin_decrypt(token) == "1234"
    assert pin_decrypt(pin_encrypt("5678")) == "5678"  # new PINs under the new key

    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(PinUnreadable):
        pin_decrypt(token)
